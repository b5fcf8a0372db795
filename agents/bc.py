"""The behaviour-cloning agent: a trained checkpoint that drives from raw env observations."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from imitation.policy import BCPolicy
from wrappers.frame_stack import stack_channels
from wrappers.history import HISTORY_KEY, PREV_ACTION_KEY, history_row


class BCAgent:
    """Drives with a :class:`~imitation.policy.BCPolicy`, applying its preprocessing itself.

    The policy was trained on observations passed through its
    :class:`~wrappers.preprocessing.Preprocessing` (resize, greyscale, frame stack, history,
    previous action). Wrapping the env would tie the env to one model, which the player cannot
    afford (it swaps models mid-run), so the agent keeps that state itself: it resizes and
    greyscales with the same functions the wrappers use, stacks camera frames oldest first
    (repeating the first frame after :meth:`reset`), and keeps the history rows and previous
    action of the actions it returned. Feed it raw observations of an unwrapped env.

    Args:
        policy: the loaded policy.
        name: display name (default ``bc:<backbone>``).
    """

    def __init__(self, policy: BCPolicy, *, name: str | None = None) -> None:
        self.policy = policy
        self.pre = policy.preprocessing
        self.name = name or f"bc:{policy.name}"
        self._frames: dict[str, deque[np.ndarray]] = {}
        self._history: deque[np.ndarray] = deque(maxlen=max(self.pre.history, 1))
        self._prev_action: np.ndarray | None = None
        self._prev_obs: dict[str, np.ndarray] | None = None
        self.last_inputs: dict[str, np.ndarray] | None = None
        self.last_action: np.ndarray | None = None

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
    ) -> BCAgent:
        """Load a checkpoint file, or the newest checkpoint of a run folder, in one call."""
        return cls(BCPolicy.load(path, device=device))

    @property
    def meta(self) -> dict[str, Any]:
        """Checkpoint header: ``model_name``, ``step``, ``created``, ``path``."""
        return self.policy.meta

    def reset(self) -> None:
        """Forget the frame stack, history and previous action (call after ``env.reset``)."""
        self._frames = {}
        self._history.clear()
        self._prev_action = None
        self._prev_obs = None

    def model_inputs(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model inputs for a raw observation, updating the stacked-frame state."""
        pre = self.pre
        inputs: dict[str, np.ndarray] = {
            "purpose": np.asarray(obs["purpose"], np.float32),
            "speed": np.asarray(obs["speed"], np.float32),
        }
        for key in pre.camera_keys:
            if key not in obs:
                raise KeyError(
                    f"the model needs the {key!r} camera; make the env with cinematic=True"
                )
            frame = pre.frames(np.asarray(obs[key]), key)
            stack = self._frames.get(key)
            if stack is None:
                stack = self._frames[key] = deque([frame] * pre.frame_stack, maxlen=pre.frame_stack)
            else:
                stack.append(frame)
            inputs[key] = stack_channels(stack) if pre.frame_stack > 1 else frame
        n_act = self.policy.model.config.action_size
        if pre.history:
            rows = list(self._history)
            width = n_act + 4
            pad = [np.zeros(width, np.float32)] * (pre.history - len(rows))
            inputs[HISTORY_KEY] = np.stack(pad + rows).astype(np.float32)
        if pre.prev_action:
            prev = self._prev_action
            inputs[PREV_ACTION_KEY] = (
                np.zeros(n_act, np.float32) if prev is None else prev.astype(np.float32)
            )
        return inputs

    def act(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """The policy's action for a raw observation (``info`` is not used)."""
        if self._prev_obs is not None and self._prev_action is not None and self.pre.history:
            self._history.append(
                history_row(self._prev_action, self._prev_obs["speed"], self._prev_obs["purpose"])
            )
        inputs = self.model_inputs(obs)
        action = np.clip(self.policy.predict(inputs), -1.0, 1.0).astype(np.float32)
        self.executed(action)
        self._prev_obs = {
            "speed": np.asarray(obs["speed"], np.float32),
            "purpose": np.asarray(obs["purpose"], np.float32),
        }
        self.last_inputs = inputs
        self.last_action = action
        return action

    def executed(self, action: np.ndarray) -> None:
        """Tell the agent what was actually applied (e.g. after dead-zone translation).

        History rows and the previous action record executed actions, as the wrappers do.
        """
        self._prev_action = np.asarray(action, np.float32).copy()
