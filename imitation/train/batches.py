"""From buffers to model inputs: storage context (:class:`MetaTable`), :class:`BatchMaker`, and
the :class:`BackgroundLoader` thread that prepares batches in step order.

Every random choice of step ``n`` (refill, draw, augmentation) uses a generator seeded with
``(seed, n)``, so a resumed run draws exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from imitation.buffer import STORAGE_INDEX, BufferSet, Store
from imitation.models.speed import scale_target
from imitation.sample import LIGHT_UNKNOWN
from imitation.train.augment import augment_batch, augment_frames, draw_augment_params, flip_labels
from imitation.train.config import TrainConfig
from wrappers.frame_stack import stack_channels
from wrappers.history import history_row
from wrappers.preprocessing import Preprocessing

__all__ = ["META_COLUMNS", "BackgroundLoader", "BatchMaker", "MetaTable", "Prepared"]

AUX_LABELS = ("light",)
"""Batch keys that only auxiliary heads' losses read (never model inputs)."""
META_COLUMNS = ("action", "executed_action", "speed", "purpose", "step", "episode_id", "town_id")


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
    labels: dict[str, torch.Tensor]
    """Targets of auxiliary heads by name (``light``), for :meth:`DrivingModel.loss`."""
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


def with_target_speed(
    action: np.ndarray, target_speed: np.ndarray | None, top_speed: float
) -> np.ndarray:
    """Labels of a target-speed model (``ModelConfig.speed_target`` = ``top_speed``): column 0,
    the pedal, replaced by the ``target_speed`` label in the head's range
    (:func:`~imitation.models.speed.scale_target`).

    Raises:
        ValueError: When samples have no ``target_speed`` (recorded where the env did not report
            it, or before it was recorded).
    """
    if target_speed is None or np.isnan(target_speed).any():
        missing = len(action) if target_speed is None else int(np.isnan(target_speed).sum())
        raise ValueError(
            f"{missing} of {len(action)} samples have no target_speed label, which a model with "
            "speed_target trains on: record them again on the embedded world (its expert reports "
            "the speed it aims at), or train a pedal model (speed_target=0)"
        )
    out = action.copy()
    out[:, 0] = scale_target(torch.from_numpy(target_speed.reshape(-1)), top_speed).numpy()
    return out


def _step_rng(seed: int, step: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, stream])


class BatchMaker:
    """Turns buffered samples into model inputs, exactly as the env wrappers would.

    Args:
        config: training configuration.
        buffers: the buffers to draw from.
        store: training storage (refills and context), or ``None`` for a stream.
        stream: iterator of balanced sets, or ``None``.
        train_indices: storage indices allowed for training (per buffer name: per-output
            buffers each filled from their own output's store).
        meta: small columns of the storage.
    """

    def __init__(
        self,
        *,
        config: TrainConfig,
        buffers: BufferSet,
        store: Store | None,
        stream: Iterator[Any] | None,
        train_indices: np.ndarray | Mapping[str, np.ndarray] | None,
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
        if cfg.speed_target:
            out["action"] = with_target_speed(
                out["action"], batch.get("target_speed"), cfg.speed_target
            )
        if cfg.light_head:
            light = batch.get("light")
            n = len(out["action"])
            out["light"] = (
                np.full(n, LIGHT_UNKNOWN, np.int64) if light is None else light.astype(np.int64)
            )
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
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """Numpy batch → model inputs, target and auxiliary labels on ``device``."""
        pin = device.type == "cuda"
        keys = [*self.pre.camera_keys, "purpose", "speed"]
        keys += ["history"] * bool(self.pre.history) + ["prev_action"] * self.pre.prev_action
        inputs = {}
        for key in keys:
            t = torch.from_numpy(np.ascontiguousarray(prepared[key]))
            inputs[key] = (t.pin_memory() if pin else t).to(device, non_blocking=pin)
        target = torch.from_numpy(prepared["action"]).to(device, non_blocking=pin)
        labels = {
            key: torch.from_numpy(prepared[key]).to(device, non_blocking=pin)
            for key in AUX_LABELS
            if key in prepared
        }
        return inputs, target, labels

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
        inputs, target, labels = self.to_tensors(prepared, device)
        mask_t = torch.from_numpy(mask).to(device) if self.buffers.per_output else None
        return Prepared(
            step=step,
            inputs=inputs,
            target=target,
            mask=mask_t,
            buffer_stats=self.buffers.stats(),
            buffer_state=snapshot,
            samples=len(target),
            labels=labels,
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
