"""The live system: collectors → trainer → players at once, on Ray.

The original's *System* (a central server, data collectors that balance and send sample sets, a
trainer with buffers and a rotating storage, players that take new weights at the next unstuck)
with Ray in place of the home-made server, so that it runs on one machine or a cluster:

* :class:`~agents.live.collector.CollectorWorker`: an env, the noisy expert and a stream
  balancer (:class:`imitation.record.Recorder`); balanced sets go to the trainer through Ray;
* :class:`~agents.live.trainer.TrainerWorker`: writes every received set to rotating storage,
  keeps the buffers, trains continuously (:class:`imitation.train.Trainer`), publishes weights
  with a version number through Ray's object store and warm-restarts from storage;
* :class:`~agents.live.player.PlayerWorker`: a BC agent driving (:class:`agents.player.Player`)
  that swaps to the newest weights at the next unstuck and reports its driving per version;
* :class:`~agents.live.system.LiveSystem`: starts (or joins) Ray, places the actors, shows the
  console and stops everything cleanly.

Ray is optional: ``pip install "gta5drive[live]"``. Nothing here imports it at module import.
"""

from __future__ import annotations

from types import ModuleType

RAY_HINT = 'the live system needs Ray: pip install "gta5drive[live]"'


def require_ray() -> ModuleType:
    """Import Ray, or fail with the install command.

    Raises:
        ImportError: When Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_HINT) from exc
    return ray


__all__ = ["RAY_HINT", "require_ray"]
