// Behavioural model of the Lattice ECP5 MULT18X18D for simulating intar-hw's exported Verilog
// (Yosys ships only a black box). It covers what intar_hw.hw.tech instantiates, written from
// the sysDSP usage guide: optional A, B, pipeline and output registers, each clocked by CLK0
// and enabled by CE0, with synchronous reset by RST0; signed or unsigned 18-bit operands; a
// 36-bit product. The C input, shift chains, cascade and the other clocks are not modelled:
// a configuration that needs them stops the simulation.
module MULT18X18D(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17, C0, C1, C2, C3,
    C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3,
    RST0, RST1, RST2, RST3, P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15,
        P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33,
        P34, P35);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";
  input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, B0, B1, B2,
      B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17, C0, C1, C2, C3, C4, C5,
      C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17;
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3;
  input RST0, RST1, RST2, RST3;
  output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19,
      P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35;

  initial begin
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") ||
        (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0") ||
        (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0") ||
        (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") ||
        REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0" ||
        REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0" ||
        REG_PIPELINE_RST != "RST0" || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC") begin
      $display("MULT18X18D model: unsupported configuration");
      $finish;
    end
  end

  wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1,
      A0};
  wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1,
      B0};
  reg [17:0] a_reg = 0, b_reg = 0;
  reg sa_reg = 0, sb_reg = 0;
  always @(posedge CLK0) begin
    if (RST0) begin
      a_reg <= 0; b_reg <= 0; sa_reg <= 0; sb_reg <= 0;
    end else if (CE0) begin
      a_reg <= a_in; b_reg <= b_in; sa_reg <= SIGNEDA; sb_reg <= SIGNEDB;
    end
  end
  wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_reg;
  wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_reg;
  wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_reg;
  wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_reg;
  // Extend each operand to 36 bits by its signedness; the low 36 bits of the product are exact.
  wire [35:0] a_wide = {{18{sa & a[17]}}, a};
  wire [35:0] b_wide = {{18{sb & b[17]}}, b};
  wire [35:0] product = a_wide * b_wide;

  reg [35:0] pipe = 0, out = 0;
  always @(posedge CLK0) begin
    if (RST0) pipe <= 0; else if (CE0) pipe <= product;
  end
  wire [35:0] piped = REG_PIPELINE_CLK == "NONE" ? product : pipe;
  always @(posedge CLK0) begin
    if (RST0) out <= 0; else if (CE0) out <= piped;
  end
  wire [35:0] result = REG_OUTPUT_CLK == "NONE" ? piped : out;
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
      P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = result;
endmodule
