"""``gta5drive live``: collectors, trainer and players at once on Ray (local or a cluster)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand."""
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
    p.add_argument("--out", type=Path, required=True, help="run folder (shared by every node)")
    p.add_argument("--address", default=None, help="join this Ray cluster instead of a local one")
    p.add_argument("--collectors", type=int, default=2)
    p.add_argument("--players", type=int, default=1)
    p.add_argument("--minutes", type=float, default=10.0, help="run this long (Ctrl-C stops too)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hood", default="90x160", help="hood camera HxW")
    p.add_argument("--traffic", type=int, default=4)
    p.add_argument("--weather", default="random", help="weather preset or random (per episode)")
    p.add_argument(
        "--noise",
        default="default",
        help="collectors' action noise: off, default, recovery or OUTPUT=P/MAG/MIN-MAX,...",
    )
    p.add_argument(
        "--balance",
        choices=["v1", "v3", "v4", "off"],
        default="v3",
        help="collectors' stream balancing (off: send every sample, the most data per minute)",
    )
    p.add_argument("--warmup", type=int, default=1000, help="samples before a balancer's first set")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--buffer", type=int, default=25_000, help="buffer capacity (samples)")
    p.add_argument("--start-fill", type=float, default=0.9, help="buffer fill that starts training")
    p.add_argument("--publish-every", type=int, default=200, help="batches between weight versions")
    p.add_argument("--storage-gb", type=float, default=4.0, help="rotating storage cap")
    p.add_argument("--stuck-window", type=float, default=8.0, help="players' unstuck window (s)")
    p.add_argument("--rate", type=float, default=30.0, help="player predictions per second")
    p.add_argument("--fast", action="store_true", help="players predict as fast as they can")
    p.add_argument("--video", action="store_true", help="stream layout of player 0 to MP4")
    p.add_argument("--collector-cpus", type=float, default=1.0)
    p.add_argument("--trainer-cpus", type=float, default=1.0)
    p.add_argument("--trainer-gpus", type=float, default=0.0)
    p.add_argument("--player-cpus", type=float, default=1.0)
    p.add_argument("--device", default="auto", help="trainer device (auto, cpu, cuda)")
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

    try:
        h, w = (int(v) for v in args.hood.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--hood must look like 90x160, got {args.hood!r}") from None
    train = replace(
        default_train_config((h, w)),
        batch_size=args.batch_size,
        buffer=BufferConfig(capacity=args.buffer, start_fill=args.start_fill),
        device=args.device,
    )
    config = LiveConfig(
        out=args.out,
        collectors=args.collectors,
        players=args.players,
        seed=args.seed,
        hood_size=(h, w),
        traffic=args.traffic,
        weather=args.weather,
        noise=NoiseConfig.parse(args.noise),
        balance=None if args.balance == "off" else args.balance,
        warmup=args.warmup,
        train=train,
        publish_every=args.publish_every,
        storage=StorageConfig(max_bytes=int(args.storage_gb * 2**30)),
        player_stuck_window=args.stuck_window,
        player_rate=args.rate,
        player_fast=args.fast,
        video=args.video,
        collector_resources=RoleResources(num_cpus=args.collector_cpus),
        trainer_resources=RoleResources(num_cpus=args.trainer_cpus, num_gpus=args.trainer_gpus),
        player_resources=RoleResources(num_cpus=args.player_cpus),
    )
    summary = run_live(
        config=config,
        seconds=args.minutes * 60,
        ray_options=RayOptions(
            address=args.address, dashboard=args.dashboard, dashboard_host=args.dashboard_host
        ),
        console=not args.no_console,
    )
    trainer = summary.get("trainer") or {}
    print(
        f"trained {trainer.get('step', '?')} steps, published up to "
        f"v{trainer.get('version', '?')}, stored {trainer.get('committed_samples', '?')} samples"
    )
    for p in summary.get("players", []):
        if p:
            for seg in p["segments"]:
                print(
                    f"player {p['index']} v{seg['version']}: {seg['steps']} steps, "
                    f"{seg['distance_m']:.0f} m driven, {seg['progress_m']:.0f} m along the "
                    f"route, {seg['unstucks']} unstucks, {seg['collisions']} collisions"
                )
    print(f"storage: {config.storage_dir}")
    print(f"checkpoints: {config.trainer_dir / 'checkpoints'}")
    print(f"log: {config.out / 'live.jsonl'}")
    return 0
