"""Settings of a live run: how many of each role, what they drive, train and ask of a cluster."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gta_env.fields import check_ints
from imitation.balance import SCHEMES, V2_OUTPUTS, make_balancer
from imitation.buffer import BufferConfig, output_columns
from imitation.models import ModelConfig
from imitation.noise import NoiseConfig
from imitation.storage import StorageConfig
from imitation.train import AugmentConfig, TrainConfig

PLAYER_TOWN_OFFSET = 100_000
"""Players drive towns ``seed + PLAYER_TOWN_OFFSET + index``: never one a collector records."""


def default_train_config(hood_size: tuple[int, int] = (90, 160)) -> TrainConfig:
    """Continuous-training defaults: constant learning rate, no end, checkpoints at publishes."""
    return TrainConfig(
        model=ModelConfig(backbone="pilotnet", image_size=hood_size, dense=128, measurements=64),
        steps=10**12,
        batch_size=64,
        lr=3e-4,
        schedule="constant",
        warmup_steps=50,
        buffer=BufferConfig(capacity=25_000, start_fill=0.9),
        augment=AugmentConfig(),
        val_every=0,
        checkpoint_every=0,
        log_every=10,
        image_every=0,
        prefetch=1,
        progress=False,
    )


@dataclass(frozen=True, kw_only=True)
class RoleResources:
    """What one actor of a role asks the Ray scheduler for.

    Attributes:
        num_cpus: logical CPUs (fractions allowed; the local instance is sized to fit).
        num_gpus: GPUs (fractions allowed); the trainer is the role that profits.
        resources: custom Ray resources, ``((name, amount), ...)``: on a cluster, a role asks
            for a resource that only some nodes declare (``ray start --resources
            '{"collect": 4}'``) to run there -- collectors on the machines with the game,
            the trainer on the one with the GPU.
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "resources", tuple((str(k), float(v)) for k, v in dict(self.resources).items())
        )
        if self.num_cpus < 0 or self.num_gpus < 0 or any(v < 0 for _, v in self.resources):
            raise ValueError(f"resources must be >= 0, got {self}")

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``ActorClass.options``."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.resources:
            options["resources"] = dict(self.resources)
        return options


@dataclass(frozen=True, kw_only=True)
class LiveConfig:
    """Everything a live run needs.

    Attributes:
        out: run folder: ``storage/`` (rotating sample store), ``trainer/`` (checkpoints,
            TensorBoard), ``players/`` (per-player logs), ``stream/`` (video), ``live.jsonl``.
            On a cluster it must be a path every node sees (see ``docs/live.md``).
        collectors: collector actors.
        players: player actors.
        seed: base seed (towns, noise, balancers, training).
        hood_size: hood camera ``(height, width)`` of every env.
        traffic: traffic cars per town.
        weather: weather preset or ``"random"``.
        episode_steps: steps per collector episode (a new town each).
        collector_stuck_window: collectors' env ``stuck_window`` (seconds of game time).
        player_stuck_window: players' env ``stuck_window``; new weights are swapped in at an
            unstuck, so a shorter window swaps sooner (and is stricter on the driving).
        balance: stream balancing scheme (``"v1"`` ... ``"v4"``; ``"v2"`` gives the trainer
            one buffer per v2 output, accel and brake both training ``throttle_brake``), or None: every recorded sample is sent (in sets of
            ``send_every``); the most data per minute, unbalanced.
        send_every: samples per set sent when ``balance`` is None.
        require: balancer bins required (``"seen"`` suits the continuous expert).
        warmup: samples a collector's balancer sees before its first set.
        max_per_bin: most samples a collector's balancer queues per bin.
        noise: perturbations of the collectors' executed actions (labels stay clean).
        train: the trainer's configuration (model, batch, buffers, ...); ``steps`` is the end.
        publish_every: optimiser steps between weight publications (each is also a checkpoint).
        keep_checkpoints: newest checkpoints kept in ``trainer/checkpoints``.
        storage: how the trainer writes its rotating storage (``max_bytes`` caps it).
        inbox_samples: most received samples waiting for buffer room; beyond, the oldest sets
            wait in storage only (they are never lost from it).
        warm_samples: samples read back from storage into the buffers on a (re)start; default
            the buffer capacity.
        max_in_flight: sets a collector may have sent but not yet acknowledged (back-pressure).
        player_rate: player predictions per second of real time.
        player_fast: players predict as fast as they can.
        player_dead_zone: players' dead-zone translation.
        check_every: player steps between asks for newer weights.
        video: write the stream layout of player 0 to ``stream/player0.mp4``.
        convcam_every: player 0 computes its Convcam every this many steps (video only).
        torch_threads: ``torch.set_num_threads`` in every actor.
        collector_resources: per collector actor.
        trainer_resources: for the trainer actor.
        player_resources: per player actor.
    """

    out: Path
    collectors: int = 2
    players: int = 1
    seed: int = 0
    hood_size: tuple[int, int] = (90, 160)
    traffic: int = 4
    weather: str = "random"
    episode_steps: int = 3600
    collector_stuck_window: float = 8.0
    player_stuck_window: float = 8.0
    balance: str | None = "v3"
    require: str = "seen"
    send_every: int = 32
    warmup: int = 1000
    max_per_bin: int = 1000
    noise: NoiseConfig = field(default_factory=NoiseConfig.default)
    train: TrainConfig = field(default_factory=default_train_config)
    publish_every: int = 200
    keep_checkpoints: int = 3
    storage: StorageConfig = field(
        default_factory=lambda: StorageConfig(max_bytes=4 * 2**30, chunk_samples=256)
    )
    inbox_samples: int | None = None
    warm_samples: int | None = None
    max_in_flight: int = 2
    player_rate: float = 30.0
    player_fast: bool = False
    player_dead_zone: float = 0.0
    check_every: int = 15
    video: bool = False
    convcam_every: int = 5
    torch_threads: int = 1
    collector_resources: RoleResources = field(default_factory=RoleResources)
    trainer_resources: RoleResources = field(default_factory=RoleResources)
    player_resources: RoleResources = field(default_factory=RoleResources)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "hood_size", tuple(int(v) for v in self.hood_size))
        check_ints(
            self,
            {
                "collectors": 0,
                "players": 0,
                "seed": 0,
                "episode_steps": 1,
                "publish_every": 1,
                "keep_checkpoints": 1,
                "max_in_flight": 1,
                "send_every": 1,
                "check_every": 1,
                "convcam_every": 0,
                "torch_threads": 1,
            },
        )
        if self.balance is not None and self.balance not in SCHEMES:
            raise ValueError(
                f"LiveConfig.balance must be None (off) or one of {sorted(SCHEMES)}, "
                f"got {self.balance!r}"
            )
        if self.balance == "v2":
            # v2 sends sets per output (accel, brake, steering): one buffer each, mapped onto
            # the model's outputs (accel and brake both train a merged throttle_brake).
            buffer = replace(self.train.buffer, per_output=True, outputs=V2_OUTPUTS)
            output_columns(buffer.outputs, [o.name for o in self.train.model.outputs])
            object.__setattr__(self, "train", replace(self.train, buffer=buffer))
        model = self.train.model
        if model.frame_stack > 1 or model.history or model.needs_prev_action:
            raise ValueError(
                "the live trainer trains from a stream of balanced sets, which carry no "
                "neighbouring samples: use a model without frame stacking, history or delta "
                "outputs (train those from storage with `gta5drive train`)"
            )
        if model.cinematic_size is not None:
            raise ValueError("the live system records the hood camera only; use one backbone")
        for name in ("collector_stuck_window", "player_stuck_window", "player_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LiveConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.player_dead_zone < 1:
            raise ValueError(
                f"LiveConfig.player_dead_zone must be in [0, 1), got {self.player_dead_zone}"
            )
        check_ints(self, {"inbox_samples": 0, "warm_samples": 0}, optional=True)
        if self.balance is not None:  # fail here, not in the actors
            make_balancer(**self.balancer_kwargs(np.random.default_rng(0)))

    # ----------------------------------------------------------------------------- derived

    @property
    def storage_dir(self) -> Path:
        """The trainer's rotating sample store."""
        return self.out / "storage"

    @property
    def trainer_dir(self) -> Path:
        """The trainer's run folder (checkpoints, TensorBoard)."""
        return self.out / "trainer"

    @property
    def players_dir(self) -> Path:
        """Per-player logs (swaps, driving per weight version)."""
        return self.out / "players"

    @property
    def inbox_limit(self) -> int:
        """Most samples waiting for buffer room."""
        cap = self.train.buffer.capacity
        return 2 * cap if self.inbox_samples is None else self.inbox_samples

    @property
    def warm_limit(self) -> int:
        """Samples read back from storage on a (re)start."""
        return self.train.buffer.capacity if self.warm_samples is None else self.warm_samples

    def balancer_kwargs(self, rng: np.random.Generator) -> dict[str, Any]:
        """Arguments of :func:`imitation.balance.make_balancer` for a collector."""
        return {
            "scheme": self.balance,
            "rng": rng,
            "max_per_bin": self.max_per_bin,
            "require": self.require,
            "warmup": self.warmup if self.require == "seen" else 0,
        }

    def env_kwargs(self) -> dict[str, Any]:
        """``gym.make`` arguments shared by collectors and players."""
        return {
            "backend": "sim",
            "hood_size": self.hood_size,
            "traffic": self.traffic,
            "weather": self.weather,
        }

    def player_town(self, index: int) -> int:
        """The town player ``index`` drives."""
        return self.seed + PLAYER_TOWN_OFFSET + index

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for ``live.jsonl``)."""
        return {
            "out": str(self.out),
            "collectors": self.collectors,
            "players": self.players,
            "seed": self.seed,
            "hood_size": list(self.hood_size),
            "traffic": self.traffic,
            "balance": self.balance,
            "publish_every": self.publish_every,
            "player_stuck_window": self.player_stuck_window,
            "train": self.train.to_dict(),
            "storage_max_bytes": self.storage.max_bytes,
            "resources": {
                "collector": self.collector_resources.options(),
                "trainer": self.trainer_resources.options(),
                "player": self.player_resources.options(),
            },
        }


__all__ = ["LiveConfig", "PLAYER_TOWN_OFFSET", "RoleResources", "default_train_config"]
