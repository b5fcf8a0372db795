"""Behaviour-cloning trainer: buffers → background batch preparation → model → checkpoints.

Read top to bottom, one training step is:

1. (loader thread) top the buffers up from storage or from the stream, draw a batch (its samples
   leave the buffer), add context from storage (previous frames for stacking, history rows,
   previous action), resize/greyscale frames exactly as the env wrappers do
   (:class:`wrappers.Preprocessing`), augment, convert to tensors;
2. (main thread) forward, loss per output (masked for per-output buffers), AdamW step, schedule;
3. every ``log_every`` steps: TensorBoard scalars ``train/…`` (and W&B when asked); every
   ``image_every``: the hood frame and its Convcam; every ``val_every``: validation ``val/…``
   on held-out towns; every ``checkpoint_every``: an atomic safetensors checkpoint.

Determinism: every random choice of step ``n`` (refill, draw, augmentation) uses a generator
seeded with ``(seed, n)``, the loader is a single producer thread that prepares batches in step
order, and checkpoints keep the buffer contents (as storage indices), the optimiser, the
scheduler and the torch RNG. Resuming from storage therefore continues exactly as if training
had not stopped (bit for bit on CPU).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from imitation.buffer import STORAGE_INDEX, BufferConfig, BufferSet, Store, as_batch
from imitation.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from imitation.convcam import convcam
from imitation.models import DrivingModel, ModelConfig, model_from_config, without_pretrained
from wrappers.frame_stack import stack_channels
from wrappers.history import history_row
from wrappers.preprocessing import Preprocessing

META_COLUMNS = ("action", "executed_action", "speed", "purpose", "step", "episode_id", "town_id")


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


# --------------------------------------------------------------------------- augmentation


AugmentParams = dict[str, np.ndarray]
"""Per-sample augmentation draws of one batch: ``brightness``, ``contrast``, ``saturation``
(float32 factors) and ``flip`` (bool), each ``(B,)``; a key is absent when that part is off."""

LUMA = (0.299, 0.587, 0.114)


def draw_augment_params(
    n: int, config: AugmentConfig, rng: np.random.Generator, *, steering: int | None
) -> AugmentParams:
    """Draw one batch's augmentation factors (the same draws, in the same order, wherever the
    augmentation is then applied: loader thread or device)."""
    params: AugmentParams = {}
    if config.brightness or config.contrast or config.saturation:
        for name in ("brightness", "contrast", "saturation"):
            amount = getattr(config, name)
            params[name] = rng.uniform(1 - amount, 1 + amount, n).astype(np.float32)
    if config.flip and steering is not None:
        params["flip"] = rng.random(n) < config.flip
    return params


def flip_labels(batch: dict[str, np.ndarray], flip: np.ndarray, steering: int) -> None:
    """Negate what a horizontal flip mirrors, in place: steering (label, executed and previous
    action, history) and the purpose bearing's sine (left ↔ right)."""
    if not flip.any():
        return
    for key in ("action", "executed_action", "prev_action"):
        if key in batch:
            batch[key][flip, steering] *= -1
    batch["purpose"][flip, 1] *= -1
    if "history" in batch:
        a = batch["history"].shape[-1] - 4
        batch["history"][flip, :, steering] *= -1
        batch["history"][flip, :, a + 2] *= -1


def augment_frames(frames: torch.Tensor, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Colour jitter and horizontal flips of a uint8 frame batch ``(B, H, W, C)`` with torch ops.

    The same arithmetic as :func:`augment_batch` (float32, rounded back to uint8), so it runs
    wherever the frames are: on the GPU after the host→device copy, the loader thread then only
    draws the factors and flips the labels. Labels are not touched here (see :func:`flip_labels`).

    Args:
        frames: uint8 ``(B, H, W, C)``; C = 3 (or 1) × stacked frames.
        params: :data:`AugmentParams` as tensors on the frames' device.

    Returns:
        a new uint8 tensor of the same shape (``frames`` itself when ``params`` is empty).
    """
    out = frames
    b, h, w, c = frames.shape
    if "brightness" in params:
        per = 3 if c % 3 == 0 else 1
        img = frames.float().view(b, h, w, c // per, per)
        bright = params["brightness"].view(b, 1, 1, 1, 1)
        contrast = params["contrast"].view(b, 1, 1, 1, 1)
        img = img * bright
        mean = img.mean(dim=(1, 2, 4), keepdim=True)
        img = (img - mean) * contrast + mean
        if per == 3:
            luma = torch.tensor(LUMA, dtype=img.dtype, device=img.device)
            grey = (img * luma).sum(dim=-1, keepdim=True)
            img = (img - grey) * params["saturation"].view(b, 1, 1, 1, 1) + grey
        out = (img + 0.5).clamp_(0, 255).to(torch.uint8).view(b, h, w, c)
    if "flip" in params:
        out = torch.where(params["flip"].view(b, 1, 1, 1), out.flip(2), out)
    return out


def augment_batch(
    batch: dict[str, np.ndarray],
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    steering: int | None,
    camera_keys: Iterable[str] = ("hood", "cinematic"),
) -> dict[str, np.ndarray]:
    """Colour jitter and label-consistent horizontal flips, in place on a prepared batch (numpy).

    Args:
        batch: prepared batch (uint8 cameras ``(B, H, W, C)``; ``action``, ``purpose``, and
            optionally ``prev_action`` and ``history``).
        config: what to apply.
        rng: generator (one per step, for determinism).
        steering: column of steering in the action vector (``None``: no flips).
        camera_keys: camera keys to augment.

    Returns:
        the same batch.
    """
    cams = [k for k in camera_keys if k in batch]
    params = draw_augment_params(len(batch["action"]), config, rng, steering=steering)
    if "brightness" in params:
        b, c, s = (params[k] for k in ("brightness", "contrast", "saturation"))
        for key in cams:
            img = batch[key].astype(np.float32)
            per = 3 if img.shape[-1] % 3 == 0 else 1
            img = img.reshape(*img.shape[:-1], -1, per)  # (B, H, W, frames, per)
            img *= b[:, None, None, None, None]
            mean = img.mean(axis=(1, 2, 4), keepdims=True)
            img = (img - mean) * c[:, None, None, None, None] + mean
            if per == 3:
                grey = img @ np.array(LUMA, np.float32)
                img = (img - grey[..., None]) * s[:, None, None, None, None] + grey[..., None]
            batch[key] = np.clip(img + 0.5, 0, 255).astype(np.uint8).reshape(batch[key].shape)
    if "flip" in params and steering is not None:
        flip = params["flip"]
        if flip.any():
            for key in cams:
                batch[key][flip] = batch[key][flip][:, :, ::-1]
            flip_labels(batch, flip, steering)
    return batch


# --------------------------------------------------------------------------- data


class MetaTable:
    """Small columns of every stored sample (actions, speed, purpose, ids), read once.

    Used to split by town, and to build history rows and previous actions without reading
    frames again. Uses the storage's ``column(key)`` (or ``read_meta()``) when it has one, else
    one chunked scan with ``read_batch``.
    """

    def __init__(self, store: Store) -> None:
        reader = getattr(store, "read_meta", None)
        column = getattr(store, "column", None)
        if callable(reader):
            cols = dict(reader())
        elif callable(column):  # SampleStore keeps its small columns in its index
            cols = {}
            for key in META_COLUMNS:
                with contextlib.suppress(KeyError, ValueError):
                    cols[key] = np.asarray(column(key))
        else:
            parts: dict[str, list[np.ndarray]] = {}
            for start in range(0, len(store), 1024):
                idx = np.arange(start, min(start + 1024, len(store)))
                batch = store.read_batch(idx)
                for key in META_COLUMNS:
                    if key in batch:
                        parts.setdefault(key, []).append(np.asarray(batch[key]))
            cols = {k: np.concatenate(v) for k, v in parts.items()}
        if "executed_action" not in cols and "action" in cols:
            cols["executed_action"] = cols["action"]
        self.cols = cols
        self.size = len(store)

    def previous(self, indices: np.ndarray, back: int) -> tuple[np.ndarray, np.ndarray]:
        """Index of the sample ``back`` steps earlier in the same episode, and whether it exists."""
        prev = indices - back
        ok = prev >= 0
        prev_c = np.where(ok, prev, 0)
        if "episode_id" in self.cols and "step" in self.cols:
            ep, step = self.cols["episode_id"], self.cols["step"]
            ok &= (ep[prev_c] == ep[indices]) & (step[prev_c] == step[indices] - back)
        return prev_c, ok

    def history(self, indices: np.ndarray, steps: int) -> np.ndarray:
        """History rows ``(B, steps, A + 4)`` oldest first, zeros before the episode start."""
        rows = history_row(self.cols["executed_action"], self.cols["speed"], self.cols["purpose"])
        out = np.zeros((len(indices), steps, rows.shape[-1]), np.float32)
        for back in range(1, steps + 1):
            prev, ok = self.previous(indices, back)
            out[ok, steps - back] = rows[prev[ok]]
        return out

    def prev_action(self, indices: np.ndarray) -> np.ndarray:
        """Previous executed action (zeros at an episode start)."""
        prev, ok = self.previous(indices, 1)
        return np.where(ok[:, None], self.cols["executed_action"][prev], 0).astype(np.float32)


@dataclass
class Prepared:
    """A batch ready for the model (made by the loader thread)."""

    step: int
    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    mask: torch.Tensor | None
    buffer_stats: dict[str, float]
    buffer_state: dict[str, np.ndarray] | None
    samples: int
    augment: dict[str, torch.Tensor] | None = None
    """Frame augmentation still to apply on the device (``augment_on="device"``)."""

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Inputs with any pending device augmentation applied to the cameras."""
        if not self.augment:
            return self.inputs
        return {
            k: augment_frames(v, self.augment) if k in ("hood", "cinematic") else v
            for k, v in self.inputs.items()
        }


def _step_rng(seed: int, step: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, stream])


class BatchMaker:
    """Turns buffered samples into model inputs, exactly as the env wrappers would.

    Args:
        config: training configuration.
        buffers: the buffers to draw from.
        store: training storage (refills and context), or ``None`` for a stream.
        stream: iterator of balanced sets, or ``None``.
        train_indices: storage indices allowed for training.
        meta: small columns of the storage.
    """

    def __init__(
        self,
        *,
        config: TrainConfig,
        buffers: BufferSet,
        store: Store | None,
        stream: Iterator[Any] | None,
        train_indices: np.ndarray | None,
        meta: MetaTable | None,
    ) -> None:
        self.config = config
        self.pre: Preprocessing = config.model.preprocessing()
        self.buffers = buffers
        self.store = store
        self.stream = stream
        self.train_indices = train_indices
        self.meta = meta
        names = [o.name for o in config.model.outputs]
        self.steering = names.index("steering") if "steering" in names else None

    def refill(self, step: int) -> None:
        """Top the buffers up (storage: to capacity; stream: until full or it runs dry)."""
        rng = _step_rng(self.config.seed, step, 0)
        self.buffers.rng = rng
        for b in self.buffers.buffers.values():
            b.rng = rng
        if self.store is not None:
            self.buffers.refill_from_storage(self.store, indices=self.train_indices)
        elif self.stream is not None:
            waited = 0.0
            while not self.buffers.ready:
                before = len(self.buffers)
                self.buffers.refill_from_stream(self.stream)
                if len(self.buffers) == before:
                    if waited > 60.0:
                        raise RuntimeError(
                            "the sample stream gave nothing for 60 s; is a collector running?"
                        )
                    time.sleep(0.05)
                    waited += 0.05
            self.buffers.refill_from_stream(self.stream)

    def context(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Frames, history and previous action of a raw batch, preprocessed like the env's."""
        pre, cfg = self.pre, self.config.model
        idx = batch.get(STORAGE_INDEX)
        from_store = idx is not None and np.all(idx >= 0) and self.meta is not None
        out: dict[str, np.ndarray] = {
            "action": batch["action"].astype(np.float32),
            "purpose": batch["purpose"].astype(np.float32).copy(),
            "speed": batch["speed"].astype(np.float32).reshape(-1, 1),
        }
        if "executed_action" in batch:
            out["executed_action"] = batch["executed_action"].astype(np.float32).copy()
        needs_context = pre.frame_stack > 1 or pre.history or pre.prev_action
        if needs_context and not from_store:
            have = {"history"} if pre.history else set()
            have |= {"prev_action"} if pre.prev_action else set()
            if pre.frame_stack > 1 or not have <= set(batch):
                raise ValueError(
                    "frame stacking, history and delta outputs need neighbouring samples: train "
                    "from storage, or send samples that already carry 'history'/'prev_action'"
                )
        for key in pre.camera_keys:
            if key not in batch:
                raise KeyError(f"the model reads camera {key!r} but the samples have no such key")
            frames = [pre.frames(batch[key], key)]
            if pre.frame_stack > 1:
                assert self.meta is not None and self.store is not None and idx is not None
                older, src = [], idx
                for back in range(1, pre.frame_stack):
                    prev, ok = self.meta.previous(idx, back)
                    # At an episode start the earliest frame repeats, as the wrapper does.
                    src = np.where(ok, prev, src)
                    read = self.store.read_batch(np.asarray(src))
                    older.append(pre.frames(np.asarray(read[key]), key))
                frames = [*older[::-1], frames[0]]
            out[key] = stack_channels(frames) if len(frames) > 1 else frames[0]
        if pre.history:
            if from_store:
                assert self.meta is not None and idx is not None
                out["history"] = self.meta.history(idx, pre.history)
            else:
                out["history"] = batch["history"].astype(np.float32).copy()
        if pre.prev_action:
            if from_store:
                assert self.meta is not None and idx is not None
                out["prev_action"] = self.meta.prev_action(idx)
            else:
                out["prev_action"] = batch["prev_action"].astype(np.float32).copy()
        if out["action"].shape[1] != cfg.action_size:
            raise ValueError(
                f"labels have {out['action'].shape[1]} components, the model has {cfg.action_size} outputs"
            )
        return out

    def to_tensors(
        self, prepared: dict[str, np.ndarray], device: torch.device
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Numpy batch → model inputs and target on ``device``."""
        pin = device.type == "cuda"
        keys = [*self.pre.camera_keys, "purpose", "speed"]
        keys += ["history"] * bool(self.pre.history) + ["prev_action"] * self.pre.prev_action
        inputs = {}
        for key in keys:
            t = torch.from_numpy(np.ascontiguousarray(prepared[key]))
            inputs[key] = (t.pin_memory() if pin else t).to(device, non_blocking=pin)
        target = torch.from_numpy(prepared["action"]).to(device, non_blocking=pin)
        return inputs, target

    def make(self, step: int, device: torch.device, *, augment_on_device: bool = False) -> Prepared:
        """Refill, draw, add context, augment, convert: the batch of ``step``.

        With ``augment_on_device`` the frames leave unaugmented and :attr:`Prepared.augment`
        carries the factors (already drawn, labels already flipped) for the device.
        """
        self.refill(step)
        raw, mask = self.buffers.draw(self.config.batch_size)
        snapshot = self.buffers.state() if self.store is not None else None
        prepared = self.context(raw)
        pending: dict[str, torch.Tensor] | None = None
        if self.config.augment.enabled:
            rng = _step_rng(self.config.seed, step, 1)
            if augment_on_device:
                params = draw_augment_params(
                    len(prepared["action"]), self.config.augment, rng, steering=self.steering
                )
                if "flip" in params and self.steering is not None:
                    flip_labels(prepared, params["flip"], self.steering)
                pending = {k: torch.from_numpy(v).to(device) for k, v in params.items()}
            else:
                augment_batch(
                    prepared,
                    self.config.augment,
                    rng,
                    steering=self.steering,
                    camera_keys=self.pre.camera_keys,
                )
        inputs, target = self.to_tensors(prepared, device)
        mask_t = torch.from_numpy(mask).to(device) if self.buffers.per_output else None
        return Prepared(
            step=step,
            inputs=inputs,
            target=target,
            mask=mask_t,
            buffer_stats=self.buffers.stats(),
            buffer_state=snapshot,
            samples=len(target),
            augment=pending,
        )


class BackgroundLoader:
    """Prepares batches in one background thread, in step order, ``prefetch`` ahead.

    Args:
        make: function step → :class:`Prepared`.
        steps: the steps to prepare, in order.
        prefetch: queue size.
    """

    _DONE = object()

    def __init__(self, make: Callable[[int], Prepared], steps: range, prefetch: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._make = make
        self._steps = steps
        self.wait_s = 0.0
        self._thread = threading.Thread(target=self._run, name="gta5drive-loader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for step in self._steps:
                if self._stop.is_set():
                    return
                item = self._make(step)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # forwarded to the consumer
            self._queue.put(exc)
            return
        self._queue.put(self._DONE)

    def __iter__(self) -> Iterator[Prepared]:
        while True:
            t0 = time.perf_counter()
            item = self._queue.get()
            self.wait_s += time.perf_counter() - t0
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (batches not yet consumed are dropped)."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- trainer


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {name!r} asked for, but CUDA is not available; use --device cpu"
        )
    return device


def _lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class Trainer:
    """Behaviour-cloning training from storage or from a stream of balanced sets.

    Args:
        config: the run's configuration.
        store: training storage (``len`` + ``read_batch``); samples of ``config.val_towns`` are
            held out for validation.
        stream: iterable of balanced sets (batch dicts or sample lists; ``(output, set)`` for
            per-output buffers) instead of a storage.
        val_store: storage to validate on (default: the held-out towns of ``store``).
        out_dir: run folder (``checkpoints/``, ``tensorboard/``, ``wandb/``).
        resume: a checkpoint file or run folder to continue from exactly.
    """

    def __init__(
        self,
        *,
        config: TrainConfig,
        store: Store | None = None,
        stream: Iterable[Any] | None = None,
        val_store: Store | None = None,
        out_dir: str | Path = "runs/bc",
        resume: str | Path | None = None,
    ) -> None:
        if (store is None) == (stream is None):
            raise ValueError("give exactly one data source: store=... or stream=...")
        self.config = config
        self.out_dir = Path(out_dir)
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        self.bf16 = cuda if config.bf16 is None else config.bf16
        self.channels_last = cuda if config.channels_last is None else config.channels_last
        self.augment_on_device = (
            cuda if config.augment_on == "auto" else config.augment_on == "device"
        )
        if cuda:
            # Frame sizes are fixed for a run: let cuDNN pick its fastest convolutions once.
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(config.seed)
        self.model: DrivingModel = model_from_config(config.model).to(self.device)
        if self.channels_last:
            self.model.set_channels_last(True)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(config))
        self.forward: Callable[..., dict[str, torch.Tensor]] = self.model
        if config.compile:
            self.forward = torch.compile(self.model)
        self.store = store
        self.meta = MetaTable(store) if store is not None else None
        self.train_indices: np.ndarray | None = None
        self.val_indices: np.ndarray | None = None
        if store is not None and self.meta is not None:
            town = self.meta.cols.get("town_id")
            all_idx = np.arange(len(store), dtype=np.int64)
            if config.val_towns:
                if town is None:
                    raise ValueError("val_towns given but the storage has no 'town_id' column")
                held = np.isin(town, config.val_towns)
                self.train_indices, self.val_indices = all_idx[~held], all_idx[held]
                if not len(self.train_indices):
                    raise ValueError(
                        f"every stored sample is in a validation town {config.val_towns}"
                    )
            else:
                self.train_indices = all_idx
        self.val_store = val_store
        self.buffers = BufferSet.from_config(
            config.buffer,
            outputs=[o.name for o in config.model.outputs],
            rng=np.random.default_rng(config.seed),
        )
        self.maker = BatchMaker(
            config=config,
            buffers=self.buffers,
            store=store,
            stream=iter(stream) if stream is not None else None,
            train_indices=self.train_indices,
            meta=self.meta,
        )
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._val_cache: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None
        self._writer: Any = None
        self._wandb: Any = None
        self._last_state: dict[str, np.ndarray] | None = None
        if resume is not None:
            self._resume(resume)

    # ----------------------------------------------------------------- checkpoints

    def checkpoint_path(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes."""
        return self.out_dir / "checkpoints" / f"step-{step:08d}.safetensors"

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint of the current state (atomically)."""
        extra: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
        if self._last_state is not None:
            for name, idx in self._last_state.items():
                extra[f"buffer.{name}"] = torch.from_numpy(np.asarray(idx, np.int64))
        return save_checkpoint(
            path or self.checkpoint_path(self.step),
            model=self.model,
            step=self.step,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            train_config=self.config.to_dict(),
            extra_tensors=extra,
        )

    def _resume(self, path: str | Path) -> None:
        resolved = Path(path)
        if resolved.is_dir():
            found = latest_checkpoint(resolved)
            if found is None:
                raise FileNotFoundError(f"no checkpoint to resume from in {resolved}")
            resolved = found
        ckpt = load_checkpoint(resolved)
        if (
            ckpt.model_config != without_pretrained(self.config.model)
            and ckpt.model_config != self.config.model
        ):
            raise ValueError(
                f"checkpoint {resolved} has a different model ({ckpt.model_config.backbone}, "
                f"{ckpt.model_config}); resume with the checkpoint's configuration"
            )
        self.model.load_state_dict(ckpt.model)
        self.optimizer.load_state_dict(ckpt.optimizer_state())
        self.scheduler.load_state_dict({**ckpt.meta["scheduler"], "lr_lambdas": [None]})
        self.step = ckpt.step
        if "rng.torch" in ckpt.extra:
            torch.set_rng_state(ckpt.extra["rng.torch"])
        state = {
            k.split(".", 1)[1]: v.numpy() for k, v in ckpt.extra.items() if k.startswith("buffer.")
        }
        if state and self.store is not None:
            self.buffers.restore(self.store, state)
            self._last_state = state

    # ----------------------------------------------------------------- logging

    def _open_loggers(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        if self.config.wandb:
            try:
                import wandb
            except ImportError as exc:
                raise ImportError(
                    'Weights & Biases logging needs wandb: pip install "gta5drive[wandb]"'
                ) from exc
            self._wandb = wandb.init(
                project=self.config.wandb_project,
                dir=str(self.out_dir),
                mode=self.config.wandb_mode,
                config=self.config.to_dict(),
                resume="allow",
            )

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Write scalars to TensorBoard (and W&B)."""
        if self._writer is not None:
            for key, value in scalars.items():
                self._writer.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(dict(scalars), step=step)

    def log_images(self, inputs: Mapping[str, torch.Tensor], step: int) -> None:
        """Log the first hood frame (newest of a stack) and its Convcam."""
        one = {k: v[:1] for k, v in inputs.items() if k in ("hood", "cinematic")}
        was_training = self.model.training
        self.model.eval()
        cam = convcam(self.model, one)
        self.model.train(was_training)
        hood = one["hood"][0].cpu().numpy()
        per = 1 if self.config.model.greyscale else 3
        hood = hood[..., -per:]
        if per == 1:
            hood = np.repeat(hood, 3, axis=-1)
        if self._writer is not None:
            self._writer.add_image("train/convcam", cam, step, dataformats="HWC")
            self._writer.add_image("train/hood", hood, step, dataformats="HWC")
        if self._wandb is not None:
            import wandb

            self._wandb.log(
                {"train/convcam": wandb.Image(cam), "train/hood": wandb.Image(hood)}, step=step
            )

    # ----------------------------------------------------------------- validation

    def _validation_data(self) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
        if self._val_cache is not None:
            return self._val_cache
        store, pool = self.val_store, None
        if store is None:
            store, pool = self.store, self.val_indices
            if pool is None or not len(pool):
                return None
        assert store is not None
        meta = self.meta if store is self.store else MetaTable(store)
        if pool is None:
            pool = np.arange(len(store), dtype=np.int64)
        rng = np.random.default_rng([self.config.seed, 2**31])
        chosen = np.sort(
            rng.choice(pool, size=min(len(pool), self.config.val_samples), replace=False)
        )
        batch = dict(store.read_batch(chosen))
        batch[STORAGE_INDEX] = chosen
        maker = BatchMaker(
            config=self.config,
            buffers=self.buffers,
            store=store,
            stream=None,
            train_indices=None,
            meta=meta,
        )
        self._val_cache = maker.to_tensors(maker.context(batch), self.device)
        return self._val_cache

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss, mean absolute and squared error per output on held-out data.

        Also reports ``val/<output>_mse_mean_baseline``: the squared error of always predicting
        the mean label, which a useful model must beat.
        """
        data = self._validation_data()
        if data is None:
            return {}
        inputs, target = data
        self.model.eval()
        preds, losses = [], []
        n = len(target)
        for start in range(0, n, self.config.batch_size):
            part = {k: v[start : start + self.config.batch_size] for k, v in inputs.items()}
            with self._autocast():
                raw = self.forward(part)
                loss, _ = self.model.loss(
                    raw,
                    target[start : start + len(part["hood"])],
                    prev_action=part.get("prev_action"),
                )
            losses.append(float(loss) * len(part["hood"]))
            preds.append(self.model.decode(raw, part.get("prev_action")).float())
        self.model.train()
        pred = torch.cat(preds)
        out = {"val/loss": sum(losses) / n, "val/samples": float(n)}
        for i, o in enumerate(self.config.model.outputs):
            err = pred[:, i] - target[:, i]
            out[f"val/{o.name}_mae"] = float(err.abs().mean())
            out[f"val/{o.name}_mse"] = float((err**2).mean())
            out[f"val/{o.name}_mse_mean_baseline"] = float(target[:, i].var(unbiased=False))
        return out

    # ----------------------------------------------------------------- training

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: Prepared) -> dict[str, float]:
        """One optimiser step on a prepared batch."""
        return {k: float(v) for k, v in self._step(batch).items()}

    def _step(self, batch: Prepared) -> dict[str, torch.Tensor]:
        """One optimiser step; the losses stay on the device (reading them would make the host
        wait for the GPU every step, instead of queueing the next step while this one runs)."""
        self.model.train()
        with self._autocast():
            raw = self.forward(batch.model_inputs())
            loss, parts = self.model.loss(
                raw, batch.target, prev_action=batch.inputs.get("prev_action"), mask=batch.mask
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {
            "train/loss": loss.detach(),
            **{f"train/loss_{k}": v.detach() for k, v in parts.items()},
        }

    def train(self, steps: int | None = None) -> dict[str, float]:
        """Train until ``config.steps`` (or ``steps`` more), validating and checkpointing.

        Returns:
            the last validation metrics (empty when there is no validation data).
        """
        from tqdm.auto import tqdm

        end = self.config.steps if steps is None else min(self.config.steps, self.step + steps)
        if self._writer is None:
            self._open_loggers()
        cfg = self.config
        loader = BackgroundLoader(
            lambda s: self.maker.make(s, self.device, augment_on_device=self.augment_on_device),
            range(self.step, end),
            cfg.prefetch,
        )
        bar = tqdm(
            total=end, initial=self.step, disable=not cfg.progress, desc="train", unit="step"
        )
        val: dict[str, float] = {}
        t_last, samples = time.perf_counter(), 0
        try:
            for batch in loader:
                step_losses = self._step(batch)
                self.step = batch.step + 1
                self._last_state = batch.buffer_state
                samples += batch.samples
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == end:
                    metrics = {k: float(v) for k, v in step_losses.items()}
                    now = time.perf_counter()
                    sps = samples / max(now - t_last, 1e-9)
                    t_last, samples = now, 0
                    fill = min(v for k, v in batch.buffer_stats.items() if k.endswith("/fill"))
                    scalars = {
                        **metrics,
                        "train/samples_per_s": sps,
                        "train/lr": float(self.scheduler.get_last_lr()[0]),
                        "train/loader_wait_s": loader.wait_s,
                        **{f"train/{k}": v for k, v in batch.buffer_stats.items()},
                    }
                    self.log_scalars(scalars, self.step)
                    self.history.append({"step": float(self.step), **scalars})
                    bar.set_postfix(
                        loss=f"{metrics['train/loss']:.4f}", sps=f"{sps:.0f}", fill=f"{fill:.0%}"
                    )
                if cfg.image_every and self.step % cfg.image_every == 0:
                    self.log_images(batch.model_inputs(), self.step)
                if (cfg.val_every and self.step % cfg.val_every == 0) or self.step == end:
                    val = self.validate()
                    if val:
                        self.log_scalars(val, self.step)
                        self.history.append({"step": float(self.step), **val})
                if (
                    cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
                ) or self.step == end:
                    self.save()
        finally:
            loader.close()
            bar.close()
            if self._writer is not None:
                self._writer.flush()
        return val

    def close(self) -> None:
        """Flush and close the loggers."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def train_bc(
    *,
    config: TrainConfig,
    store: Store | None = None,
    stream: Iterable[Any] | None = None,
    out_dir: str | Path = "runs/bc",
    resume: str | Path | None = None,
) -> Path:
    """Train a BC model and return the path of its final checkpoint."""
    trainer = Trainer(config=config, store=store, stream=stream, out_dir=out_dir, resume=resume)
    try:
        trainer.train()
    finally:
        trainer.close()
    return trainer.checkpoint_path(trainer.step)


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with some fields changed (model fields via ``model=...``)."""
    return replace(config, **changes)


__all__ = [
    "AugmentConfig",
    "BackgroundLoader",
    "BatchMaker",
    "MetaTable",
    "TrainConfig",
    "Trainer",
    "augment_batch",
    "augment_frames",
    "draw_augment_params",
    "flip_labels",
    "as_batch",
    "train_bc",
    "with_overrides",
]
