"""Mixed precision: bf16 where a timed probe finds it faster, decided once per network, kept across a resume."""

import io

import pytest
import torch

from nas_core import precision
from nas_core.builder import build_model
from nas_core.spec import ArchSpec, StageSpec, TrainSpec
from nas_core.trainer import TrainData, train

MEAN, STD = [0.5], [0.25]
PLAIN = ArchSpec(8, (StageSpec("conv", 1, 8, 3), StageSpec("conv", 1, 16, 3)))
OTHER = ArchSpec(8, (StageSpec("mbconv", 1, 8, 3), StageSpec("conv", 1, 16, 3)))
RECIPE = TrainSpec(lr=1e-2, augment=0.5, batch_size=16)


@pytest.fixture(autouse=True)
def fresh_decisions(monkeypatch):
    monkeypatch.setattr(precision, "_decided", {})


@pytest.fixture
def timed(monkeypatch):
    """A CPU with bf16 whose probe reports the given (float32, bf16) seconds, counting the probes."""
    calls, timings = [], {"value": (1.0, 0.5)}

    def probe(model, shape, batch):
        calls.append((shape, batch))
        return timings["value"]

    monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision, "_probe", probe)
    return calls, timings


def model(spec: ArchSpec = PLAIN, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(spec, 1, 2, input_size=16)


def data(count: int = 64) -> TrainData:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (count, 1, 16, 16), generator=generator, dtype=torch.uint8)
    y = torch.arange(count) % 2
    return TrainData(x, y, x[:16], y[:16])


def test_bf16_is_chosen_where_the_probe_finds_it_faster_and_decided_once_per_network(timed):
    calls, timings = timed
    assert precision.use_bf16(model(), (1, 16, 16), 64, "cpu") is True
    assert calls == [((1, 16, 16), precision.PROBE_BATCH)]  # the probe's batch is capped
    timings["value"] = (1.0, 0.95)  # the same structure is not timed again: the first answer stands
    assert precision.use_bf16(model(seed=1), (1, 16, 16), 64, "cpu") is True and len(calls) == 1
    assert precision.use_bf16(model(OTHER), (1, 16, 16), 64, "cpu") is False  # too little faster
    assert precision.use_bf16(model(), (1, 24, 24), 64, "cpu") is False  # another input shape: timed again
    assert len(calls) == 3


@pytest.mark.parametrize(("capability", "expected"), [((9, 0), True), ((8, 0), True), ((7, 5), False), ((7, 0), False)])
def test_cuda_gpus_with_bf16_tensor_cores_and_cpus_without_bf16_or_other_devices_never(monkeypatch, capability,
                                                                                       expected):
    monkeypatch.setattr(precision, "_probe", lambda *args: pytest.fail("no probe is needed"))
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: asked.append(device) or capability)
    assert precision.use_bf16(model(), (1, 16, 16), 8, "cuda") is expected  # Hopper, Ampere: yes; T4, V100: no
    assert asked == [torch.device("cuda")]
    assert precision.use_bf16(model(), (1, 16, 16), 8, "meta") is False
    monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: False)
    assert precision.use_bf16(model(), (1, 16, 16), 8, "cpu") is False


def test_the_real_probe_leaves_the_network_its_hooks_and_the_callers_random_state_alone():
    network = model()
    before = {name: value.clone() for name, value in network.state_dict().items()}
    seen = []
    network.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    float32_s, bf16_s = precision._probe(network, (1, 16, 16), 8)
    assert float32_s > 0 and bf16_s > 0
    assert torch.equal(torch.rand(4), expected)
    assert all(torch.equal(before[name], value) for name, value in network.state_dict().items())
    assert seen == [] and all(p.grad is None for p in network.parameters())


def test_training_runs_the_network_in_the_chosen_precision(timed):
    _, timings = timed
    dtypes = []
    network = model()
    network.stages.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    result = train(network, data(), epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu")
    assert result.bf16 is True and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in network.parameters())  # weights stay float32
    timings["value"] = (1.0, 1.0)
    dtypes.clear()
    other = model(OTHER)
    other.stages.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    assert train(other, data(), epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu").bf16 is False
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    forced = model(OTHER)
    forced.stages.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    assert train(forced, data(), epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu", bf16=True).bf16
    assert set(dtypes) == {torch.bfloat16}


def test_a_resumed_run_keeps_the_precision_of_its_snapshot(timed, monkeypatch):
    saved = {}

    def keep(epoch, snapshot):
        buffer = io.BytesIO()
        torch.save(snapshot(), buffer)
        saved["state"] = buffer.getvalue()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model(), data(), epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu", on_checkpoint=keep)
    state = torch.load(io.BytesIO(saved["state"]), weights_only=True)
    assert state["bf16"] is True
    monkeypatch.setattr(precision, "_decided", {})
    _, timings = timed
    timings["value"] = (1.0, 2.0)  # another machine, where bf16 would not pay: the run still ends as it began
    resumed = train(model(seed=1), data(), epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
                    resume=state)
    assert resumed.bf16 is True
    del state["bf16"]  # a snapshot from before the choice trained in float32 on the CPU
    assert train(model(seed=1), data(), epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
                 resume=state).bf16 is False
