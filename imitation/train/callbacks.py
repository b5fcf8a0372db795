"""Hooks into the training loop, as Stable-Baselines3's ``BaseCallback`` does.

:meth:`Trainer.train` runs the optimiser steps and nothing else; whatever happens *every so
many steps* is a :class:`TrainCallback`. The trainer always runs its four built-in callbacks,
in this order, then any given to it:

1. :class:`ScalarLogging`: the progress bar, and every ``log_every`` steps the losses, rate,
   learning rate and buffer fill as ``train/...`` scalars (TensorBoard, W&B, ``history``);
2. :class:`ImageLogging`: every ``image_every`` steps the hood frame and its Convcam;
3. :class:`Validation`: every ``val_every`` steps and at the end, ``val/...`` metrics;
4. :class:`Checkpointing`: every ``checkpoint_every`` steps and at the end, a checkpoint.

A callback sees the trainer itself (model, optimiser, ``log_scalars``, ``save``...) and a
:class:`StepInfo` describing the step just taken.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from imitation.train.batches import Prepared

if TYPE_CHECKING:
    from imitation.train.trainer import Trainer

__all__ = [
    "Checkpointing",
    "ImageLogging",
    "ScalarLogging",
    "StepInfo",
    "TrainCallback",
    "Validation",
]


@dataclass(frozen=True)
class StepInfo:
    """The optimiser step just taken.

    Attributes:
        step: Steps done so far (the trainer's ``step`` after this one).
        end: The step this call to ``train`` stops at.
        batch: The batch trained on.
        losses: ``train/...`` losses, still on the device (read them only when logging).
        loader_wait_s: Time the loop has waited for the loader so far.
    """

    step: int
    end: int
    batch: Prepared
    losses: dict[str, torch.Tensor]
    loader_wait_s: float

    @property
    def last(self) -> bool:
        """Whether this is the last step of this call to ``train``."""
        return self.step == self.end


def every(step: int, period: int) -> bool:
    """Whether ``step`` is a multiple of ``period`` (never for a period of 0)."""
    return bool(period) and step % period == 0


class TrainCallback:
    """Base of the loop's hooks; override what you need (each does nothing by default)."""

    def on_train_start(self, trainer: Trainer, start: int, end: int) -> None:
        """Before the first step of a call to ``train`` (steps ``start`` to ``end``)."""

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        """After each optimiser step."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last step, also when an error ended the loop."""


class ScalarLogging(TrainCallback):
    """Progress bar, and ``train/...`` scalars every ``log_every`` steps and at the end."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._t_last = 0.0
        self._samples = 0

    def on_train_start(self, trainer: Trainer, start: int, end: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=end, initial=start, disable=not trainer.config.progress, desc="train", unit="step"
        )
        self._t_last, self._samples = time.perf_counter(), 0

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        self._samples += info.batch.samples
        self._bar.update(1)
        if not (every(info.step, trainer.config.log_every) or info.last):
            return
        metrics = {k: float(v) for k, v in info.losses.items()}
        now = time.perf_counter()
        sps = self._samples / max(now - self._t_last, 1e-9)
        self._t_last, self._samples = now, 0
        stats = info.batch.buffer_stats
        fill = min(v for k, v in stats.items() if k.endswith("/fill"))
        scalars = {
            **metrics,
            "train/samples_per_s": sps,
            "train/lr": float(trainer.scheduler.get_last_lr()[0]),
            "train/loader_wait_s": info.loader_wait_s,
            **{f"train/{k}": v for k, v in stats.items()},
        }
        trainer.log_scalars(scalars, info.step)
        trainer.history.append({"step": float(info.step), **scalars})
        self._bar.set_postfix(
            loss=f"{metrics['train/loss']:.4f}", sps=f"{sps:.0f}", fill=f"{fill:.0%}"
        )

    def on_train_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class ImageLogging(TrainCallback):
    """The hood frame and its Convcam every ``image_every`` steps."""

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        if every(info.step, trainer.config.image_every):
            trainer.log_images(info.batch.model_inputs(), info.step)


class Validation(TrainCallback):
    """``val/...`` metrics every ``val_every`` steps and at the end; ``last`` keeps the latest."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def on_train_start(self, trainer: Trainer, start: int, end: int) -> None:
        self.last = {}

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        if not (every(info.step, trainer.config.val_every) or info.last):
            return
        self.last = trainer.validate()
        if self.last:
            trainer.log_scalars(self.last, info.step)
            trainer.history.append({"step": float(info.step), **self.last})


class Checkpointing(TrainCallback):
    """A checkpoint every ``checkpoint_every`` steps and at the end."""

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        if every(info.step, trainer.config.checkpoint_every) or info.last:
            trainer.save()
