"""Train samples/s and inference predictions/s per model.

CPU (built-ins)::

    python benchmarks/train_speed.py

GPU machine (timm backbones at the original's 270×480)::

    python benchmarks/train_speed.py --device cuda --models xception41,inception_resnet_v2 \
        --size 270x480 --bf16 --channels-last --batch-size 64

Training is measured on the model alone (synthetic uint8 frames already on the device, AdamW,
the trainer's loss), plus the loader's batch-preparation rate on the CPU side (augmentation and
tensor conversion), so one can see whether the loader could ever be the bottleneck. Inference is
batch-1 latency (predictions/s of a player) and batched throughput. On CUDA, GPU utilisation is
sampled with ``nvidia-smi`` during training.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import threading
import time
from typing import Any

import numpy as np
import torch

from imitation.models import build_model, list_models
from imitation.train import AugmentConfig, augment_batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class GpuSampler:
    """Samples ``nvidia-smi`` utilisation in the background."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                self.samples.append(float(out.split()[0]))
            self._stop.wait(0.5)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else float("nan")


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    model = build_model(name, image_size=args.size).to(device)
    if args.channels_last:
        model.set_channels_last(True)
    forward = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    inputs = {k: v.to(device) for k, v in model.dummy_inputs(args.batch_size, generator=g).items()}
    target = (torch.rand(args.batch_size, 2, generator=g) * 2 - 1).to(device)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if args.bf16
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            loss, _ = model.loss(forward(inputs), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    _sync(device)
    sampler = GpuSampler() if device.type == "cuda" else contextlib.nullcontext()
    with sampler:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        _sync(device)
        train_sps = args.steps * args.batch_size / (time.perf_counter() - t0)
    model.eval()
    results = {
        "model": name,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "train_sps": train_sps,
    }
    with torch.no_grad(), autocast:
        one = {k: v[:1] for k, v in inputs.items()}
        for _ in range(args.warmup):
            forward(one)
        _sync(device)
        t0 = time.perf_counter()
        n = max(10, args.steps)
        for _ in range(n):
            model.decode(forward(one))
        _sync(device)
        results["pps_batch1"] = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model.decode(forward(inputs))
        _sync(device)
        results["pps_batched"] = args.steps * args.batch_size / (time.perf_counter() - t0)
    if isinstance(sampler, GpuSampler):
        results["gpu_util_%"] = sampler.mean
    return results


def bench_loader(args: argparse.Namespace) -> float:
    """Samples/s of one loader thread: augmentation + tensor conversion of raw uint8 batches."""
    rng = np.random.default_rng(0)
    b = args.batch_size
    raw: dict[str, np.ndarray] = {
        "hood": rng.integers(0, 256, (b, *args.size, 3), dtype=np.uint8),
        "action": rng.uniform(-1, 1, (b, 2)).astype(np.float32),
        "purpose": rng.uniform(-1, 1, (b, 3)).astype(np.float32),
    }
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        batch = {k: v.copy() for k, v in raw.items()}
        augment_batch(batch, AugmentConfig(flip=0.5), rng, steering=1)
        torch.from_numpy(batch["hood"])
        n += b
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(list_models(include_timm=False)))
    parser.add_argument("--size", default="90x160", help="HEIGHTxWIDTH")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"device: {name}  size: {args.size[0]}x{args.size[1]}  batch: {args.batch_size}  "
        f"bf16: {args.bf16}  channels-last: {args.channels_last}  compile: {args.compile}"
    )
    print(f"loader (augment + to tensor, one thread): {bench_loader(args):,.0f} samples/s")
    header = f"{'model':<22}{'params M':>10}{'train samples/s':>17}{'pred/s b=1':>12}{'pred/s batched':>16}"
    if device.type == "cuda":
        header += f"{'GPU util %':>12}"
    print(header)
    for model_name in [m for m in args.models.split(",") if m]:
        r = bench_model(model_name, args, device)
        line = (
            f"{r['model']:<22}{r['params_M']:>10.2f}{r['train_sps']:>17,.0f}"
            f"{r['pps_batch1']:>12,.0f}{r['pps_batched']:>16,.0f}"
        )
        if "gpu_util_%" in r:
            line += f"{r['gpu_util_%']:>12.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
