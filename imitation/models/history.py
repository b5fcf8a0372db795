"""History encoder: time-distributed dense layers and an LSTM, as in the original.

The ``(B, N, A + 4)`` history of (action, speed, purpose) rows (see
:class:`wrappers.history.HistoryObservation`) goes through the same two dense layers at every
step, then an LSTM; the last hidden state is the history feature vector.
"""

from __future__ import annotations

import torch
from torch import nn


class HistoryEncoder(nn.Module):
    """Encode a history ``(B, N, features)`` into ``(B, hidden)``.

    Args:
        features: columns per history row (action size + 4).
        dense: width of the time-distributed dense layers.
        hidden: LSTM hidden size (the output width).
        speed_column: index of the speed column, divided by ``speed_scale``.
        speed_scale: speed (m/s) that maps to 1.
    """

    scale: torch.Tensor

    def __init__(
        self,
        *,
        features: int,
        dense: int = 64,
        hidden: int = 128,
        speed_column: int = 2,
        speed_scale: float = 30.0,
    ) -> None:
        super().__init__()
        self.time_distributed = nn.Sequential(
            nn.Linear(features, dense),
            nn.ELU(inplace=True),
            nn.Linear(dense, dense),
            nn.ELU(inplace=True),
        )
        self.lstm = nn.LSTM(dense, hidden, batch_first=True)
        scale = torch.ones(features)
        scale[speed_column] = 1.0 / speed_scale
        self.register_buffer("scale", scale, persistent=False)
        self.num_features = hidden

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        x = self.time_distributed(history.float() * self.scale)  # Linear acts on the last axis
        _, (h, _) = self.lstm(x)
        return h[-1]
