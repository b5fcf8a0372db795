"""The behaviour-cloning :class:`Trainer`: the loop, the optimiser step, validation, checkpoints.

Determinism: every random choice of step ``n`` (refill, draw, augmentation) uses a generator
seeded with ``(seed, n)``, the loader is a single producer thread that prepares batches in step
order, and checkpoints keep the buffer contents (as storage indices), the optimiser, the
scheduler and the torch RNG. Resuming from storage therefore continues exactly as if training
had not stopped (bit for bit on CPU).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imitation.buffer import STORAGE_INDEX, BufferSet, Store
from imitation.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from imitation.convcam import convcam
from imitation.models import AUX_LIGHT, DrivingModel, model_from_config, without_pretrained
from imitation.sample import LIGHT_CLASSES
from imitation.train.batches import BackgroundLoader, BatchMaker, MetaTable, Prepared
from imitation.train.callbacks import (
    Checkpointing,
    ImageLogging,
    ScalarLogging,
    StepInfo,
    TrainCallback,
    Validation,
)
from imitation.train.config import TrainConfig

__all__ = ["Trainer", "resolve_device", "train_bc", "with_overrides"]


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


def light_accuracy(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """The light head's recall per class on validation samples that have a label, and their
    mean (balanced accuracy: most frames have no light ahead, so plain accuracy flatters)."""
    out: dict[str, float] = {}
    for code, name in enumerate(LIGHT_CLASSES):
        hit = truth == code
        if hit.any():
            out[f"val/light_recall_{name}"] = float((pred[hit] == code).float().mean())
    if out:
        out["val/light_balanced_accuracy"] = sum(out.values()) / len(out)
    return out


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
        init: a checkpoint file or run folder whose model weights start this run (a warm start:
            new optimiser, schedule and step count, e.g. retraining on a data set that grew by
            a DAgger round); the model configuration must be the same.
        callbacks: more hooks into the loop, run after the built-in ones (scalar and image
            logging, validation, checkpoints; see :mod:`imitation.train.callbacks`).
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
        init: str | Path | None = None,
        callbacks: Sequence[TrainCallback] = (),
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
        buffer_config = config.buffer
        pools: np.ndarray | dict[str, np.ndarray] | None = self.train_indices
        groups = getattr(store, "output_indices", None)
        if groups is not None and self.train_indices is not None:
            # One store per output (a v2 folder): one buffer per output, filled from its own.
            buffer_config = replace(config.buffer, per_output=True, outputs=tuple(groups))
            pools = {name: np.intersect1d(idx, self.train_indices) for name, idx in groups.items()}
            empty = [name for name, idx in pools.items() if not len(idx)]
            if empty:
                raise ValueError(f"the stores of {empty} hold no training sample")
        self.buffers = BufferSet.from_config(
            buffer_config,
            outputs=[o.name for o in config.model.outputs],
            rng=np.random.default_rng(config.seed),
        )
        self.maker = BatchMaker(
            config=config,
            buffers=self.buffers,
            store=store,
            stream=iter(stream) if stream is not None else None,
            train_indices=pools,
            meta=self.meta,
        )
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._val_cache: (
            tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]] | None
        ) = None
        self._writer: Any = None
        self._wandb: Any = None
        self._last_state: dict[str, np.ndarray] | None = None
        self.validation = Validation()
        self.callbacks: list[TrainCallback] = [
            ScalarLogging(),
            ImageLogging(),
            self.validation,
            Checkpointing(),
            *callbacks,
        ]
        if init is not None and resume is not None:
            raise ValueError("give init= (weights only) or resume= (the whole state), not both")
        if init is not None:
            self.model.load_state_dict(self._checkpoint_for(init).model)
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

    def _checkpoint_for(self, path: str | Path) -> Checkpoint:
        """The checkpoint at ``path`` (a file, or a run folder's newest), for this model."""
        resolved = Path(path)
        if resolved.is_dir():
            found = latest_checkpoint(resolved)
            if found is None:
                raise FileNotFoundError(f"no checkpoint to start from in {resolved}")
            resolved = found
        ckpt = load_checkpoint(resolved)
        if (
            ckpt.model_config != without_pretrained(self.config.model)
            and ckpt.model_config != self.config.model
        ):
            raise ValueError(
                f"checkpoint {resolved} has a different model ({ckpt.model_config.backbone}, "
                f"{ckpt.model_config}); start from it with the checkpoint's configuration"
            )
        return ckpt

    def _resume(self, path: str | Path) -> None:
        ckpt = self._checkpoint_for(path)
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

    def _validation_data(
        self,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]] | None:
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
        inputs, target, labels = data
        self.model.eval()
        preds, losses, lights = [], [], []
        n = len(target)
        for start in range(0, n, self.config.batch_size):
            part = {k: v[start : start + self.config.batch_size] for k, v in inputs.items()}
            stop = start + len(part["hood"])
            light = labels["light"][start:stop] if "light" in labels else None
            with self._autocast():
                raw = self.forward(part)
                loss, _ = self.model.loss(
                    raw, target[start:stop], prev_action=part.get("prev_action"), light=light
                )
            losses.append(float(loss) * len(part["hood"]))
            preds.append(self.model.decode(raw, part.get("prev_action")).float())
            if AUX_LIGHT in raw:
                lights.append(raw[AUX_LIGHT].argmax(dim=1))
        self.model.train()
        pred = torch.cat(preds)
        out = {"val/loss": sum(losses) / n, "val/samples": float(n)}
        if lights:
            out.update(light_accuracy(torch.cat(lights), labels["light"]))
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
                raw,
                batch.target,
                prev_action=batch.inputs.get("prev_action"),
                mask=batch.mask,
                light=batch.labels.get("light"),
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

        Each step is one optimiser step; logging, validation and checkpoints are the
        :attr:`callbacks` (see :mod:`imitation.train.callbacks`).

        Returns:
            the last validation metrics (empty when there is no validation data).
        """
        end = self.config.steps if steps is None else min(self.config.steps, self.step + steps)
        if self._writer is None:
            self._open_loggers()
        loader = BackgroundLoader(
            lambda s: self.maker.make(s, self.device, augment_on_device=self.augment_on_device),
            range(self.step, end),
            self.config.prefetch,
        )
        for callback in self.callbacks:
            callback.on_train_start(self, self.step, end)
        try:
            for batch in loader:
                losses = self._step(batch)
                self.step = batch.step + 1
                self._last_state = batch.buffer_state
                info = StepInfo(self.step, end, batch, losses, loader.wait_s)
                for callback in self.callbacks:
                    callback.on_step(self, info)
        finally:
            loader.close()
            for callback in self.callbacks:
                callback.on_train_end(self)
            if self._writer is not None:
                self._writer.flush()
        return self.validation.last

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
    init: str | Path | None = None,
) -> Path:
    """Train a BC model and return the path of its final checkpoint (see :class:`Trainer`)."""
    trainer = Trainer(
        config=config, store=store, stream=stream, out_dir=out_dir, resume=resume, init=init
    )
    try:
        trainer.train()
    finally:
        trainer.close()
    return trainer.checkpoint_path(trainer.step)


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with some fields changed (model fields via ``model=...``)."""
    return replace(config, **changes)
