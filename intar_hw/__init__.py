"""intar-hw: generate inter-task auto-reconfigurable (InTAR) DNN accelerators in Amaranth."""
