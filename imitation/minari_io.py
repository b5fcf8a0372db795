"""Export a demonstration store to a Minari dataset (the Farama offline-RL/IL format) and back.

Minari is optional: ``pip install "gta5drive[minari]"``. Nothing here downloads anything: datasets
are written to and read from a local directory (``datasets_path``, or Minari's own
``MINARI_DATASETS_PATH`` / ``~/.minari/datasets`` when not given).

Mapping
-------
- One Minari episode per (town_id, episode_id) of the store, its samples ordered by ``step``.
- ``observations``: ``Dict(hood=Box(0, 255, (H, W, 3), uint8), purpose=Box(-1, 1, (3,), float32),
  speed=Box(0, inf, (1,), float32))``. Minari stores T + 1 observations for T actions; a store has
  no frame after the last sample, so the last observation is repeated (``load`` drops it).
- ``actions``: the labels, ``Box(-1, 1, (2,), float32)``.
- ``rewards`` are 0 (stores keep no reward), ``terminations`` False, ``truncations`` True on the
  last step.
- ``infos``: ``executed_action``, ``time``, ``step``, ``episode_id``, ``town_id`` per step, so that
  :func:`load_minari_batch` restores every non-frame field. Cinematic frames are not exported.
- Frames are stored losslessly (Minari's JPEG encoding is turned off).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imitation.sample import Batch

__all__ = ["export_minari", "load_minari", "load_minari_batch", "minari_spaces"]


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as exc:
        raise ImportError(
            'Minari export needs the minari extra: pip install "gta5drive[minari]" '
            "(minari and h5py)"
        ) from exc
    return minari


@contextlib.contextmanager
def _datasets_path(path: str | Path | None) -> Iterator[None]:
    """Point Minari at a local directory for the duration of a call."""
    if path is None:
        yield
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def minari_spaces(hood_shape: tuple[int, int, int]) -> tuple[Any, Any]:
    """The (observation space, action space) of an exported dataset."""
    from gymnasium import spaces

    obs = spaces.Dict(
        {
            "hood": spaces.Box(0, 255, hood_shape, np.uint8),
            "purpose": spaces.Box(-1.0, 1.0, (3,), np.float32),
            "speed": spaces.Box(0.0, np.inf, (1,), np.float32),
        }
    )
    return obs, spaces.Box(-1.0, 1.0, (2,), np.float32)


def _episode_buffer(batch: Batch) -> Any:
    def with_final(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, x[-1:]])

    from minari.data_collector import EpisodeBuffer

    t = len(batch["action"])
    fields = {
        "observations": {
            "hood": with_final(batch["hood"]),
            "purpose": with_final(batch["purpose"]),
            "speed": with_final(batch["speed"]),
        },
        "actions": batch["action"],
        "rewards": np.zeros(t, np.float64),
        "terminations": np.zeros(t, bool),
        "truncations": np.arange(t) == t - 1,
        "infos": {
            "executed_action": with_final(batch["executed_action"]),
            "time": with_final(batch["time"]),
            "step": with_final(batch["step"]),
            "episode_id": with_final(batch["episode_id"]),
            "town_id": with_final(batch["town_id"]),
        },
    }
    return EpisodeBuffer(**fields)


def export_minari(
    store: Any,
    dataset_id: str,
    *,
    datasets_path: str | Path | None = None,
    description: str | None = None,
    episodes_per_write: int = 8,
    progress: bool = True,
) -> Any:
    """Write a store as a new local Minari dataset.

    Args:
        store: A :class:`imitation.storage.SampleStore`.
        dataset_id: Minari id, e.g. ``"gta5drive/sim/expert-v0"``.
        datasets_path: Directory holding Minari datasets (None: Minari's default).
        description: Dataset description.
        episodes_per_write: Episodes held in memory before they are written.
        progress: Show a progress bar.

    Returns:
        The ``minari.MinariDataset`` created.

    Raises:
        ImportError: Naming the extra to install when Minari is missing.
        ValueError: If the store is empty or the id exists already.
    """
    minari = _import_minari()
    from tqdm import tqdm

    if len(store) == 0 or store.hood_shape is None:
        raise ValueError(f"store {store.root} is empty: nothing to export")
    obs_space, act_space = minari_spaces(store.hood_shape)
    episodes = np.stack([store.column("town_id"), store.column("episode_id")], axis=1)
    keys, inverse = np.unique(episodes, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    steps = store.column("step")
    dataset = None
    pending: list[Any] = []
    with (
        warnings.catch_warnings(),
        _datasets_path(datasets_path),
        tqdm(
            total=len(store), desc=f"exporting {dataset_id}", unit="sample", disable=not progress
        ) as bar,
    ):
        # Minari nags about unset author e-mail, code link and evaluation env: not ours to set.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\.")
        for k in range(len(keys)):
            idx = np.flatnonzero(inverse == k)
            idx = idx[np.argsort(steps[idx], kind="stable")]
            pending.append(_episode_buffer(store.read_batch(idx)))
            bar.update(len(idx))
            if len(pending) >= episodes_per_write or k == len(keys) - 1:
                if dataset is None:
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id=dataset_id,
                        buffer=pending,
                        observation_space=obs_space,
                        action_space=act_space,
                        algorithm_name="gta5drive expert demonstrations",
                        author="gta5drive",
                        description=description
                        or "Driving demonstrations exported from a gta5drive store",
                        data_format="hdf5",
                        jpeg_encoding=False,
                    )
                else:
                    dataset.update_dataset_from_buffer(pending)
                pending = []
    return dataset


def load_minari(dataset_id: str, *, datasets_path: str | Path | None = None) -> Any:
    """Open a local Minari dataset (never downloads).

    Raises:
        ImportError: Naming the extra to install when Minari is missing.
        FileNotFoundError: If the dataset is not in ``datasets_path``.
    """
    minari = _import_minari()
    with _datasets_path(datasets_path):
        from minari.storage import get_dataset_path

        path = get_dataset_path(dataset_id)
        if not (Path(path) / "data").exists():
            raise FileNotFoundError(
                f"no local Minari dataset {dataset_id!r} at {path}; export one with "
                "export_minari or pass datasets_path"
            )
        return minari.load_dataset(dataset_id, download=False)


def load_minari_batch(dataset: Any) -> Batch:
    """All steps of a Minari dataset exported by :func:`export_minari`, as one batch dict.

    The repeated final observation of each episode is dropped; fields missing from foreign
    datasets are filled (``executed_action`` = action, ``time``/``step`` from the position,
    ``episode_id`` = the Minari episode id, ``town_id`` = 0).
    """
    parts: list[Batch] = []
    for ep in dataset.iterate_episodes():
        t = len(ep.actions)
        obs = ep.observations
        infos = ep.infos or {}

        def info(
            key: str, default: np.ndarray, infos: dict[str, Any] = infos, t: int = t
        ) -> np.ndarray:
            value = infos.get(key)
            return default if value is None else np.asarray(value)[:t]

        action = np.asarray(ep.actions, np.float32)
        parts.append(
            {
                "hood": np.asarray(obs["hood"][:t], np.uint8),
                "action": action,
                "executed_action": info("executed_action", action).astype(np.float32),
                "speed": np.asarray(obs["speed"][:t], np.float32).reshape(t, 1),
                "purpose": np.asarray(obs["purpose"][:t], np.float32),
                "time": info("time", np.arange(t) / 30.0).astype(np.float64),
                "step": info("step", np.arange(t)).astype(np.int64),
                "episode_id": info("episode_id", np.full(t, ep.id)).astype(np.int64),
                "town_id": info("town_id", np.zeros(t)).astype(np.int64),
            }
        )
    if not parts:
        raise ValueError(f"Minari dataset {dataset.spec.dataset_id!r} has no episodes")
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
