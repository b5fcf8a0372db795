"""The `Agent` interface shared by the expert, random and behaviour-cloning drivers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Agent(Protocol):
    """Something that drives: gets an observation (and the env's ``info``), returns an action.

    ``info`` is optional so that pixel-only agents work anywhere; the expert needs it because the
    backend reports its autopilot's action there (``info["expert_action"]``).
    """

    name: str

    def reset(self) -> None:
        """Forget per-episode state (call after ``env.reset``)."""

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """The action for ``obs``, in the env's action format."""
