"""Exporters: ONNX parity with dynamic batch, .pt2 reload, preprocessing.json."""

import json
import random

import onnx
import pytest
import torch

from nas_core.builder import build_model
from nas_core.errors import NASError
from nas_core.export import export_onnx, export_pt2, preprocessing_dict, verify_onnx, verify_pt2
from nas_core.spec import ArchSpec, StageSpec
from nas_core.trainer import normalize

MEAN, STD = [0.45, 0.5, 0.55], [0.2, 0.25, 0.3]
SPEC = ArchSpec(8, (StageSpec("conv", 1, 8, 3, se=True), StageSpec("mbconv", 2, 16, 5, expansion=3,
                                                                    activation="swish", downsample="stride"),
                    StageSpec("residual", 1, 24, 3, downsample="avg"),
                    StageSpec("dwsep", 1, 32, 3, activation="leaky_relu")), head_dropout=0.2)


def real_inputs(count: int, seed: int) -> torch.Tensor:
    """Normalised uint8 images with structure (gradients plus noise), like what clients send."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 255, 20).view(1, 1, 1, 20).expand(count, 3, 20, 20)
    noise = torch.randint(-40, 40, (count, 3, 20, 20), generator=generator)
    return normalize((ramp + noise).clamp(0, 255).to(torch.uint8), MEAN, STD)


@pytest.fixture(scope="module")
def trained_model():
    torch.manual_seed(0)
    model = build_model(SPEC, 3, 6, input_size=20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(3):  # non-trivial weights and BatchNorm statistics
        loss = torch.nn.functional.cross_entropy(model(real_inputs(8, step)), torch.arange(8) % 6)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def onnx_path(trained_model, tmp_path_factory):
    return export_onnx(trained_model, channels=3, height=20, width=20, path=tmp_path_factory.mktemp("onnx") / "m.onnx")


def test_onnx_signature_has_named_io_and_dynamic_batch(onnx_path):
    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["logits"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 20, 20]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert not onnx_path.with_suffix(".onnx.data").exists()  # weights live inside the file


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_pytorch(onnx_path, trained_model, batch):
    parity = verify_onnx(onnx_path, trained_model, real_inputs(batch, 10 + batch), atol=1e-4)
    assert parity.max_abs_diff <= 1e-4 and parity.argmax_agreement == 1.0


def test_verify_onnx_catches_a_different_model(onnx_path, trained_model):
    torch.manual_seed(99)
    other = build_model(SPEC, 3, 6, input_size=20).eval()
    with pytest.raises(NASError, match="disagrees"):
        verify_onnx(onnx_path, other, real_inputs(5, 3))


def test_pt2_reloads_and_agrees(trained_model, tmp_path):
    path = export_pt2(trained_model, real_inputs(1, 0), tmp_path / "m.pt2")
    for batch in (1, 5):
        assert verify_pt2(path, trained_model, real_inputs(batch, batch)).max_abs_diff <= 1e-5
    program = torch.export.load(str(path))
    assert program.module()(real_inputs(3, 4)).shape == (3, 6)


def test_preprocessing_json_is_what_design_describes():
    grey = preprocessing_dict(classes=["zero", "one"], channels=1, height=28, width=28, mean=[0.13], std=[0.31])
    assert json.loads(json.dumps(grey)) == grey
    assert grey["classes"] == ["zero", "one"]
    assert grey["input"] == {"channels": 1, "height": 28, "width": 28}
    assert (grey["resize"], grey["scale"], grey["color_mode"]) == ("bilinear", 255.0, "L")
    assert (grey["mean"], grey["std"]) == ([0.13], [0.31])
    rgb = preprocessing_dict(classes=["a"], channels=3, height=8, width=12, mean=MEAN, std=STD)
    assert rgb["color_mode"] == "RGB" and rgb["mean"] == MEAN
    with pytest.raises(NASError, match="mean and std"):
        preprocessing_dict(classes=["a"], channels=3, height=8, width=8, mean=[0.5], std=[0.5])


def test_the_searched_input_side_round_trips_into_preprocessing_and_the_onnx_file(tmp_path):
    """A candidate at input_scale 0.5 of a 64 px dataset: trained on images resized on the device to 32 px, exported
    at 32 px, and preprocessing.json tells clients to resize raw images to 32 px, which the ONNX file accepts."""
    import numpy as np
    import onnxruntime
    from PIL import Image

    from nas_core.data import preprocess_image
    from nas_core.resolution import resize_images
    from nas_core.space import default_search_space

    space = default_search_space().with_overrides({"num_stages": 2, "input_scale": 0.5})
    candidate = space.decode(space.param_space.sample(random.Random(0)), input_side=64)
    assert candidate.arch.resolution == 32
    height, width = candidate.arch.input_size((64, 64))
    torch.manual_seed(0)
    model = build_model(candidate.arch, 3, 4, input_size=(height, width)).eval()
    stored = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert resize_images(stored, (height, width)).shape[-2:] == (32, 32)
    path = export_onnx(model, channels=3, height=height, width=width, path=tmp_path / "model.onnx")
    preprocessing = json.loads(json.dumps(preprocessing_dict(classes=list("abcd"), channels=3, height=height,
                                                             width=width, mean=MEAN, std=STD)))
    assert preprocessing["input"] == {"channels": 3, "height": 32, "width": 32}
    raw = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    pixels = preprocess_image(raw, channels=3, height=preprocessing["input"]["height"],
                              width=preprocessing["input"]["width"])
    assert pixels.shape == (3, 32, 32)
    x = normalize(torch.from_numpy(pixels)[None], preprocessing["mean"], preprocessing["std"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x.numpy()})[0]
    assert logits.shape == (1, 4)
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-4)
