"""Published weights: what the trainer puts in Ray's object store and players load."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from imitation.models import DrivingModel, ModelConfig, model_from_config
from imitation.policy import BCPolicy


@dataclass(frozen=True, kw_only=True)
class WeightsBundle:
    """One published version of the model.

    Plain numpy arrays and a JSON-ready config: it pickles without torch and without code
    objects, and Ray keeps it once in the object store however many players read it.

    Attributes:
        version: publication number; grows by one per ``publish_every`` steps, across trainer
            restarts (it is ``step // publish_every``).
        step: the trainer's optimiser step.
        model_config: :meth:`ModelConfig.to_dict` of the model.
        arrays: the model's ``state_dict`` as numpy arrays.
        published_at: wall-clock time of publication (``time.time()``).
        created: ISO time stamp (shown on the stream like a checkpoint's creation time).
    """

    version: int
    step: int
    model_config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)
    published_at: float
    created: str

    @classmethod
    def from_model(cls, model: DrivingModel, *, version: int, step: int) -> WeightsBundle:
        """Snapshot ``model``'s weights (copied to CPU)."""
        arrays = {k: v.detach().to("cpu").numpy().copy() for k, v in model.state_dict().items()}
        now = time.time()
        return cls(
            version=int(version),
            step=int(step),
            model_config=model.config.to_dict(),
            arrays=arrays,
            published_at=now,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
        )

    @property
    def nbytes(self) -> int:
        """Size of the weights."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def build_model(self, device: str | torch.device = "cpu") -> DrivingModel:
        """A model with these weights, in eval mode."""
        model = model_from_config(ModelConfig.from_dict(self.model_config))
        model.load_state_dict(_tensors(self.arrays))
        return model.to(device).eval()

    def policy(self, device: str | torch.device = "cpu") -> BCPolicy:
        """A :class:`BCPolicy` driving with these weights (meta names the version)."""
        model = self.build_model(device)
        meta = {
            "model_name": f"{model.config.backbone} v{self.version}",
            "step": self.step,
            "created": self.created,
            "version": self.version,
        }
        return BCPolicy(model=model, device=device, meta=meta)


def _tensors(arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}


__all__ = ["WeightsBundle"]
