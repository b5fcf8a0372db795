"""Live system speed: each component alone, then the whole system on Ray with 1 and 2 collectors.

Measured in one run, on the same machine:

* collector alone: recorded and balanced samples/s of one :class:`CollectorWorker` in this
  process, sending nowhere;
* trainer alone: samples/s trained by a :class:`TrainerWorker` in this process, fed as fast as
  it takes them with sets recorded by the collector above;
* live, K = 1 and 2 collectors (+ 1 player): balanced samples/s into the trainer (its received
  counter), trainer samples/s, and the publish→seen and publish→swap latency of the player's
  weight swaps (a swap waits for the next unstuck, so publish→swap includes that wait).

Run: ``python benchmarks/live_speed.py --seconds 60``. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from agents.live.collector import CollectorWorker
from agents.live.config import LiveConfig, RoleResources, default_train_config
from agents.live.system import LiveSystem
from agents.live.trainer import TrainerWorker
from imitation.buffer import BufferConfig
from imitation.storage import StorageConfig


def make_config(out: Path, *, collectors: int, hood: tuple[int, int]) -> LiveConfig:
    """The benchmark's settings: small model, buffers of 1,024, a version every 20 batches."""
    train = replace(
        default_train_config(hood),
        batch_size=16,
        buffer=BufferConfig(capacity=1024, start_fill=0.5),
        log_every=5,
    )
    half = RoleResources(num_cpus=0.5)
    return LiveConfig(
        out=out,
        collectors=collectors,
        players=1,
        hood_size=hood,
        traffic=0,
        weather="clear",
        warmup=200,
        train=train,
        publish_every=20,
        storage=StorageConfig(max_bytes=256 * 2**20, chunk_samples=128, fsync=False),
        player_fast=True,
        player_stuck_window=3.0,
        check_every=5,
        collector_resources=half,
        trainer_resources=half,
        player_resources=half,
    )


def collector_alone(config: LiveConfig, seconds: float) -> tuple[dict[str, float], list[Any]]:
    """Recorded and sent samples/s of one collector; also returns the sets it made."""
    sets: list[Any] = []
    worker = CollectorWorker(config=config, index=0, send=lambda i, s: sets.extend(s), start=True)
    time.sleep(5.0)  # env start-up
    s0, t0 = worker.stats(), time.perf_counter()
    time.sleep(seconds)
    s1, t1 = worker.stats(), time.perf_counter()
    worker.stop()
    dt = t1 - t0
    return {
        "recorded_per_s": (s1["recorded"] - s0["recorded"]) / dt,
        "sent_per_s": (s1["sent_samples"] - s0["sent_samples"]) / dt,
    }, sets


def trainer_alone(config: LiveConfig, sets: list[Any], seconds: float) -> dict[str, float]:
    """Samples/s trained when the inbox never runs dry."""
    if not sets:
        return {"samples_per_s": float("nan")}
    worker = TrainerWorker(config=config)
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            if len(worker.inbox) < config.train.buffer.capacity:
                worker.inbox.put(*sets[i % len(sets)])
                i += 1
            else:
                time.sleep(0.01)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    wait_until = time.monotonic() + 60
    while worker.trainer.step < 5 and time.monotonic() < wait_until:
        time.sleep(0.2)
    s0, t0 = worker.trainer.step, time.perf_counter()
    time.sleep(seconds)
    s1, t1 = worker.trainer.step, time.perf_counter()
    stop.set()
    worker.stop()
    return {"samples_per_s": (s1 - s0) * config.train.batch_size / (t1 - t0)}


def live(config: LiveConfig, seconds: float) -> dict[str, float]:
    """The whole system: samples/s into the trainer, trainer samples/s, swap latencies."""
    system = LiveSystem(config=config).start()
    received: list[float] = []
    trained: list[float] = []
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            snap = system.snapshot()
            if time.monotonic() - start > 15:  # past start-up
                received.append(snap.rates.get("trainer/received_per_s", 0.0))
                trained.append(snap.rates.get("trainer/samples_per_s", 0.0))
            time.sleep(1.0)
    finally:
        summary = system.stop()
    seen, swap = [], []
    import json

    log_path = config.players_dir / "player0.json"
    log = json.loads(log_path.read_text())["log"] if log_path.exists() else []
    for e in log:
        if e["event"] == "new_weights_seen":
            seen.append(e["time"] - e["published_at"])
        if e["event"] == "swap":
            swap.append(e["time"] - e["published_at"])
    del summary
    return {
        "received_per_s": statistics.fmean(received) if received else float("nan"),
        "trained_per_s": statistics.fmean(trained) if trained else float("nan"),
        "seen_s": statistics.median(seen) if seen else float("nan"),
        "swap_s": statistics.median(swap) if swap else float("nan"),
        "swaps": float(len(swap)),
    }


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per part")
    parser.add_argument("--hood", default="36x64")
    args = parser.parse_args()
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.hood.split("x"))
    root = Path(tempfile.mkdtemp(prefix="live_speed_"))
    alone_c, sets = collector_alone(
        make_config(root / "alone", collectors=1, hood=(h, w)), args.seconds
    )
    alone_t = trainer_alone(
        make_config(root / "alone_trainer", collectors=1, hood=(h, w)), sets, args.seconds
    )
    one = live(make_config(root / "k1", collectors=1, hood=(h, w)), args.seconds)
    two = live(make_config(root / "k2", collectors=2, hood=(h, w)), args.seconds)
    rows = [
        (
            "balanced samples/s into the trainer",
            alone_c["sent_per_s"],
            one["received_per_s"],
            two["received_per_s"],
        ),
        ("trainer samples/s", alone_t["samples_per_s"], one["trained_per_s"], two["trained_per_s"]),
        ("weights publish -> seen by player (s)", float("nan"), one["seen_s"], two["seen_s"]),
        ("weights publish -> swap at unstuck (s)", float("nan"), one["swap_s"], two["swap_s"]),
    ]
    print(
        f"\nlive_speed, hood {h}x{w}, {args.seconds:.0f} s per part, CPUs {torch.get_num_threads()} thread/actor"
    )
    print(f"collector alone: {alone_c['recorded_per_s']:.0f} samples/s recorded")
    print(f"{'':42s} {'alone':>10s} {'live K=1':>10s} {'live K=2':>10s}")
    for name, a, b, c in rows:
        print(f"{name:42s} {a:10.2f} {b:10.2f} {c:10.2f}")
    print(f"swaps: K=1 {one['swaps']:.0f}, K=2 {two['swaps']:.0f}")


if __name__ == "__main__":
    main()
