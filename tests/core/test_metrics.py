"""Cost metrics and the constraint check that runs before training."""

import pytest
import torch
from torch import nn

from nas_core.builder import build_model
from nas_core.errors import ConstraintViolation
from nas_core.metrics import (ModelCost, check_constraints, count_flops, count_params, measure_cost,
                              measure_latency_ms)
from nas_core.spec import ArchSpec, StageSpec


class ExplodingForward(nn.Module):
    """Many parameters; running it fails, so a constraint error proves nothing ran."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(100, 100)

    def forward(self, x):
        raise RuntimeError("forward must not run")


def test_params_and_flops_of_a_known_network():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    assert count_params(model) == 3 * 8 * 9 + 8 * 16 * 16 * 10 + 10
    macs = 3 * 8 * 9 * 16 * 16 + 8 * 16 * 16 * 10
    assert count_flops(model, (3, 16, 16)) == 2 * macs
    assert count_flops(model, (4, 3, 16, 16)) == 8 * macs


def test_flops_grow_with_resolution_and_do_not_touch_the_model():
    spec = ArchSpec(8, (StageSpec("mbconv", 1, 16, 3, expansion=3, downsample="none"),))
    model = build_model(spec, 1, 10, input_size=16)
    head = 2 * 16 * 10  # the linear head runs once per image whatever the resolution
    assert count_flops(model, (1, 32, 32)) - head == 4 * (count_flops(model, (1, 16, 16)) - head)
    assert model.training


def test_latency_is_positive_and_restores_threads():
    threads = torch.get_num_threads()
    model = build_model(ArchSpec(8, (StageSpec("conv", 1, 8, 3),)), 1, 2, input_size=16)
    latency = measure_latency_ms(model, (1, 16, 16), repeats=3, warmup=1)
    assert 0.0 < latency < 1000.0
    assert torch.get_num_threads() == threads


def test_param_limit_is_enforced_before_anything_runs():
    with pytest.raises(ConstraintViolation) as caught:
        measure_cost(ExplodingForward(), (1, 8, 8), max_params=1000, max_latency_ms=1.0)
    assert [e["field"] for e in caught.value.errors] == ["max_params"]
    assert "10100 parameters > 1000" in str(caught.value)


def test_latency_limit_rejects_slow_models():
    model = build_model(ArchSpec(32, (StageSpec("residual", 2, 64, 7, downsample="none"),)), 3, 10, input_size=32)
    with pytest.raises(ConstraintViolation) as caught:
        measure_cost(model, (3, 32, 32), max_latency_ms=1e-6, repeats=2, warmup=0)
    assert [e["field"] for e in caught.value.errors] == ["max_latency_ms"]


def test_cost_within_limits_passes_and_latency_is_optional():
    model = build_model(ArchSpec(8, (StageSpec("conv", 1, 8, 3),)), 1, 2, input_size=16)
    cost = measure_cost(model, (1, 16, 16), max_params=10**6)
    assert cost.latency_ms is None and cost.params == count_params(model) and cost.flops > 0
    timed = measure_cost(model, (1, 16, 16), latency=True, repeats=2, warmup=0)
    assert timed.latency_ms > 0
    check_constraints(timed, max_params=cost.params, max_latency_ms=timed.latency_ms)
    with pytest.raises(ValueError):
        check_constraints(ModelCost(10, 10), max_latency_ms=5.0)


def test_deployment_latency_is_onnxruntime_p50_and_p90_per_image(monkeypatch):
    import onnxruntime

    from nas_core.evaluation import latency_session_options
    from nas_core.metrics import measure_onnx_latency

    sessions = []

    class RecordingSession(onnxruntime.InferenceSession):
        def __init__(self, path, options=None, **kwargs):
            sessions.append(options)
            super().__init__(path, options, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", RecordingSession)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    stats = measure_onnx_latency(model, (1, 8, 8), threads=2, repeats=9, warmup=2)
    assert 0 < stats.p50_ms <= stats.p90_ms
    assert (stats.batch, stats.threads, stats.repeats, stats.warmup) == (1, 2, 9, 2)
    assert [(o.intra_op_num_threads, o.inter_op_num_threads) for o in sessions] == [(2, 1)]
    assert latency_session_options(3).intra_op_num_threads == 3
    batch = measure_onnx_latency(model, (4, 1, 8, 8), repeats=5, warmup=1)
    assert batch.batch == 4 and 0 < batch.p50_ms <= batch.p90_ms  # per image: the batch's time divided by 4


def test_latency_device_names_the_cpu_and_runtime():
    import onnxruntime

    from nas_core.environment import latency_device

    device = latency_device(2)
    assert device["threads"] == 2 and device["onnxruntime"] == onnxruntime.__version__
    assert device["cpu_model"] and device["logical_cpus"] >= 1


def test_latencies_are_comparable_on_the_same_cpu_model_threads_and_runtime():
    from nas_core.environment import latency_device, same_latency_device

    device = latency_device(1)
    assert same_latency_device(device, {**device, "logical_cpus": 1024})
    for changes in ({"cpu_model": "other"}, {"threads": 2}, {"onnxruntime": "0.0.1"}, {"runtime": "other"}):
        assert not same_latency_device(device, {**device, **changes}), changes


def test_screening_probe_estimates_the_deployment_latency_with_the_same_threads(monkeypatch):
    import onnxruntime

    from nas_core.metrics import probe_onnx_latency_ms

    threads = []

    class RecordingSession(onnxruntime.InferenceSession):
        def __init__(self, source, options=None, **kwargs):
            threads.append(options.intra_op_num_threads)
            super().__init__(source, options, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", RecordingSession)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    assert probe_onnx_latency_ms(model, (1, 8, 8), threads=2, repeats=3, warmup=1) > 0
    assert threads == [2]
