"""The live collector: env + noisy expert + stream balancer, balanced sets sent to the trainer.

A :class:`~imitation.record.Recorder` drives the embedded world's autopilot with action noise
(labels stay clean) and feeds every sample to a stream balancer; the sets it completes are sent
whole to the trainer (:meth:`agents.live.trainer.TrainerWorker.push`) instead of to disk — the
trainer owns the storage. At most ``max_in_flight`` sends wait for their acknowledgement
(back-pressure: a slow trainer slows the collectors down instead of piling sets up in memory).
The trainer acknowledges a send only once its samples are committed to storage; a send it did
not acknowledge (it was killed or restarting) is sent again, up to ``SEND_ATTEMPTS`` times,
and counted as re-sent, or at last as lost: ``durable + lost == sent`` once every send is
answered, and the trainer skips samples it already stored, so none is counted twice.

Episode ``n`` of collector ``i`` of ``K`` drives town ``seed + i + K * n``: the collectors' towns
are disjoint. A collector restarted by Ray after a crash starts a fresh series of towns (its
process id enters the seed) rather than repeating the data it already sent.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from agents.live.actor import BackgroundWorker, ray_errors
from agents.live.config import LiveConfig
from agents.live.messages import CollectorStatus
from imitation.balance import BalancedSet, BinFill, make_balancer
from imitation.noise import ActionNoise
from imitation.record import Recorder
from imitation.sample import Sample

SEND_ATTEMPTS = 4
"""Tries per set before its samples count as lost."""

SendSets = Callable[[int, list[tuple[str | None, tuple[Sample, ...]]]], Any]
"""Sends one collector's sets; returns something :class:`CollectorWorker` can wait on."""


class SetRecorder(Recorder):
    """A :class:`Recorder` whose balanced sets go to an outbox instead of a writer."""

    writes_sets = False  # sets are sent to the trainer, v2's per output too

    def __init__(self, env: Any, **kwargs: Any) -> None:
        # Sets never reach a writer here: _emit below keeps them for sending.
        super().__init__(env, writer=cast(Any, None), **kwargs)
        self.outbox: list[BalancedSet[Sample]] = []

    def _emit(self, sample: Sample) -> int:
        if self.balancer is None:
            self.outbox.append(BalancedSet("none", None, (sample,), (0,)))
            return 1
        sets = self.balancer.add(sample)
        self.outbox.extend(sets)
        return sum(len(s) for s in sets)


def incarnation() -> int:
    """0 in an actor's first process, its process id after a Ray restart (or outside Ray)."""
    try:
        import ray

        if ray.is_initialized() and not ray.get_runtime_context().was_current_actor_reconstructed:
            return 0
    except Exception:  # not in an actor
        return 0
    return os.getpid()


class CollectorWorker(BackgroundWorker):
    """The collector role (a Ray actor in the live system; a plain object in benchmarks).

    Args:
        config: the live run's settings.
        index: this collector's number (0 ... K-1).
        trainer: the trainer actor's handle (its ``push`` is called through Ray), or None.
        send: sends sets instead of ``trainer`` (benchmarks; None with no trainer drops them).
        start: start recording in a background thread now.
    """

    def __init__(
        self,
        *,
        config: LiveConfig,
        index: int,
        trainer: Any = None,
        send: SendSets | None = None,
        start: bool = True,
    ) -> None:
        super().__init__(config=config, index=index, role="collector")
        self.trainer = trainer
        self.send = send
        self.incarnation = incarnation()
        self.steps = 0
        self.recorded = 0
        self.sent_samples = 0
        self.sent_sets = 0
        self.failed_sends = 0
        self.durable_samples = 0
        self.resent_samples = 0
        self.lost_samples = 0
        self.episodes = 0
        self.fill: dict[str, BinFill] = {}
        self.first_sample_at: float | None = None
        self._in_flight: collections.deque[tuple[Any, Any, int, int]] = collections.deque()
        self._start(start)

    def _loop(self) -> None:
        cfg = self.config
        env = self.make_env(stuck_window=cfg.collector_stuck_window)
        try:
            base = [cfg.seed, self.index, self.incarnation]
            balancer = (
                make_balancer(**cfg.balancer_kwargs(np.random.default_rng([*base, 1])))
                if cfg.balance is not None
                else None
            )
            recorder = SetRecorder(env, balancer=balancer)
            n = 0
            while not self._stop.is_set():
                episode = self.index + cfg.collectors * (n + 1000 * (self.incarnation % 100_000))
                town = cfg.seed + episode
                recorder.noise = (
                    ActionNoise(config=cfg.noise, rng=np.random.default_rng([*base, 2, n]))
                    if cfg.noise.active
                    else None
                )
                self.episodes += 1
                ep = recorder.record_episode(
                    town_seed=town,
                    episode_id=episode,
                    seed=int(np.random.SeedSequence([*base, 3, n]).generate_state(1)[0]),
                    max_steps=cfg.episode_steps,
                    stop=self._stop.is_set,
                    on_step=lambda recorded, written: self._on_step(recorder),
                )
                self.steps += ep.steps
                n += 1
            self._flush(recorder)
            self._drain()
        finally:
            env.close()

    def _on_step(self, recorder: SetRecorder) -> None:
        self.recorded += 1
        if self.first_sample_at is None:
            self.first_sample_at = time.time()
        if recorder.balancer is not None or len(recorder.outbox) >= self.config.send_every:
            self._flush(recorder)
        if recorder.balancer is not None and self.recorded % 30 == 0:
            self.fill = recorder.balancer.fill()

    def _flush(self, recorder: SetRecorder) -> None:
        if not recorder.outbox:
            return
        sets: list[tuple[str | None, tuple[Sample, ...]]]
        if recorder.balancer is None:  # unbalanced: one set of everything recorded
            sets = [(None, tuple(x for s in recorder.outbox for x in s.items))]
        else:
            sets = [(s.output, tuple(s.items)) for s in recorder.outbox]
        recorder.outbox.clear()
        n = sum(len(items) for _, items in sets)
        if self.send is not None:
            self._in_flight.append((self.send(self.index, sets), sets, n, 1))
        elif self.trainer is not None:
            self._in_flight.append((self.trainer.push.remote(self.index, sets), sets, n, 1))
        self.sent_samples += n
        self.sent_sets += len(sets)
        while len(self._in_flight) > self.config.max_in_flight:
            self._wait(self._in_flight.popleft())

    def _wait(self, pending: tuple[Any, Any, int, int]) -> None:
        ref, sets, n, attempt = pending
        if self.trainer is None or ref is None:
            self.durable_samples += n  # a plain ``send`` (benchmarks) has no acknowledgement
            return
        import ray

        while True:
            try:
                ray.get(ref, timeout=120)
                self.durable_samples += n
                return
            except ray_errors():  # trainer killed or restarting: not acknowledged, send again
                self.failed_sends += 1
                if attempt >= SEND_ATTEMPTS:
                    self.lost_samples += n
                    return
                time.sleep(min(10.0, 2.0 * attempt))
                attempt += 1
                self.resent_samples += n
                ref = self.trainer.push.remote(self.index, sets)

    def _drain(self) -> None:
        while self._in_flight:
            self._wait(self._in_flight.popleft())

    # ------------------------------------------------------------------------------ queries

    def stats(self) -> CollectorStatus:
        """Counters and the balancer's per-bin fill for the console."""
        return CollectorStatus(
            index=self.index,
            pid=self.pid,
            incarnation=self.incarnation,
            time=time.time(),
            started_at=self.started_at,
            first_sample_at=self.first_sample_at,
            recorded=self.recorded,
            sent_samples=self.sent_samples,
            sent_sets=self.sent_sets,
            failed_sends=self.failed_sends,
            durable_samples=self.durable_samples,
            resent_samples=self.resent_samples,
            lost_samples=self.lost_samples,
            episodes=self.episodes,
            fill=dict(self.fill),
            error=self.error,
        )

    def stop(self, timeout: float = 30.0) -> CollectorStatus:
        """Finish the current step, send what is complete, wait for acknowledgements."""
        self._join(timeout)
        return self.stats()


__all__ = ["SEND_ATTEMPTS", "CollectorWorker", "SetRecorder", "incarnation"]
