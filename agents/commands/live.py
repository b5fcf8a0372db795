"""``gta5drive live``: collectors, trainer and players at once on Ray (local or a cluster)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from agents.flags import add_config_flags, config_from_args, config_kwargs, field_default


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand (settings from :class:`~agents.live.config.LiveConfig`)."""
    from agents.live.config import LiveConfig, RoleResources, default_train_config
    from imitation.buffer import BufferConfig
    from imitation.train import TrainConfig

    p = subparsers.add_parser(
        "live",
        help="collectors -> trainer -> players on Ray, weights hot-swapped at unstuck",
        description=(
            "Run K collectors (noisy expert + stream balancing), one trainer (buffers, rotating "
            "storage, continuous training, versioned weights) and M players (BC agent, new "
            "weights at the next unstuck) on a local Ray instance or a Ray cluster, with one "
            "console for the whole system. Ctrl-C stops everything cleanly. Needs the live "
            'extra: pip install "gta5drive[live]".'
        ),
    )
    p.add_argument("--address", default=None, help="join this Ray cluster instead of a local one")
    p.add_argument(
        "--allow-unauthenticated-ray",
        action="store_true",
        help="join a Ray cluster without token authentication (anyone reaching it can run code)",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="run this long (Ctrl-C stops too)")
    add_config_flags(
        p,
        LiveConfig,
        only=(
            "out",
            "collectors",
            "players",
            "seed",
            "hood_size",
            "traffic",
            "weather",
            "warmup",
            "publish_every",
            "player_stuck_window",
            "player_rate",
            "player_fast",
            "video",
        ),
        names={
            "hood_size": "hood",
            "player_stuck_window": "stuck_window",
            "player_rate": "rate",
            "player_fast": "fast",
        },
        required=("out",),
    )
    p.add_argument(
        "--noise",
        default="default",
        help="collectors' action noise: off, default, recovery or OUTPUT=P/MAG/MIN-MAX,...",
    )
    p.add_argument(
        "--balance",
        choices=["v1", "v2", "v3", "v4", "off"],
        default=field_default(LiveConfig, "balance") or "off",
        help="collectors' stream balancing (off: send every sample, the most data per minute; "
        "v2: one trainer buffer per output)",
    )
    # The trainer's settings: defaults from default_train_config, the live system's own.
    base = default_train_config()
    add_config_flags(
        p,
        TrainConfig,
        prefix="train_",
        only=("batch_size", "device"),
        defaults={"batch_size": base.batch_size, "device": base.device},
    )
    add_config_flags(
        p,
        BufferConfig,
        prefix="buffer_",
        only=("capacity", "start_fill"),
        names={"capacity": "buffer"},
        defaults={"capacity": base.buffer.capacity, "start_fill": base.buffer.start_fill},
    )
    storage_cap = field_default(LiveConfig, "storage").max_bytes
    p.add_argument(
        "--storage-gb",
        type=float,
        default=storage_cap / 2**30,
        help=f"rotating storage cap (default: {storage_cap / 2**30:g})",
    )
    for role in ("collector", "trainer", "player"):
        add_config_flags(
            p,
            RoleResources,
            prefix=f"{role}_",
            only=("num_cpus", "num_gpus") if role == "trainer" else ("num_cpus",),
            names={"num_cpus": f"{role}_cpus", "num_gpus": f"{role}_gpus"},
        )
        p.add_argument(
            f"--{role}-resource",
            action="append",
            default=[],
            metavar="NAME=AMOUNT",
            help=(
                f"a custom Ray resource every {role} asks for (repeatable), so that on a "
                "cluster it runs on the nodes started with it (ray start --resources)"
            ),
        )
    p.add_argument(
        "--dashboard", action="store_true", help="start Ray's dashboard (off by default)"
    )
    p.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        help="dashboard bind address (default loopback; 0.0.0.0 exposes it to the network)",
    )
    p.add_argument("--no-console", action="store_true", help="no live console")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the live system and print where its outputs went."""
    from agents.live.config import LiveConfig, RoleResources, default_train_config
    from agents.live.system import RayOptions, run_live
    from imitation.buffer import BufferConfig
    from imitation.noise import NoiseConfig
    from imitation.storage import StorageConfig
    from imitation.train import TrainConfig

    train = replace(
        default_train_config(args.hood_size),
        **config_kwargs(args, TrainConfig, prefix="train_"),
        buffer=config_from_args(args, BufferConfig, prefix="buffer_"),
    )
    config = config_from_args(
        args,
        LiveConfig,
        noise=NoiseConfig.parse(args.noise),
        balance=None if args.balance == "off" else args.balance,
        train=train,
        storage=StorageConfig(max_bytes=int(args.storage_gb * 2**30)),
        collector_resources=_resources(args, RoleResources, "collector"),
        trainer_resources=_resources(args, RoleResources, "trainer"),
        player_resources=_resources(args, RoleResources, "player"),
    )
    summary = run_live(
        config=config,
        seconds=args.minutes * 60,
        ray_options=RayOptions(
            address=args.address,
            dashboard=args.dashboard,
            dashboard_host=args.dashboard_host,
            allow_unauthenticated=args.allow_unauthenticated_ray,
        ),
        console=not args.no_console,
    )
    samples = summary.get("samples") or {}
    if samples:
        print(
            f"samples: {samples['sent']} sent, {samples['durable']} durable (acknowledged), "
            f"{samples['resent']} re-sent, {samples['lost']} lost, "
            f"{samples['duplicates_skipped']} duplicates skipped, {samples['stored']} in storage"
        )
    trainer = summary.get("trainer")
    if trainer is None:
        print("the trainer did not answer when stopped: no final counts")
    else:
        print(
            f"trained {trainer.step} steps, published up to v{trainer.version}, "
            f"stored {trainer.committed_samples} samples"
        )
    for p in summary.get("players", []):
        if p:
            for seg in p["segments"]:
                print(
                    f"player {p['index']} v{seg.version}: {seg.steps} steps, "
                    f"{seg.distance_m:.0f} m driven, {seg.progress_m:.0f} m along the "
                    f"route, {seg.unstucks} unstucks, {seg.collisions} collisions"
                )
    print(f"storage: {config.storage_dir}")
    print(f"checkpoints: {config.trainer_dir / 'checkpoints'}")
    print(f"log: {config.out / 'live.jsonl'}")
    return 0


def _resources(args: argparse.Namespace, cls: type, role: str) -> Any:
    """A role's ``RoleResources`` from its flags (``--ROLE-resource NAME=AMOUNT`` parsed)."""
    custom = []
    for item in getattr(args, f"{role}_resource"):
        name, eq, amount = item.partition("=")
        try:
            if not eq or not name.strip():
                raise ValueError
            custom.append((name.strip(), float(amount)))
        except ValueError:
            raise SystemExit(
                f"gta5drive live: --{role}-resource {item!r}: expected NAME=AMOUNT, e.g. collect=1"
            ) from None
    return config_from_args(args, cls, prefix=f"{role}_", resources=tuple(custom))
