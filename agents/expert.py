"""The expert: the backend's own driver (embedded autopilot, or GTA5's NPC AI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class ExpertAgent:
    """Plays back ``info["expert_action"]``: what the backend's expert would do now."""

    name = "expert"

    def reset(self) -> None:
        """Stateless."""

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """The backend expert's action for the current observation."""
        if info is None or "expert_action" not in info:
            raise ValueError(
                "ExpertAgent needs info['expert_action']: pass the env's info to act(), and "
                "make the env with expert_in_info=True on a backend that has an expert"
            )
        return np.asarray(info["expert_action"], np.float32)
