"""``gta5drive demo``: the whole life cycle on a CPU, in the living town, every artefact in one folder.

1. **collect**: the embedded world's autopilot drives training towns — traffic, pedestrians,
   traffic lights and random weather, along fixed routes — in parallel worker processes
   (:func:`imitation.collect.collect`) with noise injected into the *executed* actions
   (DART-style perturbations held for a fraction of a second) while the clean expert action is
   recorded as the label, so the data contains recoveries from the states the learner will
   drift into;
2. **balance and train**: every sample by default (a balancing scheme is one setting away), then a
   small PilotNet on CPU (:func:`imitation.train.train_bc`) that predicts the speed the expert
   aims at rather than the pedal, with no speed input (``speed_target``; the autopilot's speed
   controller makes the pedal, :mod:`imitation.models.speed`), validation on a held-out
   training town;
3. **DAgger**: the model drives new training towns while the expert labels every state it
   reaches (taking the wheel for a moment when the model stands still on a free road or leaves
   its route, :mod:`imitation.dagger`); the samples join the data and the model is retrained
   from its weights -- the states a cloned policy drives into, above all standing still after
   a wait, are where pure behaviour cloning fails in the living town;
4. **evaluate**: random vs expert vs the BC model on held-out towns never seen in training,
   under the ``town`` protocol (:mod:`agents.evaluate`: one fixed route per town, traffic,
   pedestrians, lights, weather per route; driving score with CARLA's penalties);
5. **film**: the BC agent driving in the stream layout (:mod:`agents.stream`);
6. a summary table in the terminal and ``summary.json`` (with each stage's wall time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from imitation.noise import NoiseConfig


def episode_order(store: Any) -> np.ndarray:
    """Indices of ``store``'s samples sorted by (episode, step).

    Parallel workers commit chunks in whatever order they finish; reading in this order makes
    everything downstream independent of that race, so the same config gives the same model.
    """
    return np.lexsort((store.column("step").ravel(), store.column("episode_id").ravel()))


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
    speed: np.ndarray | None = None,
    pedal: np.ndarray | None = None,
    keep_waiting: float = 1.0,
) -> np.ndarray:
    """Indices to keep: every curve sample and a ``keep_straight`` share of straight-ahead ones;
    of the samples where the car stands and the label brakes (waiting at a red light, in a
    queue, for a walker), only a ``keep_waiting`` share.

    Straight driving dominates town driving; thinning it (rather than balancing every bin, which
    would throw away most curve context on a few thousand samples) makes turns matter to the
    loss while keeping the throttle/brake distribution of real driving. In the living town the
    car also stands still for long stretches with the brake on: hundreds of near-identical
    frames per wait, which teach a learner that a car at rest keeps braking (the "inertia" of
    behaviour cloning with a speed input) and drown the few samples that start again.
    """
    steering = np.asarray(steering, np.float32)
    is_straight = np.abs(steering) < straight
    keep = ~is_straight | (rng.random(len(steering)) < keep_straight)
    if speed is not None and pedal is not None and keep_waiting < 1.0:
        waiting = (np.asarray(speed).ravel() < 0.5) & (np.asarray(pedal).ravel() < 0.0)
        keep &= ~waiting | (rng.random(len(steering)) < keep_waiting)
    return np.flatnonzero(keep)


SCHEMES = ("off", "thin", "v1", "v2", "v3", "v4")
"""Balancing choices of the demo: every sample, its own thinning, or a scheme of
:mod:`imitation.balance` (dataset mode)."""


def balanced_view(store: Any, scheme: str, *, config: DemoConfig) -> Any:
    """``store`` (in episode order) balanced by ``scheme``: a view the trainer takes."""
    from imitation.balance import PerOutputStore, make_balancer

    order = episode_order(store)
    actions = np.asarray(store.column("action"))[order]
    rng = np.random.default_rng(config.seed)
    if scheme == "off":
        return SubsetStore(store, order)
    if scheme == "thin":
        keep = balance_steering(
            actions[:, 1],
            rng=rng,
            speed=np.asarray(store.column("speed"))[order],
            pedal=actions[:, 0],
            keep_waiting=config.keep_waiting,
        )
        return SubsetStore(store, order[keep])
    result = make_balancer(scheme, rng=rng, require="seen").balance(actions)
    if scheme == "v2":
        return PerOutputStore(
            {str(o): SubsetStore(store, order[np.sort(result.indices(o))]) for o in result.outputs}
        )
    return SubsetStore(store, order[np.sort(result.indices())])


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Sizes of every stage of the demo.

    Attributes:
        first_town: the expert drives towns ``first_town, first_town + 1, ...`` for data, one
            episode of ``collect_steps`` each; the last one is held out for validation loss.
        towns: how many training towns.
        eval_towns: held-out town seeds for the driving evaluation (never recorded).
        collect_steps: steps recorded per training town.
        workers: collector processes, and evaluation processes sharing the routes.
        noise: noise injection.
        balance: how the samples are balanced before training: ``"off"`` (keep every sample:
            the waits that thinning drops are what a target-speed model learns to stop from;
            fifth round of docs/agents.md), ``"thin"`` (:func:`balance_steering`: every curve
            sample, a share of the straight ones and of the braking waits; the best for the
            earlier pedal model), ``"v3"`` (the original's scheme v3, keeping ~10 % of the
            samples), or ``"v1"``, ``"v2"``, ``"v4"``.
        keep_waiting: with ``balance="thin"``, the share kept of the samples where the car
            stands braking (see :func:`balance_steering`).
        image_size: model input (the 90×160 hood is resized to it).
        backbone: the model's convolution stack (``"pilotnet"``; ``"pilotnet_fine"`` keeps its
            first layer at full resolution, ~4× the training time).
        dense: width of the model's common dense layer.
        frame_stack: hood frames stacked as the model's input (2 shows motion).
        speed_input: feed the speed to the model (with it, a learner can copy "standing
            still" from the speed alone: the inertia problem of behaviour cloning).
        measurements: width of the model's measurement encoder (purpose and speed; 0: raw).
        light_head: weight of the model's auxiliary traffic-light loss (a head that reads the
            light ahead from the camera features, trained on the recorded ``light`` label; 0:
            no such head).
        speed_target: > 0: the model predicts the speed the expert aims at (up to this many
            m/s) instead of the pedal, and a speed controller makes the pedal
            (``ModelConfig.speed_target``); 0: it predicts the pedal.
        overshoot: loss factor where the ``throttle_brake`` prediction lies above its label
            (``OutputSpec.overshoot``; 1: symmetric, > 1: errs slow).
        outputs: the kind of each output, ``(throttle_brake, steering)``: ``"regression"`` or
            ``"classification"`` (21 bins; the most likely bin drives, where regression
            would average "brake" and "go" into a standstill).
        train_steps: optimiser steps.
        dagger_rounds: DAgger rounds after the first training: the model drives new training
            towns (the expert takes over when it is stuck or off its route), the expert labels
            every state, and the model is retrained on all the data (:mod:`imitation.dagger`).
        dagger_towns: towns the model drives per round (after the training towns).
        dagger_steps: steps per DAgger town (0: ``collect_steps``).
        dagger_train_steps: optimiser steps of each retraining (warm-started from the last
            model).
        batch_size: samples per step.
        lr: peak learning rate.
        traffic: traffic cars in the training towns.
        pedestrians: walkers in the training towns.
        weather: weather of the training towns (``"random"``: drawn per episode).
        protocol: evaluation protocol (``"town"``: the living town; ``"empty"``: no traffic,
            pedestrians or lights).
        eval_route_m: least length of each evaluation town's fixed route, metres (the
            protocol's is 2,000).
        purpose_mode: the env's ``purpose_mode`` for recording, evaluation and the video:
            ``"auto"`` (on the embedded world: the bearing along the planned route, which tells
            the learner where to turn) or ``"point"`` (the bearing to the purpose point itself,
            as in the original).
        video_steps: steps of the stream-layout video (0: no video).
        seed: seed of everything.
    """

    first_town: int = 100
    towns: int = 20
    eval_towns: tuple[int, ...] = (1000, 1001, 1002, 1003)
    collect_steps: int = 1200
    workers: int = 2
    noise: NoiseConfig = field(default_factory=NoiseConfig.recovery)
    balance: str = "off"
    keep_waiting: float = 0.3
    image_size: tuple[int, int] = (45, 80)
    backbone: str = "pilotnet"
    dense: int = 128
    frame_stack: int = 1
    speed_input: bool = False
    measurements: int = 64
    light_head: float = 0.0
    speed_target: float = 15.0
    overshoot: float = 1.0
    outputs: tuple[str, str] = ("regression", "regression")
    train_steps: int = 2500
    dagger_rounds: int = 2
    dagger_towns: int = 16
    dagger_steps: int = 0
    dagger_train_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    traffic: int = 8
    pedestrians: int = 24
    weather: str = "random"
    protocol: str = "town"
    eval_route_m: float = 2000.0
    purpose_mode: str = "auto"
    video_steps: int = 450
    seed: int = 0

    def __post_init__(self) -> None:
        from gta_env.fields import check_ints

        check_ints(
            self,
            {
                "towns": 1,
                "collect_steps": 1,
                "train_steps": 1,
                "dagger_rounds": 0,
                "dagger_towns": 1,
                "dagger_steps": 0,
                "dagger_train_steps": 1,
                "frame_stack": 1,
            },
        )
        if self.balance not in SCHEMES:
            raise ValueError(f"DemoConfig.balance={self.balance!r} is not one of {SCHEMES}")
        from imitation.models import is_builtin
        from imitation.models.timm_backbone import import_timm

        if not is_builtin(self.backbone):
            try:
                import_timm(self.backbone)  # names the extra to install and the built-ins
            except ImportError as exc:
                raise ValueError(f"DemoConfig.backbone: {exc}") from None
        demo_model_config(self)  # the model's own checks (light_head, sizes), before any work

    @classmethod
    def quick(cls) -> DemoConfig:
        """A few minutes on 2 CPUs: less data and training, two short evaluation routes."""
        return cls(
            towns=8,
            eval_towns=(1000, 1001),
            collect_steps=900,
            train_steps=500,
            dagger_rounds=1,
            dagger_towns=4,
            dagger_train_steps=250,
            eval_route_m=600.0,
            video_steps=150,
        )


def collect_demonstrations(
    config: DemoConfig, data: Path, *, driver: Path | None = None, progress: bool = True
) -> Any:
    """Stage 1: the noisy expert in the living town's training towns, into the store ``data``.

    With ``driver`` (a checkpoint), a DAgger round instead: the model drives
    ``config.dagger_towns`` new training towns without noise and the expert labels every state;
    the samples are appended to ``data``.
    """
    import functools

    from agents.bc import BCAgent
    from imitation.collect import CollectConfig, collect
    from imitation.noise import NoiseConfig
    from imitation.storage import StorageConfig

    towns, steps = config.towns, config.collect_steps
    if driver is not None:
        towns, steps = config.dagger_towns, config.dagger_steps or config.collect_steps
    return collect(
        CollectConfig(
            out=data,
            samples=towns * steps,
            workers=config.workers,
            noise=config.noise if driver is None else NoiseConfig.off(),
            driver=None if driver is None else functools.partial(BCAgent.from_checkpoint, driver),
            seed=config.first_town,
            traffic=config.traffic,
            weather=config.weather,
            episode_steps=steps,
            storage=StorageConfig(fsync=False),
            env_kwargs=(
                ("purpose_mode", config.purpose_mode),
                ("pedestrians", config.pedestrians),
                ("route_length", config.eval_route_m),
            ),
        ),
        progress=progress,
    )


def demo_model_config(config: DemoConfig) -> Any:
    """The demo's `ModelConfig`: backbone, input size, widths, frame stack, speed and outputs."""
    from imitation.models import ModelConfig, default_outputs

    return ModelConfig(
        backbone=config.backbone,
        image_size=config.image_size,
        dense=config.dense,
        measurements=config.measurements,
        frame_stack=config.frame_stack,
        speed=config.speed_input,
        light_head=config.light_head,
        speed_target=config.speed_target,
        outputs=tuple(
            replace(o, overshoot=config.overshoot) if i == 0 else o
            for i, o in enumerate(default_outputs(config.outputs))
        ),
    )


def demo_train_config(
    config: DemoConfig, store: Any, *, steps: int | None = None, progress: bool = True
) -> Any:
    """The `TrainConfig` for ``store`` (its last town held out for validation), ``steps``
    optimiser steps (default ``config.train_steps``; a DAgger retraining passes its own)."""
    from imitation.buffer import BufferConfig
    from imitation.train import AugmentConfig, TrainConfig

    steps = config.train_steps if steps is None else steps
    towns = np.asarray(store.column("town_id")).ravel()
    val_towns = (int(towns.max()),)
    train = ~np.isin(towns, val_towns)
    # Every buffer must be able to fill from training towns: with one buffer per output (a v2
    # view), each fills from its own output's samples only.
    groups = getattr(store, "output_indices", None) or {"all": np.arange(len(towns))}
    n_train = min(int(train[np.asarray(idx)].sum()) for idx in groups.values())
    capacity = min(25_000, int(n_train * 0.9))
    return TrainConfig(
        model=demo_model_config(config),
        steps=steps,
        batch_size=config.batch_size,
        lr=config.lr,
        warmup_steps=min(100, steps // 10),
        buffer=BufferConfig(capacity=capacity, start_fill=0.9),
        # No mirror images: mirrored, the car would keep to the left of the centre line, and
        # right-hand traffic would teach lane keeping on both sides at once.
        augment=AugmentConfig(flip=0.0),
        val_towns=val_towns,
        val_samples=1024,
        val_every=max(steps // 4, 1),
        checkpoint_every=max(steps // 4, 1),
        log_every=25,
        image_every=0,
        device="cpu",
        seed=config.seed,
        progress=progress,
    )


def demo_eval_config(config: DemoConfig) -> Any:
    """Stage 4's `EvalConfig`: the demo's protocol on its held-out towns."""
    from agents.evaluate import EvalConfig

    return EvalConfig(
        protocol=config.protocol,
        seeds=config.eval_towns,
        route_m=config.eval_route_m,
        intersections=int(min(6, config.eval_route_m // 300)),
        env_kwargs={"purpose_mode": config.purpose_mode},
    )


def run_demo(
    out_dir: str | Path, *, config: DemoConfig | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``out_dir/summary.json``)."""
    import torch

    from agents.evaluate import evaluate_specs
    from agents.player import film
    from imitation.storage import SampleStore
    from imitation.train import train_bc

    config = config or DemoConfig()
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    def stage(name: str) -> None:
        print(f"\n== {name} ({time.perf_counter() - t_start:.0f} s) ==", flush=True)

    stages = 5 if config.dagger_rounds else 4
    stage(
        f"1/{stages} collect: expert with noise, {config.towns} towns x "
        f"{config.collect_steps} steps, {config.workers} workers"
    )
    t = time.perf_counter()
    data = out / "demonstrations"
    collected = collect_demonstrations(config, data, progress=progress)
    n = collected.added
    if n == 0:
        raise RuntimeError(f"the demo recorded no samples: {collected.line()}")
    timings["collect_s"] = time.perf_counter() - t
    print(collected.line())

    def balance_and_train(run: Path, steps: int, init: Path | None) -> tuple[Path, int]:
        t = time.perf_counter()
        store = SampleStore(data)
        balanced = balanced_view(store, config.balance, config=config)
        timings["balance_s"] = timings.get("balance_s", 0.0) + time.perf_counter() - t
        print(f"balance ({config.balance}): kept {len(balanced)} of {len(store)} samples")
        t = time.perf_counter()
        train_config = demo_train_config(config, balanced, steps=steps, progress=progress)
        torch.set_num_threads(max(config.workers, 1))  # the stages run one after another
        checkpoint = train_bc(config=train_config, store=balanced, out_dir=run, init=init)
        torch.set_num_threads(1)
        timings["train_s"] = timings.get("train_s", 0.0) + time.perf_counter() - t
        return checkpoint, len(balanced)

    stage(
        f"2/{stages} balance ({config.balance}) and train: pilotnet {config.image_size}, "
        f"{config.train_steps} steps on CPU"
    )
    run = out / "run"
    checkpoint, n_balanced = balance_and_train(run, config.train_steps, None)
    dagger: list[dict[str, Any]] = []
    for r in range(config.dagger_rounds):
        stage(
            f"3/{stages} DAgger round {r + 1}/{config.dagger_rounds}: the model drives "
            f"{config.dagger_towns} new towns, the expert labels; retrain "
            f"{config.dagger_train_steps} steps"
        )
        t = time.perf_counter()
        collected = collect_demonstrations(config, data, driver=checkpoint, progress=progress)
        timings["dagger_collect_s"] = timings.get("dagger_collect_s", 0.0) + time.perf_counter() - t
        print(collected.line())
        dagger.append(
            {
                "samples": collected.added,
                "learner_share": collected.learner_share,
                "takeovers": collected.takeovers,
                "collisions": sum(w.collisions for w in collected.workers),
            }
        )
        run = out / f"run-dagger{r + 1}"
        checkpoint, n_balanced = balance_and_train(run, config.dagger_train_steps, checkpoint)
        n += collected.added

    eval_config = demo_eval_config(config)
    stage(
        f"{stages - 1}/{stages} evaluate on held-out towns {list(config.eval_towns)}: "
        f"{config.protocol} protocol, "
        f"one fixed route of >= {config.eval_route_m:g} m each"
    )
    t = time.perf_counter()
    report = evaluate_specs(
        ["expert", "random", str(checkpoint)],
        config=eval_config,
        workers=config.workers,
        progress=progress,
    )
    paths = report.write(out / "eval")
    timings["eval_s"] = time.perf_counter() - t

    t = time.perf_counter()
    video: Path | None = None
    if config.video_steps:
        stage(f"{stages}/{stages} film the BC agent in the stream layout")
        video = film(
            checkpoint=checkpoint,
            run_dir=run,
            out=out / "stream.mp4",
            steps=config.video_steps,
            town_seed=config.eval_towns[0],
            env_kwargs={
                "purpose_mode": config.purpose_mode,
                **{
                    k: v
                    for k, v in eval_config.env_settings().items()
                    if k not in ("backend", "on_stuck", "stuck_window")
                },
            },
            progress=progress,
        )
    timings["video_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t_start

    totals = {name: report.total(name) for name in report.results}
    bc_name = next(n for n in totals if n.startswith("bc:"))
    summary = {
        "config": _jsonable(asdict(config)),
        "samples": n,
        "balanced_samples": int(n_balanced),
        "dagger": dagger,
        "checkpoint": str(checkpoint),
        "video": None if video is None else str(video),
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
        "routes_completed",
        "collisions_per_km",
        "red_lights_per_km",
        "collisions_pedestrian",
        "collisions_vehicle",
        "collisions_static",
        "red_lights",
        "off_road_fraction",
        "mean_speed_kmh",
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
