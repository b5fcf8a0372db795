"""Minari export and load: observations and actions survive the round trip exactly."""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imitation.minari_io import export_minari, load_minari, load_minari_batch
from imitation.sample import Sample
from imitation.storage import SampleStore, SampleWriter, StorageConfig

HAS_MINARI = (
    importlib.util.find_spec("minari") is not None and importlib.util.find_spec("h5py") is not None
)


def _store(root: Path) -> SampleStore:
    rng = np.random.default_rng(0)
    with SampleWriter(root, config=StorageConfig(chunk_samples=16, fsync=False)) as w:
        # Two towns, three episodes, written interleaved and out of step order.
        for g in range(60):
            episode, town = g % 3, (g % 3) // 2
            a = rng.uniform(-1, 1, 2)
            w.append(
                Sample(
                    hood=rng.integers(0, 256, (9, 16, 3), dtype=np.uint8),
                    action=a,
                    executed_action=np.clip(a + 0.1, -1, 1),
                    speed=float(rng.uniform(0, 20)),
                    purpose=np.array([rng.uniform(0, 1), 0.6, -0.8]),
                    time=(59 - g) / 30,
                    step=59 - g,
                    episode_id=episode,
                    town_id=town,
                )
            )
    return SampleStore(root)


@pytest.mark.skipif(
    not HAS_MINARI, reason='needs the minari extra: pip install "gta5drive[minari]"'
)
def test_round_trip_preserves_observations_and_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    store = _store(tmp_path / "store")
    datasets = tmp_path / "minari"
    dataset = export_minari(
        store,
        "gta5drive/test/expert-v0",
        datasets_path=datasets,
        episodes_per_write=2,
        progress=False,
    )
    assert dataset.total_episodes == 3 and dataset.total_steps == 60
    assert (datasets / "gta5drive" / "test" / "expert-v0" / "data").is_dir()

    loaded = load_minari("gta5drive/test/expert-v0", datasets_path=datasets)
    assert loaded.observation_space["hood"].shape == (9, 16, 3)
    batch = load_minari_batch(loaded)

    original = store.read_batch(np.arange(len(store)))
    order = np.lexsort((original["step"], original["episode_id"], original["town_id"]))
    back = np.lexsort((batch["step"], batch["episode_id"], batch["town_id"]))
    for key in original:
        assert batch[key].dtype == original[key].dtype, key
        np.testing.assert_array_equal(batch[key][back], original[key][order], err_msg=key)

    with pytest.raises(FileNotFoundError, match="no local Minari dataset"):
        load_minari("gta5drive/test/missing-v0", datasets_path=datasets)


def test_missing_minari_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_minari(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "minari" or name.startswith("minari."):
            raise ImportError("No module named 'minari'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minari)
    with pytest.raises(ImportError, match=r'pip install "gta5drive\[minari\]"'):
        load_minari("x/y-v0", datasets_path=tmp_path)
