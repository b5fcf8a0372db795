"""The live trainer: storage first, then buffers, continuous training, versioned weights.

Every balanced set a collector sends (:meth:`TrainerWorker.push`) is

1. appended to the rotating storage (:class:`imitation.storage.SampleWriter`;
   ``StorageConfig.max_bytes`` caps the disk use) and **committed before the push returns**: the
   acknowledgement a collector waits for means "durable", so a ``kill -9`` of the trainer loses
   no acknowledged sample, and a collector re-sends what was not acknowledged. Samples already in
   storage (keyed by episode and step: a set committed just before the kill, then re-sent) are
   skipped and counted, never stored twice; then
2. queued in an inbox that the training loop drains into its buffers whenever they have room
   (:meth:`imitation.buffer.BufferSet.refill_from_stream`); when the trainer cannot keep up, the
   oldest waiting sets leave the inbox (they stay in storage).

An error in the training loop restarts the loop (the console says why); after
``LOOP_RESTARTS`` errors in a row the trainer process exits, so that Ray restarts the actor
(warm restart) instead of storing data nobody trains on.

The training loop is :class:`imitation.train.Trainer` in stream mode, run ``publish_every``
steps at a time; after each stretch it checkpoints (model, optimiser, scheduler, step, RNG) and
publishes a :class:`~agents.live.weights.WeightsBundle` (version ``step // publish_every``)
through ``put`` (Ray's ``ray.put`` in the actor).

Batches are drawn at random and their samples leave the buffer, so no sample is trained on
twice from one fill of the buffer.

Warm restart (the original's reason for Storage): a new trainer — after a crash, ``kill -9`` or
a rerun on the same folder — resumes the newest checkpoint (its step, optimiser and scheduler
state) and refills its buffers at once with the newest samples of the storage, so training goes
on without waiting for the collectors.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from agents.live.config import LiveConfig
from agents.live.messages import TrainerStatus
from agents.live.weights import WeightsBundle
from imitation.checkpoint import checkpoint_step, latest_checkpoint
from imitation.storage import CorruptChunkWarning, SampleStore, SampleWriter
from imitation.train import Trainer

LOOP_RESTARTS = 3
"""Training-loop errors in a row after which the trainer process exits (Ray restarts it)."""


class TrainerStopped(Exception):
    """Raised inside the training loop when the trainer is asked to stop."""


class Inbox:
    """Received sets waiting for buffer room: a bounded queue the trainer iterates as its stream.

    Iterating yields what is queued *now* and then ends (the buffers' refill returns and the
    trainer waits a little before asking again), so the same object serves as the trainer's
    stream for the whole run. After :meth:`stop` the next item raises :class:`TrainerStopped`,
    which ends the training loop promptly even while it waits for data.

    Args:
        limit: most samples held; beyond, the oldest sets are dropped (counted in ``dropped``).
        per_output: yield ``(output, samples)`` pairs (per-output buffers) instead of samples.
    """

    def __init__(self, *, limit: int, per_output: bool = False) -> None:
        self.limit = limit
        self.per_output = per_output
        self._sets: collections.deque[tuple[str | None, Sequence[Any]]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.samples = 0
        self.dropped = 0

    def put(self, output: str | None, samples: Sequence[Any]) -> None:
        """Queue one set (dropping the oldest sets over the limit)."""
        with self._lock:
            self._sets.append((output, samples))
            self.samples += len(samples)
            while self.samples > self.limit and len(self._sets) > 1:
                _, old = self._sets.popleft()
                self.samples -= len(old)
                self.dropped += len(old)

    def stop(self) -> None:
        """Make the next read raise :class:`TrainerStopped`."""
        self._stop.set()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._stop.is_set():
            raise TrainerStopped
        with self._lock:
            if not self._sets:
                raise StopIteration
            output, samples = self._sets.popleft()
            self.samples -= len(samples)
        return (output, samples) if self.per_output and output else samples

    def __len__(self) -> int:
        return self.samples


class TrainerWorker:
    """The trainer role (a Ray actor in the live system; a plain object in tests and benchmarks).

    Starting it warm-restarts from ``config.out`` when a checkpoint and storage are there, then
    trains in a background thread until :meth:`stop`.

    Args:
        config: the live run's settings.
        put: publishes a bundle and returns a handle to it (``ray.put`` in the actor; the
            identity by default).
        start: start the training thread now.
    """

    def __init__(
        self,
        *,
        config: LiveConfig,
        put: Callable[[WeightsBundle], Any] | None = None,
        start: bool = True,
    ) -> None:
        import torch

        torch.set_num_threads(config.torch_threads)
        self.config = config
        self.put = put or (lambda bundle: bundle)
        self.exit_on_failure = False  # the Ray actor sets it: a failing loop restarts the actor
        self.pid = os.getpid()
        self.started_at = time.time()
        self.inbox = Inbox(limit=config.inbox_limit, per_output=config.train.buffer.per_output)
        config.trainer_dir.mkdir(parents=True, exist_ok=True)
        resume = latest_checkpoint(config.trainer_dir)
        self.trainer = Trainer(
            config=config.train, stream=self.inbox, out_dir=config.trainer_dir, resume=resume
        )
        self.restored_step = self.trainer.step
        self.resumed_from = str(resume) if resume is not None else None
        self.warm_samples = self._warm_fill()
        self._stored_keys = self._stored_sample_keys()
        self.writer = SampleWriter(config.storage_dir, config=config.storage)
        self.duplicate_samples = 0
        self.loop_restarts = 0
        self.last_loop_error: str | None = None
        self.received_samples = 0
        self.received_sets = 0
        self.per_collector: dict[int, int] = collections.defaultdict(int)
        self.version = -1
        self.published: Any = None
        self.publish_log: list[dict[str, float]] = []
        self.error: str | None = None
        self.stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="live-trainer", daemon=True)
        if resume is not None:
            self._publish()  # players (re)starting with it need not wait for the next stretch
        if start:
            self._thread.start()

    # ------------------------------------------------------------------------------ data in

    def _warm_fill(self) -> int:
        """Fill the buffers with the newest stored samples (0 on a first start)."""
        root = self.config.storage_dir
        if not root.is_dir() or not any(root.glob("*.g5c")) or self.config.warm_limit == 0:
            return 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptChunkWarning)
            store = SampleStore(root)
        try:
            n = len(store)
            pool = np.arange(max(0, n - self.config.warm_limit), n, dtype=np.int64)
            counts = self.trainer.buffers.refill_from_storage(store, indices=pool)
        finally:
            store.close()
        return int(sum(counts.values()))

    def _stored_sample_keys(self) -> set[tuple[int, int]]:
        """``(episode_id, step)`` of every stored sample (to skip re-sent ones)."""
        root = self.config.storage_dir
        if not root.is_dir() or not any(root.glob("*.g5c")):
            return set()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptChunkWarning)
            store = SampleStore(root)
        try:
            pairs = zip(
                store.column("episode_id").tolist(), store.column("step").tolist(), strict=True
            )
            return {(int(e), int(s)) for e, s in pairs}
        finally:
            store.close()

    def push(self, collector: int, sets: Sequence[tuple[str | None, Sequence[Any]]]) -> int:
        """Receive balanced sets: store and commit them, then queue them for the buffers.

        Returning is the acknowledgement: every sample of ``sets`` is durable by then (or was
        already stored: a re-sent set).

        Args:
            collector: index of the sending collector (for the console).
            sets: ``(output, samples)`` pairs; ``output`` is None for combined sets.

        Returns:
            samples acknowledged (durable).

        Raises:
            RuntimeError: When the run is ending (the storage is closed): not acknowledged.
        """
        n = 0
        with self._lock:
            if self.stopped:
                raise RuntimeError("the trainer is stopping: set not stored")
            for output, samples in sets:
                fresh = []
                for sample in samples:
                    key = (int(sample.episode_id), int(sample.step))
                    if key in self._stored_keys:
                        self.duplicate_samples += 1
                        continue
                    self._stored_keys.add(key)
                    fresh.append(sample)
                self.writer.extend(fresh)
                if fresh:
                    self.inbox.put(output, fresh)
                n += len(samples)
                self.received_sets += 1
            self.writer.flush()  # durable before the acknowledgement
            self.received_samples += n
            self.per_collector[int(collector)] += n
        return n

    # ------------------------------------------------------------------------------ training

    def _loop(self) -> None:
        cfg = self.config
        errors_in_a_row = 0
        while not self.stopped:
            try:
                self.trainer.train(steps=cfg.publish_every)
                self._prune_checkpoints()
                self._publish()
                errors_in_a_row = 0
            except TrainerStopped:
                break
            except RuntimeError as exc:
                if "stream gave nothing" in str(exc):
                    continue  # collectors are (re)starting: keep waiting
                errors_in_a_row = self._loop_failed(errors_in_a_row)
            except Exception:
                errors_in_a_row = self._loop_failed(errors_in_a_row)

    def _loop_failed(self, errors_in_a_row: int) -> int:
        """Record a training-loop error; restart the loop, or the actor after too many."""
        text = traceback.format_exc()
        self.loop_restarts += 1
        self.last_loop_error = text.strip().splitlines()[-1]
        errors_in_a_row += 1
        print(
            f"live trainer: training loop failed ({self.last_loop_error}); "
            + (
                "restarting the loop"
                if errors_in_a_row < LOOP_RESTARTS
                else f"{LOOP_RESTARTS} failures in a row: restarting the trainer process"
            ),
            flush=True,
        )
        if errors_in_a_row >= LOOP_RESTARTS:
            self.error = text
            if self.exit_on_failure:
                with contextlib.suppress(Exception), self._lock:
                    self.writer.flush()
                os._exit(1)  # Ray restarts the actor: a warm restart from checkpoint and storage
            self.stopped = True  # outside Ray: stop storing data nobody trains on
        time.sleep(min(5.0, 0.5 * errors_in_a_row))
        return errors_in_a_row

    def _publish(self) -> None:
        bundle = WeightsBundle.from_model(
            self.trainer.model,
            version=self.trainer.step // self.config.publish_every,
            step=self.trainer.step,
        )
        handle = self.put(bundle)
        with self._lock:
            self.version = bundle.version
            self.published = handle
            self.publish_log.append(
                {"version": bundle.version, "step": bundle.step, "time": bundle.published_at}
            )

    def _prune_checkpoints(self) -> None:
        folder = self.config.trainer_dir / "checkpoints"
        found = sorted(
            (p for p in folder.glob("*.safetensors") if not p.name.startswith(".")),
            key=checkpoint_step,
        )
        for old in found[: -self.config.keep_checkpoints]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
                old.with_suffix(".json").unlink(missing_ok=True)

    # ------------------------------------------------------------------------------ queries

    def latest(self, known_version: int = -1) -> tuple[int, list[Any]] | None:
        """The newest published weights if newer than ``known_version``: ``(version, [handle])``.

        The handle is wrapped in a list so Ray passes the object reference itself (the
        caller fetches the bundle, once, when it wants it).
        """
        with self._lock:
            if self.published is None or self.version <= known_version:
                return None
            return self.version, [self.published]

    def stats(self) -> TrainerStatus:
        """Counters for the console (cheap; safe while training)."""
        t = self.trainer
        last = t.history[-1] if t.history else {}
        buffers = t.buffers
        return TrainerStatus(
            pid=self.pid,
            time=time.time(),
            started_at=self.started_at,
            step=int(t.step),
            batch_size=int(self.config.train.batch_size),
            restored_step=int(self.restored_step),
            resumed_from=self.resumed_from,
            warm_samples=int(self.warm_samples),
            loss=float(last["train/loss"]) if "train/loss" in last else None,
            buffer_fill=float(buffers.fill),
            buffer_samples=int(len(buffers)),
            buffer_ready=bool(buffers.ready),
            inbox=int(len(self.inbox)),
            inbox_dropped=int(self.inbox.dropped),
            received_samples=int(self.received_samples),
            received_sets=int(self.received_sets),
            per_collector=dict(self.per_collector),
            committed_samples=int(self.writer.committed_samples),
            duplicate_samples=int(self.duplicate_samples),
            loop_restarts=int(self.loop_restarts),
            last_loop_error=self.last_loop_error,
            version=int(self.version),
            publishes=len(self.publish_log),
            error=self.error,
        )

    def publish_history(self) -> list[dict[str, float]]:
        """``{version, step, time}`` of every publication of this incarnation."""
        with self._lock:
            return list(self.publish_log)

    def get_pid(self) -> int:
        """The process id (tests kill it)."""
        return self.pid

    # ------------------------------------------------------------------------------ stop

    def stop(self, timeout: float = 30.0) -> TrainerStatus:
        """Stop training, checkpoint, flush and close the storage; returns the final stats."""
        if not self.stopped:
            self.stopped = True
            self.inbox.stop()
            if self._thread.is_alive():
                self._thread.join(timeout)
            with self._lock:
                self.writer.close()
            if self.trainer.step > self.restored_step or self.resumed_from is None:
                self.trainer.save()
            self.trainer.close()
        return self.stats()


__all__ = ["LOOP_RESTARTS", "Inbox", "TrainerStopped", "TrainerWorker"]
