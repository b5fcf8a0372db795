"""The behaviour-cloning policy: a checkpoint that acts from observations.

``BCPolicy.load(path)`` rebuilds the model from a checkpoint (safetensors + JSON, no pickle) with
its :class:`~wrappers.Preprocessing`. :meth:`BCPolicy.wrap_env` wraps an environment with exactly
the wrappers the model was trained for (resize, greyscale, frame stack, history, previous
action), so :meth:`BCPolicy.predict` receives the same inputs the trainer built from storage.
Predictions are deterministic (eval mode, arg-max for class outputs) and batchable.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from imitation.checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_newest_good
from imitation.models import DrivingModel, as_model_inputs
from wrappers.preprocessing import Preprocessing


class BCPolicy:
    """Acts with a trained driving model.

    Args:
        model: the model (put in eval mode).
        preprocessing: observation preprocessing it was trained with.
        device: where to run.
        meta: checkpoint header (model name, step, creation time), if loaded from one.
        trace: run the model as a TorchScript trace (one per input shape, made on first use; the
            same numbers without Python's per-layer overhead, ~2x faster for a batch of one on
            the CPU). Default: on the CPU. Falls back to the model itself if tracing fails.
    """

    def __init__(
        self,
        *,
        model: DrivingModel,
        preprocessing: Preprocessing | None = None,
        device: str | torch.device = "cpu",
        meta: Mapping[str, Any] | None = None,
        trace: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessing = preprocessing or model.config.preprocessing()
        self.meta = dict(meta or {})
        self.trace = trace if trace is not None else self.device.type == "cpu"
        self._traced: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> BCPolicy:
        """Load from a checkpoint file, or the newest checkpoint of a run folder that loads.

        In a run folder, broken newer checkpoints are skipped with a ``CheckpointWarning``.

        Raises:
            CheckpointError: Saying what is wrong with the file (or that no checkpoint of the
                folder loads).
        """
        return load_newest_good(path, lambda file: cls._load_file(file, device))

    @classmethod
    def _load_file(cls, path: Path, device: str | torch.device) -> BCPolicy:
        ckpt: Checkpoint = load_checkpoint(path)
        try:
            pre = Preprocessing.from_dict(ckpt.meta["preprocessing"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path} has an invalid preprocessing ({exc})"
            ) from None
        meta = {
            k: v for k, v in ckpt.meta.items() if k in ("model_name", "step", "created", "format")
        }
        meta["path"] = str(ckpt.path)
        # The policy owns this model, so it may pick the faster memory layout: channels-last
        # convolutions run ~1.8x faster for a batch of one on the CPU too (and on CUDA).
        model = ckpt.build_model(device).set_channels_last(True)
        return cls(model=model, preprocessing=pre, device=device, meta=meta)

    @property
    def name(self) -> str:
        """Backbone name of the model."""
        return self.model.config.backbone

    def wrap_env(self, env: gym.Env) -> gym.Env:
        """Wrap ``env`` so its observations are this model's inputs."""
        return self.preprocessing.wrap(env)

    def _check(self, inputs: Mapping[str, torch.Tensor]) -> None:
        cfg = self.model.config
        want = (*cfg.image_size, self.model.in_chans)
        got = tuple(inputs["hood"].shape[1:])
        if got != want:
            raise ValueError(
                f"hood observation has shape {got}, the model expects {want}; wrap the env with "
                "policy.wrap_env(env) so observations get the model's preprocessing"
            )
        for key in ("history", "prev_action", "cinematic", "speed"):
            needed = {
                "history": cfg.history > 0,
                "prev_action": cfg.needs_prev_action,
                "cinematic": cfg.cinematic_size is not None,
                "speed": cfg.speed or cfg.speed_target > 0,
            }[key]
            if needed and key not in inputs:
                raise KeyError(
                    f"the model needs observation key {key!r}; wrap the env with policy.wrap_env(env)"
                )

    @torch.no_grad()
    def predict(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Action(s) for one observation or a batch of them.

        Args:
            obs: observation dict from the wrapped env (one, or with a leading batch axis).

        Returns:
            float32 ``(A,)`` for one observation, ``(B, A)`` for a batch, in [-1, 1].
        """
        inputs, batched = as_model_inputs(obs, device=self.device)
        self._check(inputs)
        raw = self._forward(inputs)
        decoded = self.model.decode(raw, inputs.get("prev_action"), speed=inputs.get("speed"))
        action = decoded.float().cpu().numpy()
        return action if batched else action[0]

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.trace:
            return self.model(inputs)
        key = tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(inputs.items()))
        fn = self._traced.get(key)
        if fn is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # shape checks are constant per trace
                    fn = torch.jit.trace(self.model, (inputs,), strict=False, check_trace=False)
            except Exception:  # an op tracing cannot record: run the model as it is
                fn = self.model
            self._traced[key] = fn
        return dict(fn(inputs))

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        return self.predict(obs)
