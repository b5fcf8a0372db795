"""Buffer rules: start threshold, draw without replacement, removal, eviction, refills."""

from __future__ import annotations

import numpy as np
import pytest

from imitation.buffer import BufferNotReady, BufferSet, SampleBuffer, as_batch


def make_batch(start: int, n: int) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n)
    return {
        "hood": np.broadcast_to(
            (ids % 256).astype(np.uint8)[:, None, None, None], (n, 4, 6, 3)
        ).copy(),
        "action": np.stack([ids / 1e4, -ids / 1e4], axis=1).astype(np.float32),
        "step": ids.astype(np.int64),
    }


class ListStore:
    """A minimal storage: ``len`` and ``read_batch``."""

    def __init__(self, n: int) -> None:
        self.data = make_batch(0, n)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.data["step"])

    def read_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        self.reads += len(indices)
        return {k: v[np.asarray(indices)] for k, v in self.data.items()}


def test_threshold_gates_draws() -> None:
    buf = SampleBuffer(capacity=100, start_fill=0.9, rng=np.random.default_rng(0))
    assert buf.threshold == 90
    buf.add(make_batch(0, 89))
    assert not buf.ready
    with pytest.raises(BufferNotReady, match="below its start threshold of 90"):
        buf.draw(10)
    buf.add(make_batch(89, 1))
    assert buf.ready and len(buf) == 90
    batch = buf.draw(10)
    assert len(batch["step"]) == 10 and len(buf) == 80
    assert not buf.ready  # below the threshold again until refilled


def test_draws_never_repeat_and_remove_samples() -> None:
    buf = SampleBuffer(capacity=200, start_fill=0.06, rng=np.random.default_rng(1))
    buf.add(make_batch(0, 200))
    seen: list[int] = []
    while buf.ready:
        batch = buf.draw(10)
        seen.extend(batch["step"].tolist())
        # every row stays consistent across columns after the swap-removals
        np.testing.assert_array_equal(batch["hood"][:, 0, 0, 0], batch["step"] % 256)
        np.testing.assert_allclose(batch["action"][:, 0], batch["step"] / 1e4, rtol=1e-6)
    assert len(seen) == len(set(seen)) == 200 - len(buf)
    assert len(buf) == 10 and buf.drawn == 190
    assert set(seen) | set(buf.source_indices().tolist()) != set()  # storage_index column exists


def test_full_buffer_evicts_oldest() -> None:
    buf = SampleBuffer(capacity=50, start_fill=1.0, rng=np.random.default_rng(2))
    buf.add(make_batch(0, 50))
    assert buf.add(make_batch(50, 20)) == 20
    assert len(buf) == 50 and buf.evicted == 20
    held = sorted(buf.draw(50)["step"].tolist())
    assert held == list(range(20, 70))


def test_sample_age_is_logged() -> None:
    now = [0.0]
    buf = SampleBuffer(
        capacity=10, start_fill=0.5, rng=np.random.default_rng(0), clock=lambda: now[0]
    )
    buf.add(make_batch(0, 5))
    now[0] = 3.0
    buf.add(make_batch(5, 5))
    stats = buf.stats()
    assert stats["fill"] == 1.0 and stats["age_max_s"] == 3.0 and stats["age_mean_s"] == 1.5
    assert buf.draw(10)["age_s"].tolist().count(3.0) == 5


def test_refill_from_storage_tops_up_to_capacity() -> None:
    store = ListStore(1000)
    buffers = BufferSet(capacity=100, start_fill=0.9, rng=np.random.default_rng(3))
    assert buffers.refill_from_storage(store) == {"shared": 100}
    batch, mask = buffers.draw(32)
    np.testing.assert_array_equal(batch["storage_index"], batch["step"])
    assert mask.shape == (32, 1) and len(buffers) == 68
    assert buffers.refill_from_storage(store) == {"shared": 32}
    assert store.reads == 132
    held = buffers.state()["shared"]
    assert len(np.unique(held)) == 100 and not set(held) & set(batch["step"].tolist()) - set(held)


def test_refill_from_storage_respects_index_pool() -> None:
    store = ListStore(1000)
    buffers = BufferSet(capacity=100, start_fill=0.9, rng=np.random.default_rng(4))
    pool = np.arange(0, 1000, 20)  # 50 allowed samples
    assert buffers.refill_from_storage(store, indices=pool) == {"shared": 50}
    assert set(buffers.state()["shared"].tolist()) == set(pool.tolist())
    assert not buffers.ready


def test_per_output_buffers_and_stream_refill() -> None:
    buffers = BufferSet(
        names=("throttle_brake", "steering"),
        capacity=40,
        start_fill=0.9,
        rng=np.random.default_rng(5),
    )
    sets = [("throttle_brake", make_batch(0, 15)), ("steering", make_batch(100, 15))] * 4
    added = buffers.refill_from_stream(iter(sets))
    assert added == 90  # stops once both are full; the third set of each overflowed by 5
    assert buffers.buffers["throttle_brake"].evicted == 5
    assert len(buffers.buffers["steering"]) == 40 and buffers.ready
    batch, mask = buffers.draw(9)
    assert mask.tolist().count([1.0, 0.0]) == 5 and mask.tolist().count([0.0, 1.0]) == 4
    assert all(s < 100 for s in batch["step"][:5]) and all(s >= 100 for s in batch["step"][5:])
    with pytest.raises(ValueError, match="say which output"):
        buffers.add(make_batch(0, 1))


def test_as_batch_from_sample_objects() -> None:
    class S:
        def __init__(self, i: int) -> None:
            self.hood = np.full((2, 2, 3), i, np.uint8)
            self.action = np.array([0.1 * i, 0.0], np.float32)
            self.step = i

    batch = as_batch([S(1), S(2)])
    assert batch["hood"].shape == (2, 2, 2, 3) and batch["step"].tolist() == [1, 2]


def test_storage_and_stream_samples_mix_in_one_buffer(tmp_path) -> None:
    """A live trainer warm-fills from storage (speed stored as (N, 1)), then takes samples from
    collectors (speed a float per sample): both must land in the same columns, either order."""
    from imitation.sample import Sample
    from imitation.storage import SampleStore, SampleWriter, StorageConfig

    def sample(i: int) -> Sample:
        return Sample(
            hood=np.full((4, 6, 3), i, np.uint8),
            action=np.array([0.5, -0.1 * i], np.float32),
            executed_action=np.zeros(2, np.float32),
            speed=float(i),
            purpose=np.array([0.5, 0.0, 1.0], np.float32),
            time=i / 30,
            step=i,
            episode_id=0,
            town_id=0,
        )

    with SampleWriter(tmp_path, config=StorageConfig(chunk_samples=4, fsync=False)) as writer:
        writer.extend([sample(i) for i in range(4)])
    store = SampleStore(tmp_path)
    from_storage_first = SampleBuffer(capacity=8, start_fill=0.5, rng=np.random.default_rng(0))
    from_storage_first.add(store.read_batch(np.arange(4)))
    from_storage_first.add([sample(i) for i in range(4, 8)])
    from_stream_first = SampleBuffer(capacity=8, start_fill=0.5, rng=np.random.default_rng(0))
    from_stream_first.add([sample(i) for i in range(4, 8)])
    from_stream_first.add(store.read_batch(np.arange(4)))
    for buffer in (from_storage_first, from_stream_first):
        batch = buffer.draw(8)
        assert sorted(np.ravel(batch["speed"]).tolist()) == [float(i) for i in range(8)]
