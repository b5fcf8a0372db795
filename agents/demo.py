"""``gta5drive demo``: the whole life cycle on a CPU, every artefact in one folder.

1. **collect**: the embedded world's autopilot drives training towns in parallel worker
   processes with noise injected into the *executed* steering (DART-style perturbations held for
   a fraction of a second) while the clean expert action is recorded as the label, so the data
   contains recoveries from the states the learner will drift into;
2. **balance**: thin out the over-represented straight-ahead samples (steering bins);
3. **train**: a small PilotNet on CPU (:func:`imitation.train.train_bc`), validation on held-out
   training towns;
4. **evaluate**: random vs expert vs the BC model on held-out towns never seen in training
   (:mod:`agents.evaluate`);
5. **film**: the BC agent driving in the stream layout (:mod:`agents.stream`);
6. a summary table in the terminal and ``summary.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class NoiseConfig:
    """Steering/throttle perturbations of the executed action (labels stay clean).

    Attributes:
        start_prob: probability per step that a perturbation starts.
        steer: maximum absolute steering offset (drawn uniformly from ``[steer/3, steer]``, random
            sign).
        throttle: maximum absolute throttle offset during a perturbation.
        frames: (min, max) length of a perturbation in steps.
    """

    start_prob: float = 1 / 45
    steer: float = 0.5
    throttle: float = 0.2
    frames: tuple[int, int] = (8, 24)

    def __post_init__(self) -> None:
        if not 0 <= self.start_prob <= 1:
            raise ValueError(f"NoiseConfig.start_prob must be in [0, 1], got {self.start_prob}")
        if not (0 <= self.steer <= 2 and 0 <= self.throttle <= 2):
            raise ValueError("NoiseConfig.steer and .throttle must be in [0, 2]")
        lo, hi = self.frames
        if not 1 <= lo <= hi:
            raise ValueError(f"NoiseConfig.frames must be 1 <= min <= max, got {self.frames}")


class SteeringNoise:
    """Draws the perturbation of each step from an explicit generator."""

    def __init__(self, config: NoiseConfig, *, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self._left = 0
        self._offset = np.zeros(2, np.float32)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The executed action for the expert's clean ``action``."""
        c = self.config
        if self._left == 0 and self.rng.random() < c.start_prob:
            self._left = int(self.rng.integers(c.frames[0], c.frames[1] + 1))
            sign = self.rng.choice([-1.0, 1.0])
            self._offset = np.array(
                [
                    self.rng.uniform(-c.throttle, c.throttle),
                    sign * self.rng.uniform(c.steer / 3, c.steer),
                ],
                np.float32,
            )
        if self._left == 0:
            return action
        self._left -= 1
        return np.clip(action + self._offset, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class CollectJob:
    """One worker's share: drive ``towns`` for ``steps`` each and write to ``store``."""

    store: str
    towns: tuple[int, ...]
    steps: int
    noise: NoiseConfig
    seed: int
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)


def collect_worker(job: CollectJob, counter: Any = None) -> int:
    """Drive the expert with noise on each town of ``job`` and store samples; returns the count."""
    import gymnasium as gym

    import gta_env  # noqa: F401
    from imitation.sample import Sample
    from imitation.storage import SampleWriter, StorageConfig

    env = gym.make(
        "GTA5Drive-v0",
        backend="sim",
        max_episode_steps=job.steps + 1,
        **dict(job.env_kwargs),
    )
    written = 0
    config = StorageConfig(chunk_samples=256, fsync=False)
    try:
        with SampleWriter(job.store, config=config, writer_id=f"w{job.seed}") as writer:
            for town in job.towns:
                rng = np.random.default_rng([job.seed, town])
                noise = SteeringNoise(job.noise, rng=rng)
                obs, info = env.reset(seed=town, options={"town_seed": town})
                for step in range(job.steps):
                    label = np.asarray(info["expert_action"], np.float32)
                    executed = noise(label) if info["unstuck_phase"] is None else label
                    if info["unstuck_phase"] is None:
                        writer.append(
                            Sample(
                                hood=obs["hood"],
                                action=label,
                                executed_action=executed,
                                speed=float(obs["speed"][0]),
                                purpose=obs["purpose"],
                                time=step / 30.0,
                                step=step,
                                episode_id=town,
                                town_id=town,
                            )
                        )
                        written += 1
                    obs, _, terminated, truncated, info = env.step(executed)
                    if counter is not None and step % 30 == 29:
                        with counter.get_lock():
                            counter.value += 30
                    if terminated or truncated:
                        break
    finally:
        env.close()
    return written


def collect_demonstrations(
    store: str | Path,
    *,
    towns: Sequence[int],
    steps: int,
    workers: int = 2,
    noise: NoiseConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
) -> int:
    """Record the noisy expert on ``towns`` (``steps`` each) with parallel worker processes.

    Returns:
        the number of samples written.
    """
    from tqdm import tqdm

    noise = noise or NoiseConfig()
    workers = max(1, min(workers, len(towns)))
    shares = [tuple(towns[i::workers]) for i in range(workers)]
    jobs = [
        CollectJob(
            store=str(store),
            towns=share,
            steps=steps,
            noise=noise,
            seed=seed * 1000 + i,
            env_kwargs=dict(env_kwargs or {}),
        )
        for i, share in enumerate(shares)
    ]
    ctx = mp.get_context("spawn")
    counter = ctx.Value("l", 0)
    total = steps * len(towns)
    bar = tqdm(total=total, disable=not progress, unit="step", desc="collect")
    with ctx.Pool(workers, initializer=_set_counter, initargs=(counter,)) as pool:
        result = pool.map_async(_collect_with_counter, jobs)
        while not result.ready():
            result.wait(0.5)
            bar.n = min(counter.value, total)
            bar.refresh()
        counts = result.get()
    bar.n = total
    bar.close()
    return int(sum(counts))


_COUNTER: Any = None


def _set_counter(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter


def _collect_with_counter(job: CollectJob) -> int:
    import torch

    torch.set_num_threads(1)
    return collect_worker(job, _COUNTER)


class SubsetStore:
    """A read-only view of some samples of a store (what balancing keeps), without copying.

    Args:
        store: a :class:`imitation.storage.SampleStore`.
        indices: sample indices to expose, in order.
    """

    def __init__(self, store: Any, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def read_batch(self, indices: np.ndarray) -> Mapping[str, np.ndarray]:
        """Samples by view index."""
        return self.store.read_batch(self.indices[np.asarray(indices, np.int64)])

    def column(self, key: str) -> np.ndarray:
        """A small metadata column of the kept samples."""
        return np.asarray(self.store.column(key))[self.indices]


def balance_steering(
    steering: np.ndarray,
    *,
    rng: np.random.Generator,
    straight: float = 0.04,
    keep_straight: float = 0.35,
) -> np.ndarray:
    """Indices to keep: every curve sample and a ``keep_straight`` share of straight-ahead ones.

    Straight driving dominates town driving; thinning it (rather than balancing every bin, which
    would throw away most curve context on a few thousand samples) makes turns matter to the
    loss while keeping the throttle/brake distribution of real driving.
    """
    steering = np.asarray(steering, np.float32)
    is_straight = np.abs(steering) < straight
    keep = ~is_straight | (rng.random(len(steering)) < keep_straight)
    return np.flatnonzero(keep)


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Sizes of every stage of the demo.

    Attributes:
        train_towns: town seeds the expert drives for data.
        val_towns: of those, towns held out for validation loss (not trained on).
        eval_towns: held-out town seeds for the driving evaluation (never recorded).
        collect_steps: steps recorded per training town.
        workers: collector processes.
        noise: noise injection.
        image_size: model input (the 90×160 hood is resized to it).
        dense: width of the model's common dense layer.
        train_steps: optimiser steps.
        batch_size: samples per step.
        lr: peak learning rate.
        eval_minutes: game minutes per agent and evaluation town.
        video_steps: steps of the stream-layout video.
        seed: seed of everything.
    """

    train_towns: tuple[int, ...] = tuple(range(100, 118))
    val_towns: tuple[int, ...] = (117,)
    eval_towns: tuple[int, ...] = (1000, 1001, 1002, 1003)
    collect_steps: int = 1200
    workers: int = 2
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    image_size: tuple[int, int] = (45, 80)
    dense: int = 128
    train_steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    eval_minutes: float = 1.0
    video_steps: int = 450
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoConfig:
        """About 3 minutes on 2 CPUs."""
        return cls(
            train_towns=tuple(range(100, 108)),
            val_towns=(107,),
            eval_towns=(1000, 1001),
            collect_steps=900,
            train_steps=500,
            eval_minutes=0.5,
            video_steps=150,
        )


def run_demo(
    out_dir: str | Path, *, config: DemoConfig | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``out_dir/summary.json``)."""
    import torch

    from agents.evaluate import EvalConfig, agent_factory, evaluate
    from agents.stream import film
    from imitation.buffer import BufferConfig
    from imitation.models import ModelConfig
    from imitation.storage import SampleStore
    from imitation.train import AugmentConfig, TrainConfig, train_bc

    config = config or DemoConfig()
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    def stage(name: str) -> None:
        print(f"\n== {name} ({time.perf_counter() - t_start:.0f} s) ==", flush=True)

    stage(
        f"1/5 collect: expert with noise, {len(config.train_towns)} towns x "
        f"{config.collect_steps} steps, {config.workers} workers"
    )
    t = time.perf_counter()
    data = out / "demonstrations"
    n = collect_demonstrations(
        data,
        towns=config.train_towns,
        steps=config.collect_steps,
        workers=config.workers,
        noise=config.noise,
        seed=config.seed,
        progress=progress,
    )
    timings["collect_s"] = time.perf_counter() - t
    print(f"{n} samples in {data}")

    stage("2/5 balance: thin out straight-ahead samples")
    t = time.perf_counter()
    store = SampleStore(data)
    keep = balance_steering(store.column("action")[:, 1], rng=np.random.default_rng(config.seed))
    balanced = SubsetStore(store, keep)
    timings["balance_s"] = time.perf_counter() - t
    print(f"kept {len(keep)} of {len(store)} samples")

    stage(f"3/5 train: pilotnet {config.image_size}, {config.train_steps} steps on CPU")
    t = time.perf_counter()
    run = out / "run"
    towns = balanced.column("town_id")
    n_train = int((~np.isin(towns, config.val_towns)).sum())
    capacity = min(25_000, int(n_train * 0.9))  # the buffer must be able to fill from train towns
    train_config = TrainConfig(
        model=ModelConfig(backbone="pilotnet", image_size=config.image_size, dense=config.dense),
        steps=config.train_steps,
        batch_size=config.batch_size,
        lr=config.lr,
        warmup_steps=min(100, config.train_steps // 10),
        buffer=BufferConfig(capacity=capacity, start_fill=0.9),
        augment=AugmentConfig(flip=0.5),
        val_towns=config.val_towns,
        val_samples=1024,
        val_every=max(config.train_steps // 4, 1),
        checkpoint_every=max(config.train_steps // 4, 1),
        log_every=25,
        image_every=0,
        device="cpu",
        seed=config.seed,
        progress=progress,
    )
    checkpoint = train_bc(config=train_config, store=balanced, out_dir=run)
    timings["train_s"] = time.perf_counter() - t

    stage(
        f"4/5 evaluate on held-out towns {list(config.eval_towns)}, "
        f"{config.eval_minutes:g} min each"
    )
    t = time.perf_counter()
    agents = dict(
        [agent_factory("expert"), agent_factory("random"), agent_factory(str(checkpoint))]
    )
    report = evaluate(
        agents,
        config=EvalConfig(seeds=config.eval_towns, minutes=config.eval_minutes),
        progress=progress,
    )
    paths = report.write(out / "eval")
    timings["eval_s"] = time.perf_counter() - t

    stage("5/5 film the BC agent in the stream layout")
    t = time.perf_counter()
    video = film(
        checkpoint=checkpoint,
        run_dir=run,
        out=out / "stream.mp4",
        steps=config.video_steps,
        town_seed=config.eval_towns[0],
        progress=progress,
    )
    timings["video_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start

    totals = {name: report.total(name) for name in report.results}
    bc_name = next(n for n in totals if n.startswith("bc:"))
    summary = {
        "config": _jsonable(asdict(config)),
        "samples": n,
        "balanced_samples": int(len(keep)),
        "checkpoint": str(checkpoint),
        "video": str(video),
        "report": {k: str(v) for k, v in paths.items()},
        "totals": totals,
        "bc_over_expert": _ratio(
            totals[bc_name]["driving_score"], totals["expert"]["driving_score"]
        ),
        "bc_over_random": _ratio(
            totals[bc_name]["driving_score"], totals["random"]["driving_score"]
        ),
        "timings": timings,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary, bc_name)
    return summary


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_summary(summary: Mapping[str, Any], bc_name: str) -> None:
    """The final table in the terminal."""
    from rich.console import Console
    from rich.table import Table

    totals = summary["totals"]
    names = ["expert", bc_name, "random"]
    table = Table(title="gta5drive demo: held-out towns")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    for key in (
        "driving_score",
        "route_completion",
        "collisions_per_km",
        "collisions_vehicle",
        "collisions_static",
        "off_road_fraction",
        "unstucks",
        "mean_speed_kmh",
        "autonomy",
    ):
        table.add_row(key, *(f"{totals[n][key]:.3f}" for n in names))
    console = Console()
    console.print(table)
    ratio_e, ratio_r = summary["bc_over_expert"], summary["bc_over_random"]
    console.print(
        f"BC / expert driving score: {ratio_e if ratio_e is None else f'{ratio_e:.2f}'}; "
        f"BC / random: {ratio_r if ratio_r is None else f'{ratio_r:.1f}'}"
    )
    timings = summary["timings"]
    console.print(
        "time: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in timings.items()),
    )
    console.print(f"video: {summary['video']}\nreport: {summary['report']['md']}")
