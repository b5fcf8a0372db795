"""``gta5drive finetune``: RL fine-tuning of a behaviour-cloning checkpoint (PPO or SAC)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _ints(text: str) -> tuple[int, ...]:
    if "-" in text and "," not in text:
        lo, hi = (int(v) for v in text.split("-"))
        return tuple(range(lo, hi + 1))
    return tuple(int(v) for v in text.split(",") if v.strip())


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
    """Add the ``finetune`` subcommand."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a BC checkpoint with RL (PPO or SAC; needs the rl extra)",
        description=(
            "Start PPO or SAC from a behaviour-cloning checkpoint (the actor is the BC model), "
            "warm the critic up with the actor frozen, train on training towns, evaluate on "
            "held-out towns, and write checkpoints that `gta5drive eval` and the player load."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="BC checkpoint file or run folder")
    p.add_argument("--algo", choices=["ppo", "sac"], default="ppo")
    p.add_argument("--steps", type=int, default=100_000, help="env steps, all envs together")
    p.add_argument("--envs", type=int, default=4, help="parallel envs (subprocesses when > 1)")
    p.add_argument("--out", default="runs/finetune", help="run folder")
    p.add_argument("--warmup-steps", type=int, default=None, help="critic warm-up env steps")
    p.add_argument("--eval-every", type=int, default=20_000, help="env steps between evaluations")
    p.add_argument("--eval-seeds", type=_ints, default=(1000, 1001, 1002), help="held-out towns")
    p.add_argument("--eval-minutes", type=float, default=1.0, help="game minutes per eval town")
    p.add_argument("--train-towns", type=_ints, default=tuple(range(100)), help="e.g. 0-99")
    p.add_argument("--traffic", type=int, default=0, help="traffic cars (training and eval)")
    p.add_argument(
        "--env",
        type=_kwargs,
        default={},
        help="more GTA5Drive-v0 settings, e.g. penalty_collision=10,frame_skip=2",
    )
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length per env")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--log-std-init", type=float, default=-1.6, help="initial exploration log std")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Fine-tune and print where the outputs went."""
    from agents.rl.finetune import FinetuneConfig, finetune

    env_kwargs = dict(args.env)
    if args.traffic:
        env_kwargs.setdefault("traffic", args.traffic)
    config = FinetuneConfig(
        checkpoint=args.checkpoint,
        algo=args.algo,
        steps=args.steps,
        envs=args.envs,
        out=args.out,
        env_kwargs=env_kwargs,
        train_towns=args.train_towns,
        warmup_steps=args.warmup_steps,
        eval_every=args.eval_every,
        eval_seeds=args.eval_seeds,
        eval_minutes=args.eval_minutes,
        eval_traffic=args.traffic,
        learning_rate=args.lr,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        log_std_init=args.log_std_init,
        device=args.device,
        seed=args.seed,
        progress=not args.no_progress,
    )
    result = finetune(config)
    first, last = result.evaluations[0], result.evaluations[-1]
    key = "eval/driving_score"
    if key in first and key in last:
        print(f"driving score on held-out towns: BC {first[key]:.3f} -> BC+RL {last[key]:.3f}")
    print(f"checkpoint: {result.checkpoint}")
    print(f"evaluations: {args.out}/eval.jsonl")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
