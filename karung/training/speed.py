"""Training-speed probe: ``python -m karung.training.speed`` measures what the recipe costs here.

It times, interleaved over several rounds (the best round counts, so a busy neighbour on a
shared machine distorts the figures less), the per-image cost of

* decoding a 320 px JPEG and augmenting it (one worker thread),
* a training step of stage 1 (head only) and stage 2 (upper blocks) at several input sizes,
  with fp32 and bf16 autocast,
* a validation forward pass,

and projects the wall time of a full run on ``--images`` training images.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from karung.training.augment import train_transform
from karung.training.config import AugmentConfig, TrainConfig
from karung.training.frozen import FrozenPrefix
from karung.training.stages import forward, set_train_mode
from karung.vision.decode import decode_image
from karung.vision.model import backbone_blocks, build_model
from karung.vision.preprocess import Preprocessing


@dataclass(frozen=True)
class Probe:
    """One timed configuration: a callable processing ``images`` images per call."""

    name: str
    images: int
    run: Callable[[], None]


def best_seconds_per_image(probes: Sequence[Probe], rounds: int) -> dict[str, float]:
    """Interleave the probes ``rounds`` times; keep each one's fastest per-image time."""
    best = {p.name: float("inf") for p in probes}
    for p in probes:
        p.run()  # warm-up: kernels, allocator, caches
    for _ in range(rounds):
        for p in probes:
            start = time.perf_counter()
            p.run()
            best[p.name] = min(best[p.name], (time.perf_counter() - start) / p.images)
    return best


def _photo(size: int = 320, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    arr = np.stack([x % 256, y % 256, (x * y) % 256], -1) + rng.integers(0, 60, (size, size, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def decode_probe(input_size: int, n: int = 32) -> Probe:
    """Decode + augment one image at a time, as a single DataLoader worker does."""
    data = _photo()
    transform = train_transform(Preprocessing(input_size=input_size), AugmentConfig())

    def run() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        for _ in range(n):
            img = decode_image(data, max_bytes=1 << 24, max_pixels=1 << 26, target_size=input_size)
            transform(img)
        torch.set_num_threads(threads)

    return Probe(f"decode+augment {input_size}px (1 thread)", n, run)


def step_probe(
    model: nn.Module, size: int, batch: int, frozen: int, *, onnx: bool, bf16: bool = False
) -> Probe:
    """One optimizer step (forward, backward, AdamW) with ``frozen`` blocks frozen.

    ``onnx`` runs the frozen blocks in ONNX Runtime (the trainer's default), else in torch.
    """
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 4, (batch,))
    params = [p for b in backbone_blocks(model)[frozen:] for p in b.parameters()]
    params += list(model.get_submodule("classifier").parameters())
    opt = torch.optim.AdamW(params, lr=1e-6)
    prefix = FrozenPrefix(model, frozen, size, torch.get_num_threads()) if onnx and frozen else None

    def run() -> None:
        set_train_mode(model, frozen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(model, x, frozen, prefix)
        loss = nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    stage = "stage1 (head)" if frozen == 19 else f"stage2 (blocks {frozen}-18)"
    engine = ("onnx+" if prefix else "") + ("torch bf16" if bf16 else "torch")
    return Probe(f"{stage} {size}px bs{batch} {engine}", batch, run)


def eval_probe(model: nn.Module, size: int, frozen: int, onnx: bool, batch: int = 64) -> Probe:
    """Validation forward pass (frozen part in ORT when ``onnx``)."""
    x = torch.randn(batch, 3, size, size)
    prefix = FrozenPrefix(model, frozen, size, torch.get_num_threads()) if onnx else None

    def run() -> None:
        model.eval()
        with torch.inference_mode():
            forward(model, x, frozen, prefix)

    return Probe(f"eval {size}px bs{batch} {'onnx+torch' if onnx else 'torch'}", batch, run)


@dataclass(frozen=True)
class Recipe:
    """The probe names whose costs make up a run of the default recipe at one size."""

    stage1: str
    stage2: str
    decode: str
    evaluate: str


def project_minutes(
    cfg: TrainConfig, n_train: int, n_val: int, costs: dict[str, float], recipe: Recipe
) -> float:
    """Wall minutes of a run: decode work shares the cores with the trainer, so costs add.

    Per training image: step time + half the single-thread decode time (two cores).
    """
    per_img_decode = costs[recipe.decode] / 2
    epochs1, epochs2 = cfg.head_epochs, cfg.epochs - cfg.head_epochs
    epoch_images = cfg.epoch_images or n_train
    train = epoch_images * (
        epochs1 * (costs[recipe.stage1] + per_img_decode)
        + epochs2 * (costs[recipe.stage2] + per_img_decode)
    )
    val_each = min(cfg.val_images or n_val, n_val) * (costs[recipe.evaluate] + per_img_decode)
    final_val = n_val * (costs[recipe.evaluate] + per_img_decode)
    return (train + cfg.epochs * val_each + final_val) / 60.0


def probes_for(model: nn.Module, size: int, cfg: TrainConfig, bf16: bool) -> list[Probe]:
    """Decode, both stages (ORT-prefixed and torch-only), full backprop and evaluation."""
    k, bs = cfg.unfreeze_from, cfg.batch_size
    probes = [
        decode_probe(size),
        step_probe(model, size, bs, 19, onnx=True),
        step_probe(model, size, bs, 19, onnx=False),
        step_probe(model, size, bs, k, onnx=True),
        step_probe(model, size, bs, k, onnx=False),
        step_probe(model, size, bs, 0, onnx=False),
        eval_probe(model, size, k, onnx=True),
        eval_probe(model, size, 0, onnx=False),
    ]
    if bf16:
        probes.append(step_probe(model, size, bs, k, onnx=True, bf16=True))
    return probes


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table and the projection."""
    parser = argparse.ArgumentParser(prog="python -m karung.training.speed", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="160,192,224")
    parser.add_argument("--images", type=int, default=20_000, help="training images to project")
    parser.add_argument("--val-images", type=int, default=5_000, help="validation images")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(4, pretrained=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    d = TrainConfig(data=("-",), out="-")
    probes = [p for size in sizes for p in probes_for(model, size, d, args.bf16)]
    costs = best_seconds_per_image(probes, args.rounds)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.rounds}")
    print(f"{'configuration':<52} {'ms/img':>8} {'img/s':>8}")
    for name, sec in costs.items():
        print(f"{name:<52} {sec * 1e3:>8.2f} {1 / sec:>8.1f}")
    for size in sizes:
        k, bs = d.unfreeze_from, d.batch_size
        recipe = Recipe(
            stage1=f"stage1 (head) {size}px bs{bs} onnx+torch",
            stage2=f"stage2 (blocks {k}-18) {size}px bs{bs} onnx+torch",
            decode=f"decode+augment {size}px (1 thread)",
            evaluate=f"eval {size}px bs64 onnx+torch",
        )
        minutes = project_minutes(d, args.images, args.val_images, costs, recipe)
        print(
            f"projected default recipe at {size}px ({d.head_epochs}+{d.epochs - d.head_epochs} "
            f"epochs of {args.images} images, {args.val_images} val): {minutes:.0f} min"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
