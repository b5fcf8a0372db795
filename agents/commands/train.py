"""``gta5drive train``: behaviour cloning from a demonstrations store."""

from __future__ import annotations

import argparse
from typing import Any

from imitation.buffer import BufferConfig
from imitation.models import ModelConfig, default_outputs
from imitation.train import AugmentConfig, TrainConfig, train_bc


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"size must be HEIGHTxWIDTH, e.g. 90x160, got {text!r}"
        ) from exc
    return h, w


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train", help="train a behaviour-cloning model from stored demonstrations"
    )
    p.add_argument("--data", required=True, help="demonstrations storage folder")
    p.add_argument("--out", default="runs/bc", help="run folder (checkpoints, tensorboard)")
    p.add_argument(
        "--model", default="pilotnet", help="backbone: pilotnet, resnet_small or a timm name"
    )
    p.add_argument("--size", type=_size, default=(90, 160), help="hood input HEIGHTxWIDTH")
    p.add_argument(
        "--cinematic", type=_size, default=None, help="second camera HEIGHTxWIDTH (dual backbone)"
    )
    p.add_argument("--greyscale", action="store_true")
    p.add_argument("--frame-stack", type=int, default=1)
    p.add_argument("--history", type=int, default=0, help="history rows (the original used 60)")
    p.add_argument(
        "--outputs",
        default="regression,regression",
        help="kind of throttle_brake,steering: regression|classification|delta",
    )
    p.add_argument("--pretrained", default=None, help="local .safetensors backbone weights")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--buffer", type=int, default=25_000, help="buffer capacity")
    p.add_argument("--per-output-buffers", action="store_true")
    p.add_argument("--flip", type=float, default=0.5, help="horizontal flip probability")
    p.add_argument("--val-towns", type=_ints, default=(), help="held-out town ids, e.g. 7,8")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (offline)")
    p.add_argument("--resume", default=None, help="checkpoint file or run folder to continue from")
    p.set_defaults(func=run)
    return p


def open_store(path: str) -> Any:
    """Open a demonstrations storage folder for reading."""
    from imitation.storage import SampleStore

    return SampleStore(path)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` the command line describes."""
    model = ModelConfig(
        backbone=args.model,
        image_size=args.size,
        cinematic_size=args.cinematic,
        greyscale=args.greyscale,
        frame_stack=args.frame_stack,
        history=args.history,
        outputs=default_outputs(args.outputs.split(",")),
        pretrained=args.pretrained,
    )
    return TrainConfig(
        model=model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        buffer=BufferConfig(capacity=args.buffer, per_output=args.per_output_buffers),
        augment=AugmentConfig(flip=args.flip),
        val_towns=args.val_towns,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        bf16=args.bf16,
        channels_last=args.channels_last,
        compile=args.compile,
        seed=args.seed,
        wandb=args.wandb,
    )


def run(args: argparse.Namespace) -> int:
    """Train and print where the outputs went."""
    config = config_from_args(args)
    store = open_store(args.data)
    final = train_bc(config=config, store=store, out_dir=args.out, resume=args.resume)
    print(f"checkpoint: {final}")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
