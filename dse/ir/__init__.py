"""Layer graph IR: FINN HW layers and streams, loaded from QONNX, FINN-ONNX or HW ONNX."""

from dse.ir.graph import Edge, HostNode, Layer, LayerGraph
from dse.ir.lower import load_network

__all__ = ["Edge", "HostNode", "Layer", "LayerGraph", "load_network"]
