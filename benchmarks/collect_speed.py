"""Collection speed: samples/s with 1 and 2 workers, storage alone, reads, bytes, memory.

Run: ``python benchmarks/collect_speed.py`` (``--help`` for sizes). Workers record the noisy
expert in the embedded world (hood 90x160, 8 traffic cars, random weather) into a store, as
``gta5drive collect`` does. Then the frames just recorded are written again with a bare
:class:`~imitation.storage.SampleWriter` (storage throughput without the env) and read back in
random batches of 256 (warm page cache, as during training). Peak memory is the highest resident
set size of each worker process seen by ``psutil`` (sampled every 0.5 s).

A DAgger row: 2 workers while the demo's model (PilotNet 45x80, untrained) drives and the
expert labels, against the 2-worker expert row (the model's forward pass per step is the cost).

One row per balancing scheme (v1-v4, stream mode as ``collect --balance`` runs it:
``require="seen"``, warmup 1,000, 1,000 per bin): the expert labels recorded with 2 workers
(the default: living town, 8 cars, random weather, default noise) go through the balancer
in stream order; the keep rate is balanced samples / recorded samples, and "written/s" is that
rate times the 2-worker collection speed (what ``collect --balance`` writes per second of
recording; the balancer's own cost is given beside it).

Timings depend on what else runs on the machine; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from imitation.balance import make_balancer
from imitation.collect import CollectConfig, CollectResult, collect
from imitation.noise import NoiseConfig
from imitation.sample import unstack_batch
from imitation.storage import SampleStore, SampleWriter, StorageConfig

WRITE_TARGET = 5_000
READ_TARGET = 20_000


def collect_run(
    root: Path, workers: int, per_worker: int, hood: tuple[int, int], driver: Any = None
) -> CollectResult:
    """Record ``per_worker`` samples with each of ``workers`` processes (``driver``: DAgger)."""
    return collect(
        CollectConfig(
            out=root,
            samples=workers * per_worker,
            workers=workers,
            hood_size=hood,
            traffic=8,
            weather="random",
            seed=1000 * workers,
            **({"driver": driver, "noise": NoiseConfig.off()} if driver is not None else {}),
        ),
        progress=False,
    )


def demo_model_driver(root: Path) -> Any:
    """A factory of the demo's model (`agents.demo.demo_model_config`: PilotNet 45x80 with the
    measurement encoder), untrained: what a DAgger round runs per step, for its cost."""
    import torch

    from agents.bc import BCAgent
    from agents.demo import DemoConfig, demo_model_config
    from imitation.checkpoint import save_checkpoint
    from imitation.models import model_from_config

    torch.manual_seed(0)
    model = demo_model_config(DemoConfig())
    path = save_checkpoint(root / "model.safetensors", model=model_from_config(model), step=0)
    return functools.partial(BCAgent.from_checkpoint, path)


def write_throughput(store: SampleStore, root: Path, n: int) -> float:
    """Samples/s of writing ``n`` recorded samples (fsync on, zstd-1) with one writer."""
    samples = unstack_batch(store.read_batch(np.arange(min(n, len(store)))))
    t0 = time.perf_counter()
    with SampleWriter(root, config=StorageConfig()) as writer:
        for s in samples:
            writer.append(s)
    return len(samples) / (time.perf_counter() - t0)


def read_throughput(store: SampleStore, batches: int, rng: np.random.Generator) -> float:
    """Samples/s of reading random batches of 256."""
    store.read_batch(rng.integers(0, len(store), 256))  # warm up maps
    t0 = time.perf_counter()
    for _ in range(batches):
        store.read_batch(rng.integers(0, len(store), 256))
    return batches * 256 / (time.perf_counter() - t0)


def scheme_rows(actions: np.ndarray, recorded_per_s: float) -> list[tuple[str, str]]:
    """Keep rate and balanced samples written per second of each scheme on ``actions``."""
    rows = []
    for scheme in ("v1", "v2", "v3", "v4"):
        b = make_balancer(
            scheme, rng=np.random.default_rng(0), require="seen", warmup=1000, max_per_bin=1000
        )
        t0 = time.perf_counter()
        kept = sets = 0
        for i, a in enumerate(actions):
            for s in b.add_item(i, a):
                kept += len(s)
                sets += 1
        cost = len(actions) / (time.perf_counter() - t0)
        rate = kept / len(actions)
        rows.append(
            (
                f"balance {scheme} (stream, {len(actions):,} expert samples)",
                f"keep {rate:.1%} ({sets} sets), {rate * recorded_per_s:,.0f} written/s; "
                f"balancer alone {cost:,.0f} samples/s",
            )
        )
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-worker", type=int, default=1500, help="samples per worker")
    parser.add_argument("--hood", type=int, nargs=2, default=(90, 160), metavar=("H", "W"))
    parser.add_argument("--read-batches", type=int, default=100)
    args = parser.parse_args()
    hood = (int(args.hood[0]), int(args.hood[1]))
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        results = {}
        for k in (1, 2):
            r = collect_run(base / f"w{k}", k, args.per_worker, hood)
            if not r.ok:
                raise SystemExit(f"collection with {k} workers failed: {r.line()}")
            results[k] = r
            rows.append(
                (
                    f"collect, {k} worker{'s' if k > 1 else ''} (hood {hood[0]}x{hood[1]})",
                    f"{r.samples_per_second:,.0f} samples/s running "
                    f"({r.added / r.seconds:,.0f} incl. {r.startup_seconds:.1f} s start-up)",
                )
            )
        dagger = collect_run(
            base / "dagger", 2, args.per_worker, hood, driver=demo_model_driver(base)
        )
        if not dagger.ok:
            raise SystemExit(f"collection with a driving model failed: {dagger.line()}")
        rows.append(
            (
                "collect, 2 workers, the demo's model drives (DAgger)",
                f"{dagger.samples_per_second:,.0f} samples/s running "
                f"({dagger.samples_per_second / results[2].samples_per_second:.2f}x the "
                f"expert's; the model drove {dagger.learner_share:.0%})",
            )
        )
        store = SampleStore(base / "w2")
        rows.append(
            (
                f"storage write alone (target >= {WRITE_TARGET:,})",
                f"{write_throughput(store, base / 'rewrite', 2000):,.0f} samples/s",
            )
        )
        rows.append(
            (
                f"random batch-256 read (target >= {READ_TARGET:,})",
                f"{read_throughput(store, args.read_batches, np.random.default_rng(0)):,.0f} "
                "samples/s",
            )
        )
        rows.append(("bytes per sample", f"{store.report().bytes_per_sample:,.0f}"))
        rows += scheme_rows(store.column("action"), results[2].samples_per_second)
        for k, r in results.items():
            peaks = ", ".join(f"{w.peak_rss / 2**20:.0f}" for w in r.workers)
            rows.append((f"peak RSS per worker, {k} worker(s)", f"{peaks} MiB"))
        store.close()
    width = max(len(a) for a, _ in rows)
    print(f"{'measure':<{width}} | value")
    print(f"{'-' * width}-|-{'-' * 40}")
    for a, b in rows:
        print(f"{a:<{width}} | {b}")


if __name__ == "__main__":
    main()
