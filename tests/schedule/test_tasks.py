# amaranth: UnusedElaboratable=no
import pytest

from intar_hw.hw.line_buffer import LineBuffer
from intar_hw.schedule.tasks import ConvGeometry


def geometry(height, kernel, stride, padding, dilation):
    out = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return ConvGeometry(in_channels=1, in_height=height, in_width=height, out_height=out,
                        out_width=out, kernel=(kernel, kernel), stride=(stride, stride),
                        padding=(padding, padding), dilation=(dilation, dilation),
                        transposed=False)


@pytest.mark.parametrize("height,kernel,stride,padding,dilation", [
    (8, 3, 1, 1, 1), (9, 3, 2, 1, 1), (10, 3, 3, 0, 1), (9, 3, 1, 2, 2), (3, 5, 1, 2, 1),
])
def test_line_buffer_geometry_is_the_hardware_s(height, kernel, stride, padding, dilation):
    # The cost model sizes and times the line buffer that the generator instantiates.
    conv = geometry(height, kernel, stride, padding, dilation)
    hardware = LineBuffer(height, height, 1, kernel, stride=stride, padding=padding,
                          dilation=dilation)
    assert conv.first_rows == hardware.first_rows
    assert conv.line_rows == hardware.buffer_rows
