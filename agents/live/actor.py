"""What the collector and player actors share: set-up, a background loop, errors, stopping.

Each live worker runs its job in a daemon thread so that its Ray methods (``stats``,
``stop``...) answer while it works; an exception that ends the job is kept as ``error`` (a
traceback the console shows) instead of killing the actor.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import warnings
from typing import Any

from agents.live.config import LiveConfig

__all__ = ["BackgroundWorker", "ray_errors"]


def ray_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "that actor is restarting, gone or slow", not a bug here.

    Callers that ask another actor something catch exactly these (and show the actor as
    unreachable); any other exception is a bug and propagates.
    """
    try:
        from ray.exceptions import RayError
    except ImportError:  # pragma: no cover - Ray is an extra; without it no actor answers
        return (TimeoutError,)
    return (RayError, TimeoutError)


class BackgroundWorker:
    """Base of :class:`~agents.live.collector.CollectorWorker` and
    :class:`~agents.live.player.PlayerWorker`.

    Subclasses set their own state, then call :meth:`_start` (when asked to start) at the end
    of their ``__init__``, and implement :meth:`_loop`, which should return soon after
    ``self._stop`` is set.

    Args:
        config: the live run's settings (``torch_threads`` is applied here).
        index: the worker's number within its role.
        role: ``"collector"`` or ``"player"`` (names the thread).
    """

    def __init__(self, *, config: LiveConfig, index: int, role: str) -> None:
        import torch

        torch.set_num_threads(config.torch_threads)
        self.config = config
        self.index = index
        self.pid = os.getpid()
        self.started_at = time.time()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-{role}", daemon=True)

    def _start(self, start: bool) -> None:
        if start:
            self._thread.start()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.error = traceback.format_exc()

    def _loop(self) -> None:
        raise NotImplementedError

    def make_env(self, **kwargs: Any) -> Any:
        """A ``GTA5Drive-v0`` env with the run's settings and ``kwargs``."""
        import gymnasium as gym

        import gta_env  # noqa: F401  (registers GTA5Drive-v0)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return gym.make("GTA5Drive-v0", **kwargs, **self.config.env_kwargs())

    def get_pid(self) -> int:
        """The process id (tests kill it)."""
        return self.pid

    def _join(self, timeout: float) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
