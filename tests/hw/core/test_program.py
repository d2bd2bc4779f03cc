from dataclasses import replace

import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.hw.core.program import (BIAS_LATENCY, Destination, GemmProgram, OperandRead,
                                      Source, memory_images, memory_lanes, memory_words)
from intar_hw.hw.core.window import Window
from intar_hw.schedule import cost


# --- validation: one test per parameter, messages pinned -----------------------------------------

def make(**overrides):
    params = dict(pea=(2, 2, 1), M=4, N=4, K=4)
    params.update(overrides)
    return GemmProgram(**params)


def test_pea():
    with pytest.raises(TypeError, match=r"^GemmProgram pea must be a tuple of 3 integers, "
                                        r"not \[2, 2, 1\]$"):
        make(pea=[2, 2, 1])
    with pytest.raises(TypeError, match=r"^GemmProgram pea must be a tuple of 3 integers, "
                                        r"not \(2, 2\)$"):
        make(pea=(2, 2))
    with pytest.raises(ValueError, match=r"^GemmProgram pea dimensions must be positive "
                                         r"integers, not \(2, 0, 1\)$"):
        make(pea=(2, 0, 1))


@pytest.mark.parametrize("name", ["M", "N", "K", "batch"])
def test_counts(name):
    with pytest.raises(TypeError, match=rf"^GemmProgram {name} must be an integer, not 4\.0$"):
        make(**{name: 4.0})
    with pytest.raises(TypeError, match=rf"^GemmProgram {name} must be an integer, not True$"):
        make(**{name: True})
    with pytest.raises(ValueError, match=rf"^GemmProgram {name} must be a positive integer, "
                                         rf"not 0$"):
        make(**{name: 0})


def test_orientation():
    with pytest.raises(TypeError, match=r"^GemmProgram orientation must be a string, not 1$"):
        make(orientation=1)
    with pytest.raises(ValueError, match=r"^GemmProgram orientation must be 'MN' or 'NM', "
                                         r"not 'MK'$"):
        make(orientation="MK")


def test_dest():
    with pytest.raises(TypeError, match=r"^GemmProgram dest must be a Destination, "
                                        r"not Source.ACTIVATIONS$"):
        make(dest=Source.ACTIVATIONS)


def test_dest_base():
    with pytest.raises(TypeError, match=r"^GemmProgram dest_base must be an integer, not '0'$"):
        make(dest_base="0")
    with pytest.raises(ValueError, match=r"^GemmProgram dest_base must be a non-negative "
                                         r"integer, not -1$"):
        make(dest_base=-1)


def test_bias_base():
    with pytest.raises(TypeError, match=r"^GemmProgram bias_base must be an integer or None, "
                                        r"not False$"):
        make(bias_base=False)
    with pytest.raises(ValueError, match=r"^GemmProgram bias_base must be a non-negative "
                                         r"integer, not -2$"):
        make(bias_base=-2)


def test_shift():
    with pytest.raises(TypeError, match=r"^GemmProgram shift must be an integer, not 1\.5$"):
        make(shift=1.5)
    with pytest.raises(ValueError, match=r"^GemmProgram shift must be between 0 and 62, "
                                         r"not 63$"):
        make(shift=63)


def test_out_format():
    with pytest.raises(TypeError, match=r"^GemmProgram out_format must be a Format or a name "
                                        r"like 'int8', not 8$"):
        make(out_format=8)
    with pytest.raises(ValueError, match=r"^GemmProgram out_format must be a name like 'int8', "
                                         r"not 'int99'$"):
        make(out_format="int99")
    assert make(out_format="int16").out_format == numerics.INT16
    assert make().out_format == numerics.INT8


def test_relu():
    with pytest.raises(TypeError, match=r"^GemmProgram relu must be a bool, not 1$"):
        make(relu=1)


def test_frozen_and_hashable():
    program = make()
    with pytest.raises(AttributeError):
        program.M = 5
    assert program == make() and hash(program) == hash(make())
    assert repr(Source.WEIGHTS) == "Source.WEIGHTS"
    assert repr(Destination.RESULTS) == "Destination.RESULTS"


# --- operand reads: OperandRead's own checks, then those that need the program ------------------

FLAT = Window(images=1, channels=1, height=3, width=3, out_height=3, out_width=3, kernel=3,
              padding=1, word_elements=2)


def test_read_source():
    with pytest.raises(TypeError, match=r"^OperandRead source must be a Source, "
                                        r"not 'activations'$"):
        OperandRead("activations")


def test_read_base():
    with pytest.raises(TypeError, match=r"^OperandRead base must be an integer, not '0'$"):
        OperandRead(Source.WEIGHTS, "0")
    with pytest.raises(ValueError, match=r"^OperandRead base must be a non-negative integer, "
                                         r"not -1$"):
        OperandRead(Source.WEIGHTS, -1)


@pytest.mark.parametrize("name", ["lanes", "slots"])
def test_read_lanes_and_slots(name):
    with pytest.raises(TypeError, match=rf"^OperandRead {name} must be an integer or None, "
                                        rf"not 2\.0$"):
        OperandRead(Source.PEER, **{name: 2.0})
    with pytest.raises(ValueError, match=rf"^OperandRead {name} must be a positive integer or "
                                         rf"None, not 0$"):
        OperandRead(Source.PEER, **{name: 0})


@pytest.mark.parametrize("name", ["gather_tiles", "transposed"])
def test_read_flags(name):
    with pytest.raises(TypeError, match=rf"^OperandRead {name} must be a bool, not 1$"):
        OperandRead(Source.RESULTS, **{name: 1})


def test_read_gather():
    with pytest.raises(TypeError, match=r"^OperandRead gather must be a tuple of at least two "
                                        r"\(Source, base\) pairs or None, not "
                                        r"\(\(Source.RESULTS, 0\),\)$"):
        OperandRead(Source.RESULTS, gather=((Source.RESULTS, 0),))
    with pytest.raises(TypeError, match=r"^OperandRead gather must be a tuple"):
        OperandRead(Source.RESULTS, gather=((Source.RESULTS, 0), (Source.PEER, -1)))
    for source, gather in ((Source.RESULTS, ((Source.PEER, 0), (Source.RESULTS, 0))),
                           (Source.RESULTS, ((Source.RESULTS, 0), (Source.RESULTS, 2))),
                           (Source.SIDES, ((Source.SIDES, 0), (Source.PEER, 0)))):
        with pytest.raises(ValueError, match=r"^OperandRead gather must start with \(source, "
                                             r"base\) and name Source.RESULTS and Source.PEER "
                                             r"at most once each, not "):
            OperandRead(source, gather=gather)
    gather = ((Source.RESULTS, 2), (Source.PEER, 5))
    assert OperandRead(Source.RESULTS, 2, gather=gather).parts == gather
    assert OperandRead(Source.WEIGHTS, 3).parts == ((Source.WEIGHTS, 3),)


def test_read_gather_tiles_needs_gather():
    with pytest.raises(ValueError, match=r"^OperandRead gather_tiles needs gather$"):
        OperandRead(Source.RESULTS, gather_tiles=True)


def test_read_tile_stride():
    with pytest.raises(TypeError, match=r"^OperandRead tile_stride must be an integer, "
                                        r"not 1\.5$"):
        OperandRead(Source.RESULTS, tile_stride=1.5)
    with pytest.raises(ValueError, match=r"^OperandRead tile_stride must be a positive integer, "
                                         r"not 0$"):
        OperandRead(Source.RESULTS, tile_stride=0)
    with pytest.raises(ValueError, match=r"^OperandRead tile_stride needs a read in result "
                                         r"layout from one result memory, not from "
                                         r"Source.ACTIVATIONS with gather None$"):
        OperandRead(Source.ACTIVATIONS, tile_stride=2)
    with pytest.raises(ValueError, match=r"^OperandRead tile_stride needs a read in result "
                                         r"layout from one result memory"):
        OperandRead(Source.RESULTS, gather=((Source.RESULTS, 0), (Source.PEER, 0)),
                    tile_stride=2)


def test_read_transposed_needs_a_result_memory():
    with pytest.raises(ValueError, match=r"^OperandRead transposed needs a read from a result "
                                         r"memory, not from Source.WEIGHTS$"):
        OperandRead(Source.WEIGHTS, transposed=True)


def test_read_window():
    with pytest.raises(TypeError, match=r"^OperandRead window must be a Window or None, "
                                        r"not 'window'$"):
        OperandRead(Source.ACTIVATIONS, window="window")
    for source in (Source.RESULTS, Source.WEIGHTS):
        with pytest.raises(ValueError, match=rf"^OperandRead window reads Source.ACTIVATIONS in "
                                             rf"'flat' layout or Source.RESULTS or Source.PEER "
                                             rf"in 'result' layout, not {source!r} in 'flat'$"):
            OperandRead(source, window=FLAT)
    with pytest.raises(ValueError, match=r"^OperandRead window reads Source.PEER exactly when "
                                         r"some of its parts are the peer's$"):
        OperandRead(Source.PEER, window=replace(FLAT, layout="result"))
    with pytest.raises(ValueError, match=r"^OperandRead window takes no gather or "
                                         r"tile_stride$"):
        OperandRead(Source.ACTIVATIONS, window=FLAT, tile_stride=2)
    with pytest.raises(ValueError, match=r"^OperandRead base must be the window's base 0, "
                                         r"not 3$"):
        OperandRead(Source.ACTIVATIONS, 3, window=FLAT)


def test_read_kinds():
    loaded = OperandRead(Source.ACTIVATIONS)
    assert not loaded.computed and not loaded.laid_out
    assert OperandRead(Source.PEER).computed and OperandRead(Source.PEER).laid_out
    windowed = OperandRead(Source.RESULTS, window=replace(FLAT, layout="result"))
    assert windowed.computed and not windowed.laid_out


@pytest.mark.parametrize("name", ["a", "b"])
def test_reads_are_records(name):
    with pytest.raises(TypeError, match=rf"^GemmProgram {name} must be an OperandRead, "
                                        rf"not Source.WEIGHTS$"):
        make(**{name: Source.WEIGHTS})


def test_sources_differ():
    with pytest.raises(ValueError, match=r"^GemmProgram a.source and b.source must be different "
                                         r"memories, not Source.WEIGHTS for both$"):
        make(a=OperandRead(Source.WEIGHTS))


def test_reads_resolve_their_defaults():
    # A read in result layout is stored with its lanes and slots, as if they were given.
    program = make(a=OperandRead(Source.RESULTS), b=OperandRead(Source.PEER, 3, slots=4),
                   slots=2)
    assert program.a == OperandRead(Source.RESULTS, lanes=2, slots=2)
    assert program.b == OperandRead(Source.PEER, 3, lanes=2, slots=4)
    explicit = make(a=OperandRead(Source.RESULTS, lanes=2, slots=2),
                    b=OperandRead(Source.PEER, 3, lanes=2, slots=4), slots=2)
    assert program == explicit and hash(program) == hash(explicit)
    assert make().a == OperandRead(Source.ACTIVATIONS)
    assert make().b == OperandRead(Source.WEIGHTS)


def test_reads_own_result_memory():
    with pytest.raises(ValueError, match=r"^GemmProgram reading A from Source.RESULTS needs "
                                         r"a.lanes d2 \(2\) and a.slots slots \(2\), not 4 and "
                                         r"2$"):
        make(a=OperandRead(Source.RESULTS, lanes=4), slots=2)
    with pytest.raises(ValueError, match=r"^GemmProgram reading B from Source.RESULTS needs "
                                         r"b.lanes d2 \(2\) and b.slots slots \(2\), not 2 and "
                                         r"4$"):
        make(b=OperandRead(Source.RESULTS, slots=4), slots=2)


def test_a_is_read_as_rows():
    with pytest.raises(ValueError, match=r"^GemmProgram a.transposed must be False \(B alone "
                                         r"is read transposed\)$"):
        make(a=OperandRead(Source.RESULTS, transposed=True))


def test_a_tile_stride():
    assert make(a=OperandRead(Source.RESULTS, tile_stride=2), slots=2).a.tile_stride == 2
    with pytest.raises(ValueError, match=r"^GemmProgram a.tile_stride needs a.slots equal to "
                                         r"A's 2 rows per tile and batch 1, not 2 and 2$"):
        make(a=OperandRead(Source.RESULTS, tile_stride=2), slots=2, batch=2)
    with pytest.raises(ValueError, match=r"^GemmProgram a.tile_stride needs a.slots equal to "
                                         r"A's 2 rows per tile and batch 1, not 4 and 1$"):
        make(a=OperandRead(Source.PEER, slots=4, tile_stride=2))


def test_b_takes_no_fields_of_a():
    with pytest.raises(ValueError, match=r"^GemmProgram b.window, b.gather_tiles and "
                                         r"b.tile_stride must be None, False and 1 \(A's "
                                         r"alone\), not None, False and 2$"):
        make(b=OperandRead(Source.RESULTS, tile_stride=2))


def test_b_layout():
    with pytest.raises(ValueError, match=r"^GemmProgram reading B transposed from "
                                         r"Source.RESULTS needs d3 == 1 and its 2 rows per tile "
                                         r"within one word of 2 lanes, not pea \(2, 2, 2\), "
                                         r"N=4$"):
        make(pea=(2, 2, 2), b=OperandRead(Source.RESULTS, transposed=True))
    with pytest.raises(ValueError, match=r"^GemmProgram reading B from Source.PEER needs d3 "
                                         r"dividing its 2 lanes and N <= b.slots or b.slots a "
                                         r"multiple of B's 2 rows per tile, not N=4, "
                                         r"b.slots=1, pea \(2, 2, 1\)$"):
        make(b=OperandRead(Source.PEER))
    with pytest.raises(ValueError, match=r"^GemmProgram b.gather needs B read transposed, or as "
                                         r"rows with b.slots equal to B's 2 rows per tile, "
                                         r"not 4$"):
        make(b=OperandRead(Source.PEER, slots=4, gather=((Source.PEER, 0), (Source.RESULTS, 0))))


# --- derived values -------------------------------------------------------------------------------

@pytest.mark.parametrize("pea,orientation,batch,M,N,K", [
    ((2, 2, 1), "MN", 1, 4, 4, 4),
    ((2, 3, 2), "MN", 1, 5, 4, 5),
    ((3, 2, 1), "NM", 1, 5, 4, 3),
    ((2, 2, 4), "MN", 2, 3, 4, 10),
    ((4, 2, 1), "NM", 1, 1, 6, 3),
])
def test_matches_cost_model(pea, orientation, batch, M, N, K):
    program = GemmProgram(pea, M, N, K, batch=batch, orientation=orientation)
    busy, loops = cost.core_cycles(pea, orientation, batch, M, N, K)
    assert program.busy_cycles == busy
    assert program.tiles == loops
    assert program.cycles == busy + cost.ARRAY_LATENCY
    biased = GemmProgram(pea, M, N, K, batch=batch, orientation=orientation, bias_base=0)
    assert biased.cycles == busy + cost.ARRAY_LATENCY + BIAS_LATENCY
    # The P side holds the array's rows.
    assert program.p_tiles * program.q_tiles == loops[0] * loops[1]
    assert 1 <= program.p_rem <= pea[0] and 1 <= program.q_rem <= pea[1]
    assert 1 <= program.k_rem <= pea[2]


def test_geometry_nm():
    program = GemmProgram((3, 2, 2), 5, 4, 3, orientation="NM",
                          a=OperandRead(Source.ACTIVATIONS, 7), b=OperandRead(Source.WEIGHTS, 9))
    assert (program.dm, program.dn, program.kb) == (2, 3, 2)
    assert (program.p_rows, program.q_rows) == (4, 5)
    assert (program.p_tiles, program.q_tiles, program.p_rem, program.q_rem) == (2, 3, 1, 1)
    assert (program.p_source, program.q_source) == (Source.WEIGHTS, Source.ACTIVATIONS)
    assert (program.p_base, program.q_base) == (9, 7)
    assert program.k_rem == 1


# --- memory layouts -------------------------------------------------------------------------------

def test_operand_image_blocks_rows():
    # MN on (2, 3, 2): A in blocks of 2 rows, B in blocks of 3 rows, kb = 2 beats of 2.
    program = GemmProgram((2, 3, 2), 3, 2, 3)
    A = np.arange(1, 10).reshape(3, 3)
    assert program.a_image(A) == [
        [[1, 2], [4, 5]], [[3, 0], [6, 0]],      # rows 0-1: beat 0, beat 1
        [[7, 8], [0, 0]], [[9, 0], [0, 0]],      # row 2 and a padding row
    ]
    B = np.array([[1, 2, 3], [4, 5, 6]])
    assert program.b_image(B, lanes=4) == [
        [[1, 2], [4, 5], [0, 0], [0, 0]], [[3, 0], [6, 0], [0, 0], [0, 0]],
    ]
    assert program.a_words == len(program.a_image(A)) and program.b_words == 2
    with pytest.raises(ValueError, match=r"^GemmProgram operand A must have shape \(1, 3, 3\), "
                                         r"not \(3, 4\)$"):
        program.a_image(np.zeros((3, 4)))


def test_operand_image_nm_and_batch():
    # NM on (2, 3, 1): B is on the rows (blocks of 2), A on the columns (blocks of 3).
    program = GemmProgram((2, 3, 1), 2, 3, 1, batch=2, orientation="NM")
    A = np.array([[[1], [2]], [[3], [4]]])
    assert program.a_image(A) == [[[1], [2], [0]], [[3], [4], [0]]]
    B = np.array([[[1], [2], [3]], [[4], [5], [6]]])
    assert program.b_image(B) == [[[1], [2]], [[3], [0]], [[4], [5]], [[6], [0]]]


def test_bias_image():
    mn = GemmProgram((2, 3, 1), 2, 4, 1, bias_base=0)
    assert mn.bias_image([1, 2, 3, 4]) == [[1, 2, 3], [4, 0, 0]]
    assert mn.bias_words == 2
    nm = GemmProgram((2, 3, 1), 2, 4, 1, orientation="NM", bias_base=0)
    assert nm.bias_image([1, 2, 3, 4]) == [[1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]]
    assert nm.bias_words == 4
    assert GemmProgram((2, 3, 1), 2, 4, 1).bias_words == 0
    with pytest.raises(ValueError, match=r"^GemmProgram bias must have 4 values, not 3$"):
        mn.bias_image([1, 2, 3])


def test_result_from_words():
    C = np.arange(6).reshape(1, 2, 3)
    mn = GemmProgram((2, 2, 1), 2, 3, 1)
    words = [[0, 1], [2, 0], [3, 4], [5, 0]]
    assert mn.dest_words == 4
    np.testing.assert_array_equal(mn.result_from_words(words), C)
    nm = GemmProgram((2, 2, 1), 2, 3, 1, orientation="NM")
    # C^T row by row: (0, 3), (1, 4), (2, 5).
    np.testing.assert_array_equal(nm.result_from_words([[0, 3], [1, 4], [2, 5]]), C)
    with pytest.raises(ValueError, match=r"^GemmProgram result has non-zero padding lanes$"):
        mn.result_from_words([[0, 1], [2, 9], [3, 4], [5, 0]])
    with pytest.raises(ValueError, match=r"^GemmProgram result must be 4 words of 2 lanes, not "
                                         r"an array of shape \(3, 2\)$"):
        mn.result_from_words(words[:3])


def test_memories():
    p0 = GemmProgram((2, 3, 1), 5, 4, 2, a=OperandRead(Source.ACTIVATIONS, 3), bias_base=1,
                     dest_base=2)
    p1 = GemmProgram((2, 3, 1), 3, 7, 2, orientation="NM", a=OperandRead(Source.WEIGHTS, 4),
                     b=OperandRead(Source.ACTIVATIONS, 40))
    # activations feed the rows in both programs (A of p0, B of p1); weights the columns.
    assert memory_lanes((p0, p1)) == {"activations": 2, "weights": 3}
    assert p0.extents() == {"activations": 3 + 3 * 2, "weights": 2 * 2, "results": 2 + 5 * 2,
                            "biases": 1 + 2}
    assert memory_words((p0, p1)) == {"activations": 40 + 4 * 2, "weights": 4 + 1 * 2,
                                      "results": 12, "biases": 3}


def test_memory_images():
    rng = np.random.default_rng(0)
    p0 = GemmProgram((2, 3, 1), 5, 4, 2, a=OperandRead(Source.ACTIVATIONS, 3), bias_base=1)
    p1 = GemmProgram((2, 3, 1), 3, 7, 2, orientation="NM", a=OperandRead(Source.WEIGHTS, 4),
                     b=OperandRead(Source.ACTIVATIONS, 40))
    A0, B0, bias0 = rng.integers(-8, 8, (5, 2)), rng.integers(-8, 8, (4, 2)), [5, 6, 7, 8]
    A1, B1 = rng.integers(-8, 8, (3, 2)), rng.integers(-8, 8, (7, 2))
    images = memory_images((p0, p1), [(A0, B0, bias0), (A1, B1, None)],
                           depths={"weights": 10})
    assert set(images) == {"activations", "weights", "biases"}
    assert len(images["activations"]) == 48 and len(images["weights"]) == 10
    assert images["activations"][3:9] == p0.a_image(A0, 2)
    assert images["activations"][40:48] == p1.b_image(B1, 2)
    assert images["weights"][0:4] == p0.b_image(B0, 3)
    assert images["weights"][4:6] == p1.a_image(A1, 3)
    assert images["weights"][6:] == [[[0], [0], [0]]] * 4
    assert images["biases"] == [[0, 0, 0], [5, 6, 7], [8, 0, 0]]
    assert images["activations"][0] == [[0], [0]]
    assert memory_images((p0, p1), [None, (A1, B1, None)])["biases"] == [[0, 0, 0]] * 3
    with pytest.raises(ValueError, match=r"^memory_images needs a bias for a program with "
                                         r"bias_base$"):
        memory_images((p0,), [(A0, B0, None)])
