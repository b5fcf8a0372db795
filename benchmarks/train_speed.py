"""Train samples/s and inference predictions/s per model.

CPU (built-ins)::

    python benchmarks/train_speed.py

GPU machine (timm backbones at the original's 270×480)::

    python benchmarks/train_speed.py --device cuda --models xception41,inception_resnet_v2 \
        --size 270x480 --bf16 --channels-last --batch-size 64

Training is measured on the model alone (synthetic uint8 frames already on the device, AdamW,
the trainer's loss), plus the loader thread's whole job (refill, draw, context, augmentation,
copy to the device) with the augmentation on the loader thread and on the device, so one can see
whether the loader could ever be the bottleneck. ``--trainer-steps N`` also trains each model N
steps through the real :class:`~imitation.train.Trainer` on synthetic stored frames and reports
its samples/s and how long the training loop waited for the loader. Inference is
batch-1 latency (predictions/s of a player) and batched throughput. On CUDA, GPU utilisation is
sampled with ``nvidia-smi`` during training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitation.buffer import BufferConfig
from imitation.models import ModelConfig, build_model, list_models
from imitation.train import AugmentConfig, TrainConfig, Trainer


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


class SyntheticStore:
    """In-memory storage of random frames at the benchmark size (towns 0–4, episodes of 100)."""

    def __init__(self, n: int, size: tuple[int, int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        episode = np.arange(n) // 100
        angle = rng.uniform(-np.pi, np.pi, n)
        self.data: dict[str, np.ndarray] = {
            "hood": rng.integers(0, 256, (n, *size, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "speed": rng.uniform(0, 20, (n, 1)).astype(np.float32),
            "purpose": np.stack(
                [rng.uniform(0, 1, n), np.sin(angle), np.cos(angle)], axis=1
            ).astype(np.float32),
            "step": (np.arange(n) % 100).astype(np.int64),
            "episode_id": episode.astype(np.int64),
            "town_id": (episode % 5).astype(np.int64),
        }

    def __len__(self) -> int:
        return len(self.data["action"])

    def read_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[np.asarray(indices)] for k, v in self.data.items()}


def _train_config(name: str, args: argparse.Namespace, steps: int, device: str) -> TrainConfig:
    capacity = max(1024, 8 * args.batch_size)
    return TrainConfig(
        model=ModelConfig(backbone=name, image_size=args.size),
        steps=steps,
        batch_size=args.batch_size,
        warmup_steps=10,
        buffer=BufferConfig(capacity=capacity, start_fill=0.9),
        augment=AugmentConfig(flip=0.5),
        augment_on=args.augment_on,
        val_towns=(4,),
        val_samples=256,
        val_every=0,
        checkpoint_every=0,
        log_every=25,
        image_every=0,
        device=device,
        bf16=args.bf16,
        channels_last=args.channels_last,
        compile=args.compile,
        progress=False,
    )


def bench_loader(
    args: argparse.Namespace, store: SyntheticStore, device: torch.device
) -> dict[str, float]:
    """Samples/s of the loader thread's whole job (refill, draw, context, augment, to device)
    for each place the augmentation can run."""
    out = {}
    for mode in ("loader", "device"):
        cfg = replace(_train_config("pilotnet", args, 10_000, str(device)), augment_on=mode)
        trainer = Trainer(config=cfg, store=store, out_dir=args.out / "loader-bench")
        on_device = mode == "device"
        trainer.maker.make(0, device, augment_on_device=on_device)
        t0, n, step = time.perf_counter(), 0, 1
        while time.perf_counter() - t0 < 3.0:
            batch = trainer.maker.make(step, device, augment_on_device=on_device)
            if on_device:  # the device's share, so the comparison is whole
                batch.model_inputs()
            _sync(device)
            n += batch.samples
            step += 1
        out[mode] = n / (time.perf_counter() - t0)
        trainer.close()
    return out


def bench_trainer(
    name: str, args: argparse.Namespace, store: SyntheticStore, device: torch.device
) -> dict[str, Any]:
    """Train through the real :class:`Trainer` (loader thread, augmentation, AdamW, checkpoint)."""
    cfg = _train_config(name, args, args.trainer_steps, str(device))
    trainer = Trainer(config=cfg, store=store, out_dir=args.out / f"trainer-{name}")
    sampler = GpuSampler() if device.type == "cuda" else contextlib.nullcontext()
    t0 = time.perf_counter()
    with sampler:
        val = trainer.train()
    wall = time.perf_counter() - t0
    trainer.close()
    rates = [h["train/samples_per_s"] for h in trainer.history if "train/samples_per_s" in h]
    waits = [h["train/loader_wait_s"] for h in trainer.history if "train/loader_wait_s" in h]
    losses = [h["train/loss"] for h in trainer.history if "train/loss" in h]
    steady = rates[2:] or rates  # the first intervals include cuDNN's autotuning
    result: dict[str, Any] = {
        "model": name,
        "steps": trainer.step,
        "trainer_sps": float(np.median(steady)),
        "wall_s": wall,
        "loader_wait_s": waits[-1] if waits else float("nan"),
        "first_loss": losses[0] if losses else float("nan"),
        "last_loss": losses[-1] if losses else float("nan"),
        "val_loss": val.get("val/loss", float("nan")),
        "checkpoint": str(trainer.checkpoint_path(trainer.step)),
    }
    if isinstance(sampler, GpuSampler):
        result["gpu_util_%"] = sampler.mean
        result["gpu_mem_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


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
    parser.add_argument(
        "--trainer-steps",
        type=int,
        default=0,
        help="also train each model this many steps through the real Trainer (0 = skip)",
    )
    parser.add_argument(
        "--augment-on", default="auto", choices=("auto", "loader", "device"), help="trainer runs"
    )
    parser.add_argument("--store-size", type=int, default=2048, help="synthetic stored samples")
    parser.add_argument("--out", type=Path, default=Path("runs/train-speed"))
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
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
    store = SyntheticStore(args.store_size, args.size)
    loader = bench_loader(args, store, device)
    print(
        "loader thread (refill, draw, context, augment, to device), samples/s: "
        f"augment on loader {loader['loader']:,.0f}, augment on device {loader['device']:,.0f}"
    )
    header = f"{'model':<22}{'params M':>10}{'train samples/s':>17}{'pred/s b=1':>12}{'pred/s batched':>16}"
    if device.type == "cuda":
        header += f"{'GPU util %':>12}"
    print(header)
    results: dict[str, Any] = {"device": name, "args": {**vars(args), "out": str(args.out)}}
    results["loader_sps"] = loader
    results["models"] = []
    for model_name in [m for m in args.models.split(",") if m]:
        r = bench_model(model_name, args, device)
        results["models"].append(r)
        line = (
            f"{r['model']:<22}{r['params_M']:>10.2f}{r['train_sps']:>17,.0f}"
            f"{r['pps_batch1']:>12,.0f}{r['pps_batched']:>16,.0f}"
        )
        if "gpu_util_%" in r:
            line += f"{r['gpu_util_%']:>12.0f}"
        print(line, flush=True)
    if args.trainer_steps:
        results["trainer"] = []
        print(
            f"\nreal Trainer, {args.trainer_steps} steps each (loader thread, augmentation on "
            f"{args.augment_on}, AdamW, final validation and checkpoint):"
        )
        print(
            f"{'model':<22}{'samples/s':>11}{'wall s':>9}{'loader wait s':>15}"
            f"{'loss first→last':>20}{'GPU util %':>12}"
        )
        for model_name in [m for m in args.models.split(",") if m]:
            r = bench_trainer(model_name, args, store, device)
            results["trainer"].append(r)
            print(
                f"{r['model']:<22}{r['trainer_sps']:>11,.0f}{r['wall_s']:>9.1f}"
                f"{r['loader_wait_s']:>15.2f}{r['first_loss']:>11.3f}→{r['last_loss']:<8.3f}"
                f"{r.get('gpu_util_%', float('nan')):>12.0f}",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
