"""`gta5drive drive`: drive a town with the expert or a random agent and film it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``drive`` subcommand."""
    p = subparsers.add_parser(
        "drive",
        help="drive a town with an agent and write an MP4 (chase camera + hood inset)",
        description="Drive the embedded world (or the game) with --agent for --steps steps.",
    )
    p.add_argument("--agent", choices=["expert", "random"], default="expert")
    p.add_argument("--steps", type=int, default=900, help="env steps (30 per game second)")
    p.add_argument("--seed", type=int, default=0, help="seed of the env (town and route)")
    p.add_argument("--town", type=int, default=None, help="fixed town seed")
    p.add_argument("--traffic", type=int, default=0, help="traffic cars")
    p.add_argument("--backend", choices=["auto", "sim", "gta5"], default="sim")
    p.add_argument("--out", type=Path, default=Path("runs/drive"), help="output folder")
    p.add_argument("--no-video", action="store_true", help="skip the MP4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Drive and print a one-line summary; write drive.mp4 and summary.json to --out."""
    import gymnasium as gym

    import gta_env  # noqa: F401
    from agents.drive import drive
    from agents.expert import ExpertAgent
    from agents.random_agent import RandomAgent

    if args.steps < 1:
        raise SystemExit("--steps must be >= 1")
    env = gym.make(
        "GTA5Drive-v0",
        backend=args.backend,
        cinematic=not args.no_video,
        town_seed=args.town,
        traffic=args.traffic,
    )
    agent = (
        ExpertAgent() if args.agent == "expert" else RandomAgent(env.action_space, seed=args.seed)  # type: ignore[arg-type]
    )
    video = None if args.no_video else args.out / "drive.mp4"
    try:
        summary = drive(
            env, agent, steps=args.steps, seed=args.seed, video=video, progress=not args.no_progress
        )
    finally:
        env.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2))
    print(f"{args.agent}: {summary.line()}")
    if video is not None:
        print(f"video: {video}")
    print(f"summary: {args.out / 'summary.json'}")
    return 0
