"""Training configuration: :class:`TrainConfig` and :class:`AugmentConfig` (saved in checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from imitation.buffer import BufferConfig
from imitation.models import ModelConfig

__all__ = ["AugmentConfig", "TrainConfig"]


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Label-preserving augmentation.

    Attributes:
        brightness: brightness factor drawn from ``[1 - b, 1 + b]`` per sample.
        contrast: contrast factor from ``[1 - c, 1 + c]``.
        saturation: saturation factor from ``[1 - s, 1 + s]`` (RGB only).
        flip: probability of a horizontal flip; a flipped sample has its steering (label,
            executed and previous action, history) and the purpose bearing's sine negated, so the
            label stays right. Needs an output named ``steering``.
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    flip: float = 0.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"augment.flip must be a probability, got {self.flip}")

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return any((self.brightness, self.contrast, self.saturation, self.flip))


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything a training run needs besides its data.

    Attributes:
        model: architecture (backbone name, inputs, outputs).
        steps: optimiser steps in total.
        batch_size: samples per step.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        schedule: ``"cosine"`` (linear warm-up then cosine decay to 5 %) or ``"constant"``.
        warmup_steps: linear warm-up steps.
        grad_clip: gradient-norm clip (0 = off).
        buffer: buffer capacity, start threshold, shared or per-output.
        augment: augmentation.
        augment_on: where frames are augmented: ``"loader"`` (numpy, on the loader thread),
            ``"device"`` (torch ops on the batch after the host→device copy; the loader only
            draws the factors and flips labels) or ``"auto"`` (device on CUDA, loader on CPU).
            Both apply the same draws and arithmetic.
        val_towns: town ids held out for validation (never trained on).
        val_samples: validation samples (a fixed random subset of the held-out towns).
        val_every: steps between validations (0 = only at the end).
        checkpoint_every: steps between checkpoints (0 = only at the end).
        log_every: steps between scalar logs.
        image_every: steps between image logs (hood frame and Convcam; 0 = off).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        bf16: bf16 autocast; ``None`` = on for CUDA.
        channels_last: channels-last memory format; ``None`` = on for CUDA.
        compile: ``torch.compile`` the model.
        prefetch: batches prepared ahead by the loader thread.
        seed: seed of every random choice.
        wandb: also log to Weights & Biases.
        wandb_mode: ``"offline"`` (default, no network) or ``"online"``.
        wandb_project: W&B project.
        progress: show a progress bar.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 10_000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 100
    grad_clip: float = 1.0
    buffer: BufferConfig = field(default_factory=BufferConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augment_on: Literal["auto", "loader", "device"] = "auto"
    val_towns: tuple[int, ...] = ()
    val_samples: int = 2048
    val_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50
    image_every: int = 500
    device: str = "auto"
    bf16: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    prefetch: int = 2
    seed: int = 0
    wandb: bool = False
    wandb_mode: Literal["offline", "online"] = "offline"
    wandb_project: str = "gta5drive"
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model, Mapping):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if isinstance(self.buffer, Mapping):
            object.__setattr__(self, "buffer", BufferConfig(**self.buffer))
        if isinstance(self.augment, Mapping):
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        object.__setattr__(self, "val_towns", tuple(int(t) for t in self.val_towns))
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps and batch_size must be >= 1 and lr > 0")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.batch_size > self.buffer.capacity * self.buffer.start_fill:
            raise ValueError(
                f"batch_size {self.batch_size} is larger than the buffer's start threshold "
                f"({self.buffer.start_fill:.0%} of {self.buffer.capacity}); raise the capacity"
            )
        if self.augment.flip and "steering" not in [o.name for o in self.model.outputs]:
            raise ValueError("augment.flip needs an output named 'steering' to negate")
        if self.augment_on not in ("auto", "loader", "device"):
            raise ValueError(f"augment_on must be auto, loader or device, got {self.augment_on!r}")
        if self.prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {self.prefetch}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :meth:`from_dict`)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        d["buffer"] = asdict(self.buffer)
        d["augment"] = asdict(self.augment)
        d["val_towns"] = list(self.val_towns)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training config keys {sorted(unknown)}")
        return cls(**d)
