"""``gta5drive train``: behaviour cloning from a demonstrations store."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np

from agents.flags import add_config_flags, config_from_args, field_default
from imitation.buffer import BufferConfig, BufferNotReady
from imitation.checkpoint import CheckpointError
from imitation.models import ModelConfig, default_outputs
from imitation.models.cnn import BUILTIN_BACKBONES
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
        only=(
            "backbone",
            "image_size",
            "cinematic_size",
            "greyscale",
            "frame_stack",
            "history",
            "speed",
            "speed_target",
            "light_head",
        ),
        names={"backbone": "model", "image_size": "size", "cinematic_size": "cinematic"},
        help={"backbone": f"backbone: {', '.join(BUILTIN_BACKBONES)} or a timm name"},
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
    p.add_argument(
        "--init",
        default=None,
        help=(
            "checkpoint file or run folder whose weights start the run (new optimiser and step "
            "count: retraining after a DAgger round); the model flags must match it"
        ),
    )
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


def _fail(message: str) -> SystemExit:
    return SystemExit(f"gta5drive train: {message}")


def fit_to_store(args: argparse.Namespace, store: Any) -> None:
    """Check the flags against the store before training; say what to pass when they cannot work.

    The default buffer (25,000 samples, drawing from 90 % full) needs 22,500 training samples:
    on a smaller store it is sized to the training samples (with a note); an explicit
    ``--buffer`` that the store cannot fill stops with one line. ``--val-towns`` that match no
    stored sample get a warning (no ``val/`` metrics would be logged).
    """
    town = np.asarray(store.column("town_id")) if len(store) else np.zeros(0, np.int64)
    val_towns = tuple(args.val_towns or ())
    held = np.isin(town, val_towns) if val_towns else np.zeros(len(town), bool)
    if val_towns and not held.any():
        towns = np.unique(town)
        print(
            f"warning: --val-towns {','.join(map(str, val_towns))} match no stored sample (the "
            f"store has towns {_spans(towns)}); no val/ metrics will be logged",
            file=sys.stderr,
        )
    n_train = int((~held).sum())
    if n_train == 0:
        raise _fail(
            f"{args.data} has no training samples"
            + (f" outside --val-towns {','.join(map(str, val_towns))}" if len(town) else "")
        )
    if n_train < args.batch_size:
        raise _fail(
            f"{args.data} has {n_train} training samples, fewer than one batch: pass "
            f"--batch-size {n_train} or fewer, or collect more"
        )
    start_fill = field_default(BufferConfig, "start_fill")
    capacity = args.buffer_capacity
    if math.ceil(start_fill * capacity - 1e-9) <= n_train:
        return
    if capacity != field_default(BufferConfig, "capacity"):
        raise _fail(
            f"--buffer {capacity} cannot fill: it draws from {start_fill:.0%} full, and {args.data} "
            f"has {n_train} training samples; pass --buffer {n_train} or fewer"
        )
    fitted = int(n_train / start_fill)  # the largest buffer that n_train samples fill
    args.buffer_capacity = fitted
    print(
        f"note: the store has {n_train} training samples, fewer than the default buffer needs; "
        f"using --buffer {fitted}",
        file=sys.stderr,
    )


def _spans(values: Any) -> str:
    values = [int(v) for v in values]
    if not values:
        return "none"
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))


def run(args: argparse.Namespace) -> int:
    """Train and print where the outputs went."""
    try:
        per_output = train_config_from_args(args).buffer.per_output
    except ValueError as exc:
        raise _fail(str(exc)) from None
    store = open_store(args.data, per_output=per_output)
    groups = getattr(store, "output_indices", None)
    if groups is not None:
        sizes = ", ".join(f"{name} {len(idx)}" for name, idx in groups.items())
        print(f"v2 folder: one buffer per output ({sizes} samples)")
    fit_to_store(args, store)
    try:
        config = train_config_from_args(args)  # with the buffer fitted to the store
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        final = train_bc(
            config=config, store=store, out_dir=args.out, resume=args.resume, init=args.init
        )
    except BufferNotReady as exc:
        raise _fail(f"{exc}; pass a smaller --buffer") from None
    except (ValueError, FileNotFoundError, CheckpointError) as exc:  # --init / --resume
        raise _fail(str(exc)) from None
    print(f"checkpoint: {final}")
    print(f"tensorboard: tensorboard --logdir {args.out}/tensorboard")
    return 0
