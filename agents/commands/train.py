"""``gta5drive train``: behaviour cloning from a demonstrations store."""

from __future__ import annotations

import argparse
from typing import Any

from agents.flags import add_config_flags, config_from_args
from imitation.buffer import BufferConfig
from imitation.models import ModelConfig, default_outputs
from imitation.train import AugmentConfig, TrainConfig, train_bc


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand (flags, help and defaults from the config dataclasses)."""
    p = subparsers.add_parser(
        "train", help="train a behaviour-cloning model from stored demonstrations"
    )
    p.add_argument("--data", required=True, help="demonstrations storage folder")
    p.add_argument("--out", default="runs/bc", help="run folder (checkpoints, tensorboard)")
    add_config_flags(
        p,
        ModelConfig,
        prefix="model_",
        only=("backbone", "image_size", "cinematic_size", "greyscale", "frame_stack", "history"),
        names={"backbone": "model", "image_size": "size", "cinematic_size": "cinematic"},
        help={"backbone": "backbone: pilotnet, resnet_small or a timm name"},
    )
    p.add_argument(
        "--outputs",
        dest="model_outputs_text",
        default="regression,regression",
        help="kind of throttle_brake,steering: regression|classification|delta",
    )
    add_config_flags(p, ModelConfig, prefix="model_", only=("pretrained",))
    add_config_flags(
        p,
        TrainConfig,
        only=(
            "steps",
            "batch_size",
            "lr",
            "val_towns",
            "val_every",
            "checkpoint_every",
            "device",
            "bf16",
            "channels_last",
            "compile",
            "seed",
            "wandb",
        ),
    )
    add_config_flags(
        p,
        BufferConfig,
        prefix="buffer_",
        only=("capacity", "per_output"),
        names={"capacity": "buffer", "per_output": "per_output_buffers"},
    )
    add_config_flags(p, AugmentConfig, prefix="augment_", only=("flip",))
    p.add_argument("--resume", default=None, help="checkpoint file or run folder to continue from")
    p.set_defaults(func=run)
    return p


def open_store(path: str) -> Any:
    """Open a demonstrations storage folder for reading."""
    from imitation.storage import SampleStore

    return SampleStore(path)


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` the command line describes."""
    model = config_from_args(
        args,
        ModelConfig,
        prefix="model_",
        outputs=default_outputs(args.model_outputs_text.split(",")),
    )
    return config_from_args(
        args,
        TrainConfig,
        model=model,
        buffer=config_from_args(args, BufferConfig, prefix="buffer_"),
        augment=config_from_args(args, AugmentConfig, prefix="augment_"),
    )


def run(args: argparse.Namespace) -> int:
    """Train and print where the outputs went."""
    config = train_config_from_args(args)
    store = open_store(args.data)
    final = train_bc(config=config, store=store, out_dir=args.out, resume=args.resume)
    print(f"checkpoint: {final}")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
