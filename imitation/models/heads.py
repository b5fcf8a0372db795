"""Output heads as in the original, and the three output types.

The original put one common dense layer after the backbone, then one head per output (two: accel
/brake and steering), each of three dense layers whose width is divided by 4 at every layer.

Each output has a type:

* ``regression``: one value through ``tanh`` (the original's main type); loss MSE, L1 or Huber.
* ``classification``: ``bins`` equal-width bins over [-1, 1]; cross-entropy; the prediction is
  the centre of the most likely bin.
* ``delta`` (discrete delta): classes are changes from the previous executed action
  (``deltas``); cross-entropy on the nearest change; the prediction is ``prev + delta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

OutputKind = Literal["regression", "classification", "delta"]
RegressionLoss = Literal["mse", "l1", "huber"]
DEFAULT_DELTAS = (-0.5, -0.2, -0.05, 0.0, 0.05, 0.2, 0.5)


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """One model output (one component of the action vector, in order).

    Attributes:
        name: e.g. ``"throttle_brake"`` or ``"steering"``.
        kind: ``"regression"``, ``"classification"`` or ``"delta"``.
        bins: classification bins over [-1, 1].
        deltas: changes from the previous action a delta output chooses from (must include 0).
        loss: regression loss (``"mse"``, ``"l1"`` or ``"huber"``).
        weight: weight of this output in the total loss.
        overshoot: a regression output's loss is multiplied by this where the prediction lies
            above the label (1 = symmetric). Above 1 the model errs low: for a target speed,
            slower rather than faster than the expert where it is unsure.
    """

    name: str
    kind: OutputKind = "regression"
    bins: int = 21
    deltas: tuple[float, ...] = DEFAULT_DELTAS
    loss: RegressionLoss = "mse"
    weight: float = 1.0
    overshoot: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "classification", "delta"):
            raise ValueError(
                f"output {self.name!r}: kind must be regression, classification or delta, "
                f"got {self.kind!r}"
            )
        if self.loss not in ("mse", "l1", "huber"):
            raise ValueError(
                f"output {self.name!r}: loss must be mse, l1 or huber, got {self.loss!r}"
            )
        if self.kind == "classification" and self.bins < 2:
            raise ValueError(
                f"output {self.name!r}: classification needs >= 2 bins, got {self.bins}"
            )
        object.__setattr__(self, "deltas", tuple(float(d) for d in self.deltas))
        if self.kind == "delta" and (0.0 not in self.deltas or len(self.deltas) < 2):
            raise ValueError(f"output {self.name!r}: deltas must include 0, got {self.deltas}")
        if self.weight < 0:
            raise ValueError(f"output {self.name!r}: weight must be >= 0, got {self.weight}")
        if not self.overshoot > 0:
            raise ValueError(f"output {self.name!r}: overshoot must be > 0, got {self.overshoot}")

    @property
    def size(self) -> int:
        """Width of the raw output."""
        return {"regression": 1, "classification": self.bins, "delta": len(self.deltas)}[self.kind]

    def bin_centres(self, device: torch.device | None = None) -> torch.Tensor:
        """Centres of the classification bins over [-1, 1]."""
        edges = torch.linspace(-1.0, 1.0, self.bins + 1, device=device)
        return (edges[:-1] + edges[1:]) / 2

    def target_class(self, target: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """Class index of each target value (classification and delta outputs)."""
        if self.kind == "classification":
            idx = torch.floor((target.float() + 1.0) / 2.0 * self.bins).long()
            return idx.clamp(0, self.bins - 1)
        if prev is None:
            raise ValueError(f"delta output {self.name!r} needs the previous action")
        deltas = torch.tensor(self.deltas, device=target.device)
        change = (target - prev).float()
        return (change[:, None] - deltas[None, :]).abs().argmin(dim=1)

    def decode(self, raw: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """Raw output ``(B, size)`` → action value ``(B,)`` in [-1, 1]."""
        if self.kind == "regression":
            return raw[:, 0].float()
        idx = raw.argmax(dim=1)
        if self.kind == "classification":
            return self.bin_centres(raw.device)[idx]
        if prev is None:
            raise ValueError(f"delta output {self.name!r} needs the previous action")
        deltas = torch.tensor(self.deltas, device=raw.device)
        return (prev.float() + deltas[idx]).clamp(-1.0, 1.0)

    def loss_fn(
        self, raw: torch.Tensor, target: torch.Tensor, prev: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-sample loss ``(B,)``."""
        if self.kind == "regression":
            pred, t = raw[:, 0].float(), target.float()
            if self.loss == "mse":
                per = (pred - t) ** 2
            elif self.loss == "l1":
                per = (pred - t).abs()
            else:
                per = F.smooth_l1_loss(pred, t, reduction="none", beta=0.1)
            if self.overshoot != 1.0:
                per = per * torch.where(pred > t, self.overshoot, 1.0)
            return per
        return F.cross_entropy(raw.float(), self.target_class(target, prev), reduction="none")


def head_widths(dense: int, layers: int = 3) -> list[int]:
    """Widths of a head's dense layers: ``dense / 4`` per layer (at least 8)."""
    widths, width = [], dense
    for _ in range(layers):
        width = max(8, width // 4)
        widths.append(width)
    return widths


class OutputHead(nn.Module):
    """One head: ``layers`` dense layers (width ÷ 4 each) and the output layer.

    Args:
        dense: width of the common dense layer feeding the head.
        spec: the output this head predicts.
        layers: hidden dense layers (3 in the original).
        dropout: dropout before each hidden layer.
    """

    def __init__(self, *, dense: int, spec: OutputSpec, layers: int = 3, dropout: float = 0.0):
        super().__init__()
        self.spec = spec
        mods: list[nn.Module] = []
        width = dense
        for w in head_widths(dense, layers):
            mods += [nn.Dropout(dropout), nn.Linear(width, w), nn.ELU(inplace=True)]
            width = w
        mods.append(nn.Linear(width, spec.size))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.tanh(out) if self.spec.kind == "regression" else out
