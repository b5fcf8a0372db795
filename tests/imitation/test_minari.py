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
                    hood=rng.integers(0, 256, (18, 32, 3), dtype=np.uint8),
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
    assert loaded.observation_space["hood"].shape == (18, 32, 3)
    batch = load_minari_batch(loaded)

    original = store.read_batch(np.arange(len(store)))
    order = np.lexsort((original["step"], original["episode_id"], original["town_id"]))
    back = np.lexsort((batch["step"], batch["episode_id"], batch["town_id"]))
    for key in original:
        assert batch[key].dtype == original[key].dtype, key
        np.testing.assert_array_equal(batch[key][back], original[key][order], err_msg=key)

    with pytest.raises(FileNotFoundError, match="no local Minari dataset"):
        load_minari("gta5drive/test/missing-v0", datasets_path=datasets)


@pytest.mark.skipif(
    not HAS_MINARI, reason='needs the minari extra: pip install "gta5drive[minari]"'
)
def test_recovered_environment_matches_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Minari user does: load_dataset, recover_environment, compare spaces, step it."""
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    store = _store(tmp_path / "store")
    export_minari(store, "gta5drive/test/recover-v0", progress=False)

    dataset = minari.load_dataset("gta5drive/test/recover-v0")
    assert dataset.total_episodes == 3 and dataset.total_steps == len(store) == 60
    assert sum(len(ep.actions) for ep in dataset.iterate_episodes()) == 60
    assert dataset.env_spec is not None and dataset.env_spec.id == "GTA5Drive-v0"
    env = dataset.recover_environment()
    try:
        assert env.observation_space == dataset.observation_space
        assert env.action_space == dataset.action_space
        # The env's own bounds, not a hand-written copy: purpose distance is in [0, 1].
        assert env.observation_space["purpose"].low[0] == 0.0
        obs, _ = env.reset(seed=0)
        assert obs["hood"].shape == (18, 32, 3)
        assert dataset.observation_space.contains(obs)
        for ep in dataset.iterate_episodes():
            assert env.action_space.contains(ep.actions[0])
    finally:
        env.close()


@pytest.mark.skipif(
    not HAS_MINARI, reason='needs the minari extra: pip install "gta5drive[minari]"'
)
def test_export_is_compressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5py

    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    store = _store(tmp_path / "store")
    packed = export_minari(
        store, "gta5drive/test/packed-v0", datasets_path=tmp_path / "m", progress=False
    )
    plain = export_minari(
        store,
        "gta5drive/test/plain-v0",
        datasets_path=tmp_path / "m",
        progress=False,
        compress=False,
    )
    packed_file = Path(packed.spec.data_path) / "main_data.hdf5"
    with h5py.File(packed_file) as f:
        assert f["episode_0/observations/hood"].compression == "gzip"
    plain_file = Path(plain.spec.data_path) / "main_data.hdf5"
    # Random test frames do not compress; the small arrays (infos, flags) do.
    assert packed_file.stat().st_size < plain_file.stat().st_size
    a, b = load_minari_batch(packed), load_minari_batch(plain)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_missing_minari_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_minari(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "minari" or name.startswith("minari."):
            raise ImportError("No module named 'minari'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minari)
    with pytest.raises(ImportError, match=r'pip install "gta5drive\[minari\]"'):
        load_minari("x/y-v0", datasets_path=tmp_path)


@pytest.mark.skipif(
    not HAS_MINARI, reason='needs the minari extra: pip install "gta5drive[minari]"'
)
def test_a_hood_the_env_cannot_render_exports_without_an_env_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    with SampleWriter(tmp_path / "s", config=StorageConfig(fsync=False)) as w:
        for i in range(4):
            w.append(
                Sample(
                    hood=np.full((4, 6, 3), i, np.uint8),
                    action=np.zeros(2),
                    executed_action=np.zeros(2),
                    speed=1.0,
                    purpose=np.array([0.5, 0.0, 1.0]),
                    time=i / 30,
                    step=i,
                    episode_id=0,
                    town_id=0,
                )
            )
    with pytest.warns(UserWarning, match="recover_environment"):
        dataset = export_minari(
            SampleStore(tmp_path / "s"), "gta5drive/test/tiny-v0",
            datasets_path=tmp_path / "m", progress=False,
        )  # fmt: skip
    assert dataset.env_spec is None
    assert dataset.observation_space["hood"].shape == (4, 6, 3)
    assert dataset.total_steps == 4
