"""The stream infrastructure FINN adds between layers: width converters and sized FIFOs.

**Width converters** follow FINN's ``InsertDWC``: a ``StreamingDataWidthConverter`` goes on
every stream between two HW layers whose folded shapes end differently (the producer's output
word is not the consumer's input word), from the producer's stream width to the consumer's;
``SpecializeLayers`` makes it RTL when one width divides the other, else HLS.

**FIFO depths** are sized the way FINN's characteristic-function sizing
(``DeriveCharacteristic`` / ``DeriveFIFOSizes``) reasons, with dse's own model of each
layer's token timing instead of RTL simulation: over two frames at the pipeline's II ``T``,
the cycle at which each layer consumes every input word and produces every output word (its
pattern within its own cycles per frame, the rest of ``T`` idle). The consumer starts as
late as it must never to read a word not yet produced; the FIFO holds the most words ever
produced and not yet consumed. The patterns (:func:`io_times`):

* MVAU: per input vector the ``MW/SIMD`` input words are read in the first ``MW/SIMD``
  cycles, then one output word leaves at the end of each of the ``MH/PE`` neuron folds;
* ConvolutionInputGenerator: it fills ``(k_h - 1)`` rows plus ``k_w`` pixels first, then
  emits one window word per cycle and reads the rest of the image spread over that time;
* GlobalAccPool: reads the frame, then emits;
* every other op reads and writes evenly over its cycles.

FINN keeps no FIFO of depth 2 or less (``RemoveShallowFIFOs``); depths up to 256 are SRL
FIFOs (``impl_style=rtl``), deeper ones Vivado FIFOs in URAM where the part has URAM, else in
BRAM (as finn-examples' MobileNet-v1 builds set them). Each is costed with FINN's
StreamingFIFO model, each converter with FINN's DWC model (``dse.models.infra``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.models import LayerCost, estimate

RES5 = ("lut", "ff", "bram18", "uram", "dsp")
SRL_MAX_DEPTH = 256  # FINN's max_qsrl_depth: deeper FIFOs are Vivado FIFOs in BRAM/URAM


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfra:
    """The converter and FIFO FINN puts on one stream (``src``/``dst`` None: the host)."""

    tensor: str
    src: str | None
    dst: str | None
    in_width: int  # the producer's stream width
    out_width: int  # the consumer's stream width
    dwc: LayerCost | None
    fifo_depth: int  # 0: no FIFO (FINN removes depth <= 2)
    fifo: LayerCost | None
    fifo_impl_style: str = "rtl"
    fifo_ram_style: str = "auto"

    def resources(self) -> dict[str, int]:
        out = dict.fromkeys(RES5, 0)
        for c in (self.dwc, self.fifo):
            if c is not None:
                for k in RES5:
                    out[k] += int(getattr(c, k))
        return out

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"tensor": self.tensor, "src": self.src, "dst": self.dst,
                             "in_width": self.in_width, "out_width": self.out_width}
        if self.dwc is not None:
            d["dwc"] = {"op_type": self.dwc.op_type, "lut": self.dwc.lut, "ff": self.dwc.ff}
        if self.fifo is not None:
            d["fifo"] = {"depth": self.fifo_depth, "impl_style": self.fifo_impl_style,
                         "ram_style": self.fifo_ram_style, "width": self.out_width,
                         **{k: int(getattr(self.fifo, k)) for k in RES5}}
        return d


# -- token timing ------------------------------------------------------------------------------


def _even(words: int, cycles: int) -> np.ndarray:
    """Word k of ``words`` spread evenly over ``cycles``: the cycle it is moved in."""
    k = np.arange(words, dtype=np.int64)
    return (k * max(cycles, words)) // max(words, 1)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def io_times(op_type: str, attrs: Mapping[str, Any], cost: LayerCost, in_words: int,
             out_words: int, *, outputs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(cycle each input word is read, cycle each output word is written) within one frame
    of a layer running alone at its own rate (``cost.cycles`` per frame); ``outputs=False``
    leaves the output times empty."""
    C = max(int(cost.cycles), in_words, out_words, 1)
    if not outputs:
        t_in, _ = io_times(op_type, attrs, cost, in_words, 0 if op_type == "MVAU" else 1)
        return t_in, np.zeros(0, dtype=np.int64)
    if op_type == "MVAU" and in_words:
        sf = max(1, int(attrs.get("MW", 1)) // max(1, int(attrs.get("SIMD", 1))))
        nf = max(1, int(attrs.get("MH", 1)) // max(1, int(attrs.get("PE", 1))))
        per = sf * nf
        k = np.arange(in_words, dtype=np.int64)
        j = np.arange(out_words, dtype=np.int64)
        return (k // sf) * per + k % sf, (j // nf) * per + (j % nf + 1) * sf - 1
    if op_type == "ConvolutionInputGenerator" and in_words:
        (ih, iw), (kh, kw) = _pair(attrs.get("IFMDim", 1)), _pair(attrs.get("ConvKernelDim", 1))
        per_px = max(1, in_words // max(1, ih * iw))
        fill = min(in_words, ((kh - 1) * iw + kw) * per_px)
        k = np.arange(in_words, dtype=np.int64)
        rest = max(1, in_words - fill)
        span = max(C - fill, out_words)
        t_in = np.where(k < fill, k, fill + ((k - fill) * span) // rest)
        return t_in, fill + _even(out_words, span)
    if op_type == "GlobalAccPool":
        return _even(in_words, C), C - out_words + np.arange(out_words, dtype=np.int64)
    return _even(in_words, C), _even(out_words, C)


def fifo_depth(produced: np.ndarray, consumed: np.ndarray, T: int,
               period: int | None = None) -> int:
    """Words a FIFO must hold between a producer writing word k at ``produced[k]`` (every
    ``T`` cycles, the pipeline's II) and a consumer whose own timing reads it at
    ``consumed[k]`` (every ``period`` cycles, its own cycles per frame; default ``T``), over
    two frames. The consumer stalls while its next word has not arrived (a blocking read):
    each stall delays the rest of its reads, so its read of word k is at ``consumed[k]``
    plus the longest wait so far."""
    if not len(produced) or not len(consumed):
        return 0
    n = min(len(produced), len(consumed))
    per = T if period is None else max(1, min(period, T))
    p = np.concatenate([produced[:n], produced[:n] + T])
    c = np.concatenate([consumed[:n], consumed[:n] + per])
    c = c + np.maximum(np.maximum.accumulate(p + 1 - c), 0)
    # occupancy just after each write: words written minus words read by then
    read = np.searchsorted(c, p, side="right")
    return int(np.max(np.arange(1, len(p) + 1) - read))


def as_consumer_words(produced: np.ndarray, w_prod: int, w_cons: int, n_cons: int
                      ) -> np.ndarray:
    """The cycle each consumer word is complete when the producer writes ``w_prod``-bit
    words at ``produced`` and the consumer reads ``w_cons``-bit words (a converter between)."""
    if w_prod == w_cons or not len(produced):
        return produced[:n_cons]
    need = ((np.arange(1, n_cons + 1, dtype=np.int64) * w_cons) + w_prod - 1) // w_prod - 1
    return produced[np.minimum(need, len(produced) - 1)]


# -- FINN's FIFO and DWC costs -------------------------------------------------------------


def fifo_style(depth: int, has_uram: bool) -> tuple[str, str]:
    if depth <= SRL_MAX_DEPTH:
        return "rtl", "auto"
    return "vivado", "ultra" if has_uram else "block"


def fifo_cost(depth: int, width: int, words: int, part: str | None, has_uram: bool
              ) -> tuple[LayerCost, str, str]:
    impl, ram = fifo_style(depth, has_uram)
    c = estimate("StreamingFIFO_rtl", {"depth": depth, "folded_shape": [max(1, words), width],
                                       "normal_shape": [max(1, words), width],
                                       "dataType": "BINARY", "impl_style": impl,
                                       "ram_style": ram}, part)
    return c, impl, ram


def dwc_cost(w_in: int, w_out: int, frame_bits: int, part: str | None) -> LayerCost:
    """FINN's DWC between widths (RTL when one divides the other, else HLS)."""
    impl = "rtl" if (w_in % w_out == 0 or w_out % w_in == 0) else "hls"
    g = math.gcd(w_in, w_out)
    return estimate(f"StreamingDataWidthConverter_{impl}",
                    {"shape": [max(1, frame_bits // g)], "inWidth": w_in // g * g,
                     "outWidth": w_out // g * g, "dataType": "BINARY"}, part)


def input_fifo(op_type: str, attrs: Mapping[str, Any], cost: LayerCost, part: str | None,
               has_uram: bool) -> tuple[int, dict[str, int]]:
    """The FIFO at a layer's first input when its producer streams evenly at this layer's
    own rate (the solver's per-folding share of the FIFOs): (depth, resources)."""
    w = cost.instream_width
    n_in = cost.input_words[0] if cost.input_words else 0
    n_out = cost.output_words[0] if cost.output_words else 0
    if not w or not n_in:
        return 0, dict.fromkeys(RES5, 0)
    C = max(int(cost.cycles), n_in, 1)
    if op_type == "MVAU":  # the burst of each input vector, in closed form
        sf = max(1, int(attrs.get("MW", 1)) // max(1, int(attrs.get("SIMD", 1))))
        nf = max(1, int(attrs.get("MH", 1)) // max(1, int(attrs.get("PE", 1))))
        depth = -(-(sf - 1) * (nf - 1) // nf)
    else:  # every g-th word is enough for a share (the plan sizes every word)
        t_in, _ = io_times(op_type, attrs, cost, n_in, n_out, outputs=False)
        g = max(1, -(-n_in // 2048))
        depth = g * fifo_depth(_even(n_in, C)[g - 1::g] // g, t_in[g - 1::g] // g,
                               -(-C // g))
    if depth <= 2:
        return 0, dict.fromkeys(RES5, 0)
    c, _, _ = fifo_cost(depth, w, n_in, part, has_uram)
    return depth, {k: int(getattr(c, k)) for k in RES5}


# -- a whole pipeline --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    """One layer as built: its op, FINN attributes (folding included) and estimate."""

    op_type: str
    attrs: Mapping[str, Any]
    cost: LayerCost
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _words(cost: LayerCost, idx: int, inbound: bool, bits: int, width: int) -> int:
    got = cost.input_words if inbound else cost.output_words
    if idx < len(got) and got[idx]:
        return int(got[idx])
    return max(1, -(-bits // max(1, width)))


FRAMES = 3  # frames simulated: the first fills the pipeline, the rest are its steady state


def _delayed(pattern: np.ndarray, reads: np.ndarray, stall: np.ndarray) -> np.ndarray:
    """Pattern times shifted by the stall accumulated by the reads before each of them."""
    idx = np.searchsorted(reads, pattern, side="right") - 1
    return pattern + np.where(idx >= 0, stall[np.maximum(idx, 0)], 0)


def simulate(edges: Sequence[Any], layers: Mapping[str, Placed], T: int,
             host_cycles: tuple[int, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per stream (tensor): (cycle each word is written, cycle it is read, in the
    consumer's words) over ``FRAMES`` frames. The input arrives evenly at the pipeline's II
    ``T`` (the IODMA is held back by the first FIFO when it is faster: no FIFO need hold
    more than that rate lets in); each layer follows
    its own pattern (:func:`io_times`, its frames back to back) and stalls while its next
    input word has not arrived, which delays everything after it (its outputs too)."""
    ins = {e.tensor: e for e in edges}
    written: dict[str, np.ndarray] = {}  # tensor -> write times (producer words)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    host = {n for n, pl in layers.items() if pl.cost.source.startswith("host")}
    frames = np.arange(FRAMES, dtype=np.int64)

    def source(n: int, cycles: int, period: int) -> np.ndarray:
        return (_even(n, max(cycles, n))[None, :] + frames[:, None] * period).ravel()

    def width(pl: Placed | None, idx: int, inbound: bool) -> int:
        if pl is None:
            return 0
        ws = pl.cost.instream_widths if inbound else pl.cost.outstream_widths
        return ws[idx] if idx < len(ws) else 0

    for e in edges:  # graph inputs (and streams out of host-side layers) come from the IODMA
        if e.src is None or e.src in host:
            cons = layers.get(e.dst) if e.dst else None
            w = width(cons, cons.inputs.index(e.tensor) if cons else 0, True) or 8
            written[e.tensor] = source(-(-int(e.bits_per_frame) // w), T, T)
    for name, pl in layers.items():
        if name in host:
            continue
        tensors = [t for t in pl.inputs if t in ins]
        n_in = _words(pl.cost, 0, True, 0, 1) if pl.cost.input_words else 1
        n_out = _words(pl.cost, 0, False, 0, 1) if pl.cost.output_words else 1
        t_in, t_out = io_times(pl.op_type, pl.attrs, pl.cost, n_in, n_out)
        C = max(int(pl.cost.cycles), n_in, n_out, 1)
        t_in = (t_in[None, :] + frames[:, None] * C).ravel()
        t_out = (t_out[None, :] + frames[:, None] * C).ravel()
        stall = np.zeros(len(t_in), dtype=np.int64)
        avail_of = {}
        for i, t in enumerate(tensors):
            e = ins[t]
            src = layers.get(e.src) if e.src is not None and e.src not in host else None
            o_idx = src.outputs.index(t) if src is not None else 0
            w_p = width(src, o_idx, False) or width(pl, i, True) or 8
            w_c = width(pl, i, True) or w_p
            n_c = _words(pl.cost, i, True, int(e.bits_per_frame), w_c)
            per_frame = written.get(t, np.zeros(0, dtype=np.int64)).reshape(FRAMES, -1)
            avail = np.concatenate([as_consumer_words(f, w_p, w_c, n_c) for f in per_frame])
            avail_of[t] = avail
            # this input's words against the pattern's reads (other inputs pro rata)
            k = (np.arange(len(t_in)) * len(avail)) // max(len(t_in), 1)
            stall = np.maximum(stall, avail[np.minimum(k, len(avail) - 1)] + 1 - t_in)
        stall = np.maximum(np.maximum.accumulate(stall), 0) if len(stall) else stall
        reads = t_in + stall
        for t, avail in avail_of.items():
            k = (np.arange(len(avail)) * len(reads)) // max(len(avail), 1)
            out[t] = (avail, reads[np.minimum(k, len(reads) - 1)])
        done = _delayed(t_out, t_in, stall)
        for t in pl.outputs:
            written[t] = done
    for e in edges:  # the output IODMA reads as the frames come
        if e.dst is None and e.tensor in written:
            p = written[e.tensor]
            n = len(p) // FRAMES
            sink = source(n, host_cycles[1], max(host_cycles[1], n, 1))
            out[e.tensor] = (p, sink + np.maximum(np.maximum.accumulate(p + 1 - sink), 0))
    return out


def stream_infrastructure(edges: Sequence[Any], layers: Mapping[str, Placed], T: int, *,
                          part: str | None, has_uram: bool,
                          host_cycles: tuple[int, int] = (0, 0)) -> list[StreamInfra]:
    """The DWC and FIFO FINN would put on every stream of a placed pipeline at II ``T``
    (``edges``: the graph's streams; ``host_cycles``: the input and output IODMAs' cycles per
    frame, which feed the first and drain the last layers). A FIFO holds the most words
    written and not yet read in the simulation (:func:`simulate`)."""
    sim = simulate(edges, layers, max(T, 1), host_cycles)
    host = {n for n, pl in layers.items() if pl.cost.source.startswith("host")}
    out: list[StreamInfra] = []
    for e in edges:
        if e.dst in host:  # the host's own work (a reshape of the input): no stream here
            continue
        prod_l = layers.get(e.src) if e.src is not None and e.src not in host else None
        cons_l = layers.get(e.dst) if e.dst is not None else None
        o_idx = prod_l.outputs.index(e.tensor) if prod_l and e.tensor in prod_l.outputs else 0
        i_idx = cons_l.inputs.index(e.tensor) if cons_l and e.tensor in cons_l.inputs else 0
        w_p = (prod_l.cost.outstream_widths[o_idx] if prod_l and
               o_idx < len(prod_l.cost.outstream_widths) else 0)
        w_c = (cons_l.cost.instream_widths[i_idx] if cons_l and
               i_idx < len(cons_l.cost.instream_widths) else 0)
        w_p, w_c = w_p or w_c or 8, w_c or w_p or 8
        depth = 0
        if e.tensor in sim:
            p, c = sim[e.tensor]
            read = np.searchsorted(np.sort(c), p, side="right")
            depth = int(np.max(np.arange(1, len(p) + 1) - read)) if len(p) else 0
        n_c = max(1, -(-int(e.bits_per_frame) // w_c))
        dwc = (dwc_cost(w_p, w_c, int(e.bits_per_frame), part)
               if prod_l is not None and cons_l is not None and w_p != w_c else None)
        fifo, impl, ram = (None, "rtl", "auto")
        if depth > 2:
            fifo, impl, ram = fifo_cost(depth, w_c, n_c, part, has_uram)
        out.append(StreamInfra(tensor=e.tensor, src=e.src, dst=e.dst, in_width=w_p,
                               out_width=w_c, dwc=dwc, fifo_depth=depth if fifo else 0,
                               fifo=fifo, fifo_impl_style=impl, fifo_ram_style=ram))
    return out


def total(infra: Sequence[StreamInfra]) -> dict[str, int]:
    out = dict.fromkeys(RES5, 0)
    for s in infra:
        for k, v in s.resources().items():
            out[k] += v
    return out



# -- plans -------------------------------------------------------------------------------------


def _given(s: StreamInfra, fifo: Any, part: str | None) -> StreamInfra:
    """``s`` with the FIFO a folding config gives it (its depth and styles)."""
    from dataclasses import replace

    if fifo is None:
        return replace(s, fifo=None, fifo_depth=0)
    c = estimate("StreamingFIFO_rtl", {"depth": fifo.depth,
                                       "folded_shape": [1, s.out_width],
                                       "normal_shape": [1, s.out_width], "dataType": "BINARY",
                                       "impl_style": fifo.impl_style,
                                       "ram_style": fifo.ram_style}, part)
    return replace(s, fifo=c, fifo_depth=fifo.depth, fifo_impl_style=fifo.impl_style,
                   fifo_ram_style=fifo.ram_style)


def plan_streams(problem: Any, result: Any, given_fifos: Sequence[Any] | None = None
                 ) -> list[tuple[int, StreamInfra]]:
    """(board, infrastructure) of every stream of a solved plan, at its II. ``given_fifos``:
    the FIFOs of a folding config (dse.solver.folding.GivenFifo), which replace the sized
    ones (streams without one get none, as FINN keeps only the FIFOs its config names)."""
    boards = list(result.boards)
    pos = {n: i for i, n in enumerate(problem.order)}
    layers: dict[str, Placed] = {}
    for i, name in enumerate(problem.order):
        lay = problem.graph.layer(name)
        o = problem.options[i][result.choice[i]]
        c = problem.cost_on(i, result.choice[i], boards[i]) or o.cost
        layers[name] = Placed(op_type=lay.op_type, attrs={**lay.finn_attrs(), **o.attrs},
                              cost=c, inputs=lay.inputs, outputs=lay.outputs)
    last = max(boards) if boards else 0
    host = ((problem.host_cycles(0, "in"), problem.host_cycles(last, "out"))
            if problem.host else (0, 0))
    board_of = {}
    for e in problem.graph.edges:
        end = e.dst if e.dst is not None else e.src
        board_of[e.tensor] = boards[pos[end]] if end is not None else 0
    # one simulation of the whole chain (the boards' streams meet at the cuts); each stream
    # is costed on the board that receives it
    cfg = problem.boards[0]
    got = stream_infrastructure(problem.graph.edges, layers, result.evaluation.ii_cycles,
                                part=cfg.board.part, has_uram=bool(cfg.board.device.uram),
                                host_cycles=host)
    if given_fifos is not None:
        by_dst = {f.consumer: f for f in given_fifos}
        got = [_given(s, by_dst.get(s.dst) if s.dst else None, cfg.board.part) for s in got]
    out = [(board_of.get(s.tensor, 0), s) for s in got]
    return out


def attach_infrastructure(plan: Any, problem: Any, result: Any,
                          given_fifos: Sequence[Any] | None = None) -> Any:
    """The plan with its FIFOs and width converters as FINN would build them:
    ``streams`` (each with its DWC and FIFO), ``layers[].fifo_in_depth`` (FINN's
    ``inFIFODepths``, which ``dse emit`` writes), per board ``infrastructure`` and
    ``resources_as_built`` (layers + FIFOs + converters) against its capacity, and
    ``metrics.fifos`` / ``metrics.dwcs`` / ``metrics.fits_as_built``."""
    import json

    from dse.plan import PartitionPlan

    d = json.loads(plan.to_json())
    streams = plan_streams(problem, result, given_fifos)
    d["streams"] = [{"board": b, **s.as_dict()} for b, s in streams if s.dwc or s.fifo]
    depth_in = {s.dst: s.fifo_depth for _, s in streams if s.dst and s.fifo}
    for lay in d["layers"]:
        lay["fifo_in_depth"] = depth_in.get(lay["name"], 0)
    fits = True
    for bd in d["boards"]:
        mine = [s for b, s in streams if b == bd["index"]]
        if bd["index"] < len(problem.reserve):  # the board's own caps, not the reserved
            for k, v in zip(RES5, problem.reserve[bd["index"]], strict=True):
                bd["capacity"][k] += v
            bd["reserved_for_infrastructure"] = dict(zip(RES5, problem.reserve[bd["index"]],
                                                         strict=True))
        inf = total(mine)
        built = {k: bd["resources"][k] + inf[k] for k in RES5}
        shares = [problem.share(i, result.choice[i]) for i in range(problem.n)
                  if result.boards[i] == bd["index"]]
        for j, k in enumerate(RES5):  # the solver's FIFO shares give way to the sized FIFOs
            built[k] -= sum(s[j] for s in shares)
            bd["resources"][k] -= sum(s[j] for s in shares)  # the layers' own (and buffers)
        ok = all(built[k] <= bd["capacity"][k] for k in RES5)
        fits = fits and ok
        bd["infrastructure"] = {"fifos": sum(1 for s in mine if s.fifo),
                                "dwcs": sum(1 for s in mine if s.dwc), **inf}
        bd["resources_as_built"] = built
        bd["fits_as_built"] = ok
    d["metrics"]["fifos"] = sum(1 for _, s in streams if s.fifo)
    d["metrics"]["dwcs"] = sum(1 for _, s in streams if s.dwc)
    d["metrics"]["fits_as_built"] = fits
    return PartitionPlan(d)


def reserve_for(problem: Any, result: Any, slack: float = 0.0) -> Any | None:
    """``problem`` with resources kept back on the boards whose plan, as FINN builds it (its
    sized FIFOs and converters beyond the layers' FIFO shares), exceeds their capacity; None
    when every board fits. The solver then plans again inside what is left. ``slack`` keeps
    back that fraction more than this plan needs: the plan found inside less room has other
    foldings, whose FIFOs may need a little more."""
    from dataclasses import replace

    streams = plan_streams(problem, result)
    used = sorted(set(result.boards))
    extra = [list(problem.reserve[b]) if b < len(problem.reserve) else [0] * 5
             for b in range(problem.n_boards)]
    over = False
    for b in used:
        inf = total([s for bb, s in streams if bb == b])
        shares = [problem.share(i, result.choice[i]) for i in range(problem.n)
                  if result.boards[i] == b]
        need = [math.ceil(max(0, inf[d] - sum(x[j] for x in shares)) * (1 + slack))
                for j, d in enumerate(RES5)]
        ev = result.evaluation
        cap = [ev.capacity[b][d] + extra[b][j] for j, d in enumerate(RES5)]  # unreserved
        if any(ev.usage[b][d] + need[j] > cap[j] for j, d in enumerate(RES5)):
            over = True
            extra[b] = [max(x, y) for x, y in zip(extra[b], need, strict=True)]
    if not over:
        return None
    return replace(problem, reserve=tuple(tuple(x) for x in extra))


__all__ = ["Placed", "StreamInfra", "attach_infrastructure", "dwc_cost", "fifo_cost",
           "fifo_depth", "input_fifo", "io_times", "plan_streams", "reserve_for", "simulate",
           "stream_infrastructure", "total"]
