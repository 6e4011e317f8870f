"""The layer graph: FINN hardware layers and the streams between them (a DAG)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dse.exceptions import ModelLoadError
from dse.models import LayerCost, estimate, split_op_type
from dse.models._common import bits as dtype_bits
from dse.models._common import prod
from dse.models.registry import default_impl, normalize_attrs


def _freeze(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    out = {}
    for k, v in sorted(attrs.items()):
        out[k] = tuple(v) if isinstance(v, list) else v
    return MappingProxyType(out)


def _thaw(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """One FINN HW layer.

    ``op_type`` is FINN's generic op type (``MVAU``); ``impl`` is ``"hls"``/``"rtl"`` when the
    source graph was already specialized, else ``None`` (SpecializeLayers' choice applies).
    ``attrs`` holds FINN's attributes under FINN's names, folding included.
    """

    name: str
    op_type: str
    impl: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    source_nodes: tuple[str, ...] = ()
    absorbed: tuple[str, ...] = ()  # ONNX nodes folded into this layer (BN, scales, weights)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", _freeze(self.attrs))

    @property
    def specialized_op_type(self) -> str:
        return f"{self.op_type}_{self.impl}" if self.impl else self.op_type

    def finn_attrs(self) -> dict[str, Any]:
        """Attributes as FINN takes them (lists, not tuples)."""
        return {k: _thaw(v) for k, v in self.attrs.items()}

    def with_attrs(self, **changes: Any) -> Layer:
        a = self.finn_attrs()
        a.update(changes)
        return Layer(name=self.name, op_type=self.op_type, impl=self.impl, attrs=a,
                     inputs=self.inputs, outputs=self.outputs, source_nodes=self.source_nodes,
                     absorbed=self.absorbed)

    def cost(self, part: str | None = None, **folding: Any) -> LayerCost:
        """FINN's estimate at the layer's own folding, or with ``folding`` overrides."""
        a = self.finn_attrs()
        a.update(folding)
        return estimate(self.specialized_op_type, a, part)

    @property
    def weight_bits(self) -> int:
        """Bits of weights the layer stores (what external memory would hold)."""
        a = self.attrs
        if self.op_type == "MVAU":
            return int(a["MW"]) * int(a["MH"]) * dtype_bits(a["weightDataType"])
        if self.op_type == "VVAU":
            return int(a["Channels"]) * prod(a["Kernel"]) * dtype_bits(a["weightDataType"])
        return 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "impl": self.impl,
            "attrs": self.finn_attrs(),
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "source_nodes": list(self.source_nodes),
            "absorbed": list(self.absorbed),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """A stream: ``src`` layer output -> ``dst`` layer input (``None`` = graph boundary)."""

    tensor: str
    src: str | None
    dst: str | None
    dtype: str
    elems_per_frame: int

    @property
    def bits_per_frame(self) -> int:
        """Payload bits per frame (folding-independent: elements x element bits)."""
        return self.elems_per_frame * dtype_bits(self.dtype)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "src": self.src,
            "dst": self.dst,
            "dtype": self.dtype,
            "elems_per_frame": self.elems_per_frame,
            "bits_per_frame": self.bits_per_frame,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HostNode:
    """An ONNX node left outside the FPGA pipeline (as FINN leaves it), with the reason."""

    name: str
    op_type: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerGraph:
    """FINN HW layers in topological order and the edges between them."""

    name: str
    layers: tuple[Layer, ...]
    edges: tuple[Edge, ...]
    host_nodes: tuple[HostNode, ...] = ()
    source_path: str = ""
    source_sha256: str = ""
    notes: tuple[str, ...] = ()
    minimized_bit_width: bool = False  # weight/accumulator types as FINN's minimize_bit_width
    _index: dict[str, Any] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        names = [lyr.name for lyr in self.layers]
        if len(set(names)) != len(names):
            raise ModelLoadError(f"{self.name}: duplicate layer names in the layer graph")
        idx = {n: i for i, n in enumerate(names)}
        for e in self.edges:
            for end in (e.src, e.dst):
                if end is not None and end not in idx:
                    raise ModelLoadError(f"{self.name}: edge {e.tensor} names unknown layer {end}")
            if e.src is not None and e.dst is not None and idx[e.src] >= idx[e.dst]:
                raise ModelLoadError(
                    f"{self.name}: layers are not in topological order at edge {e.tensor}"
                )

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def _lookup(self) -> dict[str, Any]:
        """Name -> layer / in-edges / out-edges, built once (look-ups stay O(1))."""
        if not self._index:
            by_name = {lyr.name: lyr for lyr in self.layers}
            ins: dict[str | None, list[Edge]] = {}
            outs: dict[str | None, list[Edge]] = {}
            for e in self.edges:
                ins.setdefault(e.dst, []).append(e)
                outs.setdefault(e.src, []).append(e)
            self._index.update(layers=by_name, ins=ins, outs=outs)
        return self._index

    def layer(self, name: str) -> Layer:
        return self._lookup()["layers"][name]

    def index(self) -> dict[str, int]:
        return {lyr.name: i for i, lyr in enumerate(self.layers)}

    def internal_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.src is not None and e.dst is not None]

    def in_edges(self, name: str) -> list[Edge]:
        return list(self._lookup()["ins"].get(name, ()))

    def out_edges(self, name: str) -> list[Edge]:
        return list(self._lookup()["outs"].get(name, ()))

    def finn_names(self, part: str | None = None) -> dict[str, str]:
        """Layer name -> the name FINN gives it after SpecializeLayers and GiveUniqueNodeNames
        (``MVAU_hls_0``): specialized op type and a counter per type, in layer order (the
        lowering orders layers as FINN's SortGraph does)."""
        count: dict[str, int] = {}
        out = {}
        for lyr in self.layers:
            op = lyr.specialized_op_type
            if lyr.impl is None:
                impl = default_impl(lyr.op_type, normalize_attrs(lyr.op_type, lyr.finn_attrs()),
                                    part)
                op = f"{lyr.op_type}_{impl}"
            k = count.get(op, 0)
            count[op] = k + 1
            out[lyr.name] = f"{op}_{k}"
        return out

    def op_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lyr in self.layers:
            out[lyr.op_type] = out.get(lyr.op_type, 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_path": self.source_path,
            "source_sha256": self.source_sha256,
            "layers": [lyr.as_dict() for lyr in self.layers],
            "edges": [e.as_dict() for e in self.edges],
            "host_nodes": [
                {"name": h.name, "op_type": h.op_type, "reason": h.reason} for h in self.host_nodes
            ],
            "notes": list(self.notes),
            "minimized_bit_width": self.minimized_bit_width,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerGraph:
        try:
            layers = tuple(
                Layer(name=lyr["name"], op_type=lyr["op_type"], impl=lyr.get("impl"),
                      attrs=lyr["attrs"],
                      inputs=tuple(lyr["inputs"]), outputs=tuple(lyr["outputs"]),
                      source_nodes=tuple(lyr.get("source_nodes", ())),
                      absorbed=tuple(lyr.get("absorbed", ())))
                for lyr in d["layers"]
            )
            edges = tuple(
                Edge(tensor=e["tensor"], src=e["src"], dst=e["dst"], dtype=e["dtype"],
                     elems_per_frame=int(e["elems_per_frame"]))
                for e in d["edges"]
            )
            hosts = tuple(HostNode(**h) for h in d.get("host_nodes", ()))
        except (KeyError, TypeError) as e:
            raise ModelLoadError(f"layer graph JSON is malformed: missing or bad field {e}"
                                 ) from None
        for lyr in layers:
            split_op_type(lyr.op_type)  # unknown op types fail early with the list of known ones
        return cls(name=d["name"], layers=layers, edges=edges, host_nodes=hosts,
                   source_path=d.get("source_path", ""), source_sha256=d.get("source_sha256", ""),
                   notes=tuple(d.get("notes", ())),
                   minimized_bit_width=bool(d.get("minimized_bit_width", False)))

    @classmethod
    def from_json(cls, text: str) -> LayerGraph:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ModelLoadError(f"layer graph JSON is not valid JSON: {e}") from None
