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
    p.add_argument(
        "--data",
        required=True,
        help="demonstrations storage folder, or a v2 collection folder (one store per output: "
        "one buffer per output, each filled from its own store)",
    )
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


def open_store(path: str, *, per_output: bool = False) -> Any:
    """Open a storage folder, or a v2 folder as a :class:`~imitation.balance.PerOutputStore`.

    Raises:
        SystemExit: With a clear message for a folder that holds neither, or for per-output
            buffers asked of one store (they would all be filled from the same samples).
    """
    from imitation.balance import PerOutputStore, open_samples

    try:
        store = open_samples(path)
    except ValueError as exc:
        raise SystemExit(f"--data {exc}") from None
    if per_output and not isinstance(store, PerOutputStore):
        raise SystemExit(
            f"--per-output-buffers: {path} is one store, so every buffer would be filled from "
            "the same samples; give a v2 collection folder (gta5drive collect --balance v2, or "
            "gta5drive balance --scheme v2), whose per-output stores fill one buffer each"
        )
    return store


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
    store = open_store(args.data, per_output=config.buffer.per_output)
    groups = getattr(store, "output_indices", None)
    if groups is not None:
        sizes = ", ".join(f"{name} {len(idx)}" for name, idx in groups.items())
        print(f"v2 folder: one buffer per output ({sizes} samples)")
    final = train_bc(config=config, store=store, out_dir=args.out, resume=args.resume)
    print(f"checkpoint: {final}")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
