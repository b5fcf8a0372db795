"""``gta5drive finetune``: RL fine-tuning of a behaviour-cloning checkpoint (PPO or SAC)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agents.flags import add_config_flags, config_from_args


def _kwargs(text: str) -> dict[str, Any]:
    """``key=value,key=value`` → dict (values parsed as JSON when they can be)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--env takes key=value pairs, got {part!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``finetune`` subcommand (settings from :class:`~agents.rl.finetune.FinetuneConfig`)."""
    from agents.rl.finetune import FinetuneConfig

    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a BC checkpoint with RL (PPO or SAC; needs the rl extra)",
        description=(
            "Start PPO or SAC from a behaviour-cloning checkpoint (the actor is the BC model), "
            "warm the critic up with the actor frozen, train on training towns, evaluate on "
            "held-out towns, and write checkpoints that `gta5drive eval` and the player load."
        ),
    )
    add_config_flags(
        p,
        FinetuneConfig,
        only=(
            "checkpoint",
            "algo",
            "steps",
            "envs",
            "out",
            "warmup_steps",
            "eval_every",
            "eval_seeds",
            "eval_protocol",
            "eval_route_m",
            "train_towns",
        ),
        required=("checkpoint",),
    )
    p.add_argument("--traffic", type=int, default=0, help="traffic cars in training towns")
    p.add_argument(
        "--env",
        type=_kwargs,
        default={},
        help="more GTA5Drive-v0 settings, e.g. penalty_collision=10,frame_skip=2",
    )
    add_config_flags(
        p,
        FinetuneConfig,
        only=(
            "learning_rate",
            "n_steps",
            "batch_size",
            "log_std_init",
            "device",
            "seed",
            "progress",
        ),
        names={"learning_rate": "lr"},
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Fine-tune and print where the outputs went."""
    from agents.rl.finetune import FinetuneConfig, finetune

    env_kwargs = dict(args.env)
    if args.traffic:
        env_kwargs.setdefault("traffic", args.traffic)
    config = config_from_args(args, FinetuneConfig, env_kwargs=env_kwargs)
    result = finetune(config)
    first, last = result.evaluations[0], result.evaluations[-1]
    key = "eval/driving_score"
    if key in first and key in last:
        print(f"driving score on held-out towns: BC {first[key]:.3f} -> BC+RL {last[key]:.3f}")
    print(f"checkpoint: {result.checkpoint}")
    print(f"evaluations: {args.out}/eval.jsonl")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
