"""Fuzzing at the boundary: mutated ONNX models, board files and plans give either a result or
a dse error, never another exception. Bounded and derandomized here; the 10,000-case run is
benchmarks/fuzz_benchmark.py."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings

from dse import api, viz
from dse.api import example_model_path
from dse.ir import load_network
from dse.plan import PartitionPlan
from tests.conftest import shared_path
from tests.fuzz_strategies import (
    OK,
    dumps,
    mutated_config,
    mutated_device_file,
    mutated_json,
    mutated_measurements,
    mutated_model,
    outcome,
)

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

MODELS = {
    "tfc_w1a1": lambda: shared_path("models", "tfc_w1a1.onnx"),
    "jettagging": lambda: shared_path("models", "zoo_qkeras_jettagging_w6a6.onnx"),
    "tfc_finn_onnx": lambda: shared_path("models", "tfc_w1a1_finn.onnx"),
    "tfc_hw_graph": lambda: shared_path("models", "finn_hw", "tfc_w1a1",
                                        "tfc_w1a1_hw_generic.onnx"),
    "example": example_model_path,
}


def check_model_bytes(data: bytes) -> str:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        p.write_bytes(data)

        def run() -> None:
            g = load_network(p)
            for layer in g.layers:
                layer.cost()
        return outcome(run)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_mutated_models_raise_only_dse_errors(name: str) -> None:
    base = onnx.load(str(MODELS[name]()))

    @FUZZ
    @given(mutated_model(base))
    def prop(data: bytes) -> None:
        assert check_model_bytes(data) in OK

    prop()


BOARD_FILE = {"boards": [{"name": "Mine", "part": "xcu55c-fsvh2892-2L-e", "slrs": 3,
                          "device": {"lut": 1303680, "ff": 2607360, "bram18": 4032,
                                     "uram": 960, "dsp": 9024},
                          "hbm": {"gib": 16, "bandwidth_gbps": 460, "channels": 32},
                          "network": {"line_rate_gbps": 100, "ports": 2},
                          "shells": ["coyote", "vitis"]}]}


def check_board_doc(doc: object) -> str:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "boards.json"
        p.write_text(dumps(doc))
        return outcome(lambda: api.boards([str(p)]))


@FUZZ
@given(mutated_json(BOARD_FILE))
def test_mutated_board_files_raise_only_dse_errors(doc: object) -> None:
    assert check_board_doc(doc) in OK


@pytest.fixture(scope="module")
def plan_doc() -> dict:
    r = api.optimize(boards=2, board="Pynq-Z1", time_limit=10, record_time=False)
    return json.loads(r.plan.to_json())


def check_plan_doc(doc: object) -> str:
    def run() -> None:
        plan = PartitionPlan.from_dict(doc)  # type: ignore[arg-type]
        viz.board_resource_data(dict(plan.data))
        viz.partition_data(dict(plan.data))
    return outcome(run)


def test_mutated_plans_raise_only_dse_errors(plan_doc: dict) -> None:
    @FUZZ
    @given(mutated_json(plan_doc))
    def prop(doc: object) -> None:
        assert check_plan_doc(doc) in OK

    prop()


# -- the LLM-side inputs ------------------------------------------------------------------------


def _finite_figures(d: dict) -> None:
    """Every number of an accepted answer is finite and not negative."""
    import math

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, float) and not isinstance(x, bool):
            assert math.isfinite(x) and x >= 0, x

    walk(d)


def check_config_doc(doc: object) -> str:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "config.json"
        p.write_text(dumps(doc))

        def run() -> None:
            res = api.optimize_llm(str(p), boards="A100-80GB", seq=16, context=64)
            _finite_figures(res.data["metrics"])
        return outcome(run)


def check_device_doc(doc: object) -> str:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "devices.json"
        p.write_text(dumps(doc))

        def run() -> None:
            from dse.devices import load_devices

            cat = load_devices([p])
            mine = [n for n in cat.devices if n not in load_devices().devices] or ["MyGPU"]
            res = api.optimize_llm("gpt2", boards=mine[0], board_files=[p], context=64)
            _finite_figures(res.data["metrics"])
        return outcome(run)


def check_measurement_bytes(data: bytes) -> str:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.csv"
        p.write_bytes(data)

        def run() -> None:
            from dse.devices import calibrate, load_devices, read_measurements

            eff, err = calibrate(load_devices().get("A100-80GB"), read_measurements(p))
            _finite_figures({"eff": [eff.compute, eff.memory, eff.kernel_overhead_s], **err})
        return outcome(run)


@FUZZ
@given(mutated_config())
def test_mutated_llm_configs_raise_only_dse_errors(doc: object) -> None:
    assert check_config_doc(doc) in OK


@FUZZ
@given(mutated_device_file())
def test_mutated_device_files_raise_only_dse_errors(doc: object) -> None:
    assert check_device_doc(doc) in OK


@FUZZ
@given(mutated_measurements())
def test_mutated_measurement_files_raise_only_dse_errors(data: bytes) -> None:
    assert check_measurement_bytes(data) in OK
