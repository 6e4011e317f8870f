"""dse: joint folding and multi-FPGA partitioning of quantized networks for FINN."""

__version__ = "0.1.0"
