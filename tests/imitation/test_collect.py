"""Collection with worker processes: disjoint towns, verified stores, kill -9, reruns append."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main as cli
from imitation.collect import CollectConfig, collect
from imitation.storage import SampleStore, StorageConfig

CHUNK = 32


def config(out: Path, samples: int, **kw) -> CollectConfig:
    kw.setdefault("workers", 2)
    kw.setdefault("traffic", 2)
    return CollectConfig(
        out=out,
        samples=samples,
        hood_size=(36, 64),
        storage=StorageConfig(chunk_samples=CHUNK, fsync=False),
        **kw,
    )


def towns_by_writer(store: SampleStore) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for chunk in store.chunks:
        out.setdefault(chunk.writer_id, set()).update(chunk.arrays["town_id"].tolist())
    return out


def test_two_workers_disjoint_towns_and_rerun_appends(tmp_path: Path, capsys) -> None:
    result = collect(config(tmp_path, 300, seed=40), progress=False)
    assert result.ok, result.workers
    assert result.added == 300 and result.samples_before == 0
    store = SampleStore(tmp_path)
    report = store.verify()
    assert report.ok and report.samples == 300 and not report.temp_files
    by_writer = towns_by_writer(store)
    assert len(by_writer) == 2
    first, second = by_writer.values()
    assert first and second and not first & second
    assert set(store.column("town_id").tolist()) == {40, 41}  # episode g drives town seed + g
    labels, executed = store.column("action"), store.column("executed_action")
    assert np.any(labels != executed)  # default noise perturbs executed actions only
    assert [w.committed for w in result.workers] == [150, 150]
    assert all(w.peak_rss > 0 for w in result.workers)
    assert "added 300 samples" in result.line()

    # A rerun through the command line appends with new writer ids and new towns.
    code = cli(
        ["collect", "--out", str(tmp_path), "--samples", "64", "--workers", "1", "--hood", "36x64"]
        + ["--traffic", "0", "--seed", "40", "--chunk", str(CHUNK), "--no-progress"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"store: {tmp_path}" in printed and "added 64 samples (364 in total)" in printed
    store.refresh()
    assert len(store) == 364 and store.verify().ok
    by_writer = towns_by_writer(store)
    assert len(by_writer) == 3
    (new,) = by_writer.keys() - {w.writer_id for w in result.workers}
    assert by_writer[new] == {42} and not by_writer[new] & (first | second)
    runs = (tmp_path / "collect.jsonl").read_text().splitlines()
    assert [json.loads(r)["first_episode"] for r in runs] == [0, 2]


def test_balanced_collection(tmp_path: Path) -> None:
    result = collect(
        config(tmp_path, 40, workers=1, balance="v3", warmup=200, traffic=0, seed=7),
        progress=False,
    )
    assert result.ok, result.workers
    store = SampleStore(tmp_path)
    assert store.verify().ok and len(store) >= 40
    assert result.workers[0].recorded >= 200  # no set before the warm-up
    steps = store.column("step")
    assert len(set(steps.tolist())) == len(steps)  # v3 uses a sample at most once


def test_bad_settings_fail_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        config(tmp_path, 10, workers=0)
    with pytest.raises(ValueError, match="balance"):
        config(tmp_path, 10, balance="v9")
    collect(config(tmp_path / "a", 8, workers=1, traffic=0), progress=False)
    with pytest.raises(ValueError, match="hood"):
        collect(CollectConfig(out=tmp_path / "a", samples=8, hood_size=(90, 160)), progress=False)


def test_kill_9_of_a_worker_loses_at_most_its_chunk_in_flight(tmp_path: Path) -> None:
    pids: list[int] = []
    started = threading.Event()

    def on_start(p: list[int]) -> None:
        pids.extend(p)
        started.set()

    box: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault(
            "result",
            collect(config(tmp_path, 800, traffic=0, seed=3), progress=False, on_start=on_start),
        )
    )
    thread.start()
    assert started.wait(60)
    victim = pids[0]
    deadline = time.monotonic() + 60
    while not any("-w0r" in p.name for p in tmp_path.glob("*.g5c")):
        assert time.monotonic() < deadline, "worker 0 committed no chunk"
        time.sleep(0.02)
    time.sleep(0.2)  # now it is somewhere inside its next chunk
    os.kill(victim, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    result = box["result"]
    w0, w1 = result.workers  # type: ignore[attr-defined]
    assert w0.exitcode == -signal.SIGKILL and not w0.ok and w1.ok
    assert "killed by signal 9" in result.line()  # type: ignore[attr-defined]

    store = SampleStore(tmp_path)
    report = store.verify()
    assert report.ok  # opens, every chunk decodes; a killed write leaves at most a temp file
    dead = [c for c in store.chunks if c.writer_id == w0.writer_id]
    assert dead and all(c.n == CHUNK for c in dead)  # committed chunks are whole
    steps = np.concatenate([c.arrays["step"] for c in dead])
    # Nothing is missing before the tail, and the tail lost is less than one chunk.
    np.testing.assert_array_equal(np.sort(steps), np.arange(len(steps)))
    assert w0.written - len(steps) < CHUNK
    assert sum(c.n for c in store.chunks if c.writer_id == w1.writer_id) == 400


def test_export_minari_command(tmp_path: Path, capsys) -> None:
    pytest.importorskip("minari")
    from imitation.sample import Sample
    from imitation.storage import SampleWriter

    with SampleWriter(tmp_path / "s", config=StorageConfig(fsync=False)) as w:
        for i in range(10):
            w.append(
                Sample(
                    hood=np.full((4, 6, 3), i, np.uint8),
                    action=np.array([0.5, -0.1]),
                    executed_action=np.array([0.5, 0.1]),
                    speed=3.0,
                    purpose=np.array([0.5, 0.0, 1.0]),
                    time=i / 30,
                    step=i,
                    episode_id=i // 5,
                    town_id=9,
                )
            )
    args = ["export-minari", str(tmp_path / "s"), "--id", "gta5drive/test/expert-v0"]
    assert cli([*args, "--datasets", str(tmp_path / "m"), "--no-progress"]) == 0
    assert "exported 10 samples in 2 episodes" in capsys.readouterr().out
