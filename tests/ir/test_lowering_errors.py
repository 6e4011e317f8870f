"""A failure inside a lowering rule is dse's bug (exit 3, one line, ``--debug`` traceback); a
node with no FINN hardware mapping is the model's (exit 2, naming the node and the reason)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import helper

from dse.api import example_model_path
from dse.cli import main
from dse.exceptions import InternalError, UnsupportedLayerError
from dse.ir import load_network
from dse.ir.lowering import RULES


def _broken_rule(lw, node) -> None:  # noqa: ANN001 - a rule's signature
    raise KeyError("no such tensor")


def test_a_rule_that_raises_is_an_internal_error(monkeypatch, capsys) -> None:
    monkeypatch.setitem(RULES, "MaxPool", _broken_rule)
    with pytest.raises(InternalError, match=r"_broken_rule failed on MaxPool .*KeyError"):
        load_network(example_model_path())
    assert main(["inspect"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "internal error" in err and "MaxPool" in err and "KeyError" in err
    assert "Traceback" not in err
    assert main(["--debug", "inspect"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "no such tensor" in err


def _with_unmappable_tail(tmp_path: Path) -> Path:
    """The example network with a ``Sin`` on its output: FINN has no HW layer for it."""
    m = onnx.load(str(example_model_path()))
    out = m.graph.output[0]
    m.graph.node.append(helper.make_node("Sin", [out.name], ["sin_out"], name="the_sine"))
    new_out = onnx.ValueInfoProto()
    new_out.CopyFrom(out)
    new_out.name = "sin_out"
    m.graph.output.remove(out)
    m.graph.output.append(new_out)
    p = tmp_path / "sine.onnx"
    onnx.save(m, str(p))
    return p


def test_a_node_without_mapping_is_bad_input_naming_it(tmp_path: Path, capsys) -> None:
    p = _with_unmappable_tail(tmp_path)
    with pytest.raises(UnsupportedLayerError) as e:
        load_network(p)
    assert ("Sin_0", "Sin") in e.value.nodes  # qonnx renames nodes uniquely
    assert main(["inspect", "--model", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Sin 'Sin_0' (no FINN HW layer for this op)" in err
    assert "internal error" not in err


def test_a_broadcast_that_is_no_head_repeat_is_named_with_its_reason(tmp_path: Path) -> None:
    """Expand of a stream outside repeat_kv: FINN has no layer that broadcasts a stream; the
    node is named with the reason, nothing else is blamed."""
    from onnx import TensorProto

    inits = [helper.make_tensor(n, TensorProto.FLOAT, [], [v])
             for n, v in (("s", 0.05), ("z", 0.0), ("b", 8.0))]
    inits.append(helper.make_tensor("shape", TensorProto.INT64, [3], [1, 8, 16]))
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], name="q",
                              domain="qonnx.custom_op.general", signed=1, narrow=0,
                              rounding_mode="ROUND"),
             helper.make_node("Expand", ["xq", "shape"], ["y"], name="bcast")]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16])],
                          inits)
    p = tmp_path / "bcast.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                  helper.make_opsetid(
                                                      "qonnx.custom_op.general", 1)]), p)
    with pytest.raises(UnsupportedLayerError, match="Expand 'Expand_0' \\(Expand that is not "
                       "a repeat of attention heads") as e:
        load_network(p)
    assert e.value.nodes == [("Expand_0", "Expand")]
