"""``gta5drive play``: drive a checkpoint live with the Player Console (and the stream video)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.flags import add_config_flags, config_from_args


def _dead_zone(text: str) -> float | tuple[float, ...]:
    values = tuple(float(v) for v in text.split(",") if v.strip())
    if not values or any(not 0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"dead zone must be one value or throttle,steering values in [0, 1), got {text!r}"
        )
    return values[0] if len(values) == 1 else values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``play`` subcommand (player settings from :class:`~agents.player.PlayerConfig`)."""
    from agents.player import PlayerConfig

    p = subparsers.add_parser(
        "play",
        help="drive a BC checkpoint live (Player Console, hot swap at unstuck, stream video)",
        description=(
            "Drive the env with the newest checkpoint of RUN at --rate predictions/s, swapping "
            "in newer checkpoints of RUN at the next unstuck."
        ),
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="run folder or checkpoint file")
    add_config_flags(p, PlayerConfig, only=("rate", "fast"))
    p.add_argument(
        "--dead-zone", type=_dead_zone, default=0.0, help="game dead zone, e.g. 0.2 or 0,0.2"
    )
    add_config_flags(p, PlayerConfig, only=("swap", "console"))
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop after N env steps (default: 1800 unless --seconds)",
    )
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    p.add_argument("--town", type=int, default=None, help="town seed")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="reset seed (the town when --town is not given, car spot, weather)",
    )
    p.add_argument("--traffic", type=int, default=0, help="traffic cars")
    p.add_argument("--backend", choices=["auto", "sim", "gta5"], default="sim", help="env backend")
    p.add_argument("--video", type=Path, default=None, help="write the stream layout to this MP4")
    p.add_argument("--window", action="store_true", help="also show the stream in a window")
    p.set_defaults(func=run)


def checkpoint_needs_cinematic(path: Path) -> bool:
    """Whether the (newest) checkpoint at ``path`` is a dual-backbone model, which sees the
    chase camera besides the hood (read from its header only)."""
    from imitation.checkpoint import read_meta
    from imitation.models import ModelConfig

    config = ModelConfig.from_dict(read_meta(path)["model_config"])
    return config.cinematic_size is not None


def run(args: argparse.Namespace) -> int:
    """Play and print a summary line."""
    import gymnasium as gym

    import gta_env  # noqa: F401
    from agents.player import Player, PlayerConfig
    from agents.stream import StreamWriter
    from imitation.checkpoint import CheckpointError

    steps = args.steps
    if steps is None and args.seconds is None:
        steps = 1800
    try:
        needs_cinematic = checkpoint_needs_cinematic(args.checkpoint)
    except CheckpointError as exc:
        raise SystemExit(f"gta5drive play: {exc}") from None
    env = gym.make(
        "GTA5Drive-v0",
        backend=args.backend,
        # The stream shows the chase camera; a dual-backbone model sees it as its second input.
        cinematic=needs_cinematic or args.video is not None or args.window,
        town_seed=args.town,
        traffic=args.traffic,
        expert_in_info=False,  # the player drives with its model; the expert is not needed
        max_episode_steps=10**9,
    )
    stream = StreamWriter(args.video, window=args.window) if args.video or args.window else None
    try:
        player = Player(
            env=env,
            checkpoint=args.checkpoint,
            config=config_from_args(args, PlayerConfig, dead_zone=args.dead_zone),
            stream=stream,
        )
        stats = player.run(steps=steps, seconds=args.seconds, seed=args.seed)
    finally:
        if stream is not None:
            stream.close()
        env.close()
    print(
        f"{stats.steps} steps, {stats.predictions} predictions in {stats.wall_s:.1f} s "
        f"({stats.pps:.1f} PPS), {stats.distance_m:.0f} m, {stats.collisions} collisions, "
        f"{stats.unstucks} unstucks, {stats.swaps} model swaps"
    )
    if stream is not None and args.video:
        print(f"video: {args.video}")
    return 0
