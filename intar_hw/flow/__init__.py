"""From components to files: Verilog export, simulation harnesses, synthesis and reports."""
