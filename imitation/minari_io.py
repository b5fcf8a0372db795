"""Export a demonstration store to a Minari dataset (the Farama offline-RL/IL format) and back.

Minari is optional: ``pip install "gta5drive[minari]"``. Nothing here downloads anything: datasets
are written to and read from a local directory (``datasets_path``, or Minari's own
``MINARI_DATASETS_PATH`` / ``~/.minari/datasets`` when not given).

Mapping
-------
- One Minari episode per (town_id, episode_id) of the store, its samples ordered by ``step``.
- The dataset records the env it belongs to: ``GTA5Drive-v0``'s spec with the kwargs that give
  the store's hood size (``backend="sim"``, ``hood_size=(H, W)``; pass ``env_kwargs`` for
  others), so ``dataset.recover_environment()`` makes that env, and its spaces are the env's
  own (purpose ``[0, -1, -1]..[1, 1, 1]``, speed ``[0, max_speed]``).
- ``observations``: ``hood``, ``purpose`` and ``speed``. Minari stores T + 1 observations for
  T actions; a store has no frame after the last sample, so the last observation is repeated
  (``load`` drops it).
- ``actions``: the labels, in the env's action space.
- ``rewards`` are 0 (stores keep no reward), ``terminations`` False, ``truncations`` True on the
  last step.
- ``infos``: ``executed_action``, ``time``, ``step``, ``episode_id``, ``town_id``, ``light``,
  ``target_speed`` per step, so that :func:`load_minari_batch` restores every non-frame field.
  Cinematic frames are not exported.
- Frames are stored losslessly (Minari's JPEG encoding is turned off) and every array is
  gzip-compressed in the HDF5 file (Minari writes it uncompressed; :func:`export_minari`
  repacks it once at the end, which h5py reads back transparently).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imitation.sample import LIGHT_UNKNOWN, Batch

__all__ = ["env_spec_for", "export_minari", "load_minari", "load_minari_batch", "minari_spaces"]

ENV_ID = "GTA5Drive-v0"


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


def env_spec_for(hood_shape: tuple[int, ...], env_kwargs: Mapping[str, Any] | None = None) -> Any:
    """The ``GTA5Drive-v0`` spec (a ``gymnasium.envs.registration.EnvSpec``) whose env sees
    frames of ``hood_shape``: ``backend="sim"`` and the hood size, updated by ``env_kwargs``.

    The kwargs are plain JSON types, as Minari stores the spec as JSON.
    """
    import gymnasium as gym

    import gta_env  # noqa: F401  (registers the id)

    kwargs: dict[str, Any] = {
        "backend": "sim",
        "hood_size": [int(hood_shape[0]), int(hood_shape[1])],
    }
    kwargs.update(env_kwargs or {})
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    return dataclasses.replace(gym.spec(ENV_ID), kwargs=kwargs)


def minari_spaces(
    hood_shape: tuple[int, ...], env_kwargs: Mapping[str, Any] | None = None
) -> tuple[Any, Any]:
    """The (observation space, action space) of an exported dataset: the env's own, without
    the camera a store does not keep (``cinematic``)."""
    from gymnasium import spaces

    from gta_env.config import EnvConfig
    from gta_env.env import action_space_for, observation_space_for

    spec = env_spec_for(hood_shape, env_kwargs)
    try:
        config = EnvConfig.from_kwargs(**{**spec.kwargs, "cinematic": False})
    except ValueError:
        if env_kwargs:
            raise
        # A hood the env cannot render (tiny test frames): the env's bounds, the store's frames.
        config = EnvConfig.from_kwargs(backend="sim")
        obs = observation_space_for(config)
        obs.spaces["hood"] = spaces.Box(0, 255, tuple(hood_shape), np.uint8)
        return obs, action_space_for(config)
    return observation_space_for(config), action_space_for(config)


def _renderable(hood_shape: tuple[int, ...], env_kwargs: Mapping[str, Any] | None) -> bool:
    from gta_env.config import EnvConfig

    try:
        EnvConfig.from_kwargs(**env_spec_for(hood_shape, env_kwargs).kwargs)
    except ValueError:
        if env_kwargs:
            raise
        return False
    return True


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
            "light": with_final(batch["light"]),
            "target_speed": with_final(batch["target_speed"]),
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
    env_kwargs: Mapping[str, Any] | None = None,
    compress: bool = True,
) -> Any:
    """Write a store as a new local Minari dataset.

    Args:
        store: A :class:`imitation.storage.SampleStore`.
        dataset_id: Minari id, e.g. ``"gta5drive/sim/expert-v0"``.
        datasets_path: Directory holding Minari datasets (None: Minari's default).
        description: Dataset description.
        episodes_per_write: Episodes held in memory before they are written.
        progress: Show a progress bar.
        env_kwargs: ``gym.make`` kwargs of the env recorded with the dataset, over
            ``backend="sim"`` and the store's hood size (what ``recover_environment()`` makes).
        compress: gzip every array of the HDF5 file (lossless).

    Returns:
        The ``minari.MinariDataset`` created.

    Raises:
        ImportError: Naming the extra to install when Minari is missing.
        ValueError: If the store is empty, the id exists already, or ``env_kwargs`` asks for
            a camera the store does not export.
    """
    minari = _import_minari()
    from tqdm import tqdm

    if len(store) == 0 or store.hood_shape is None:
        raise ValueError(f"store {store.root} is empty: nothing to export")
    if (env_kwargs or {}).get("cinematic"):
        raise ValueError("the export holds hood frames only: env_kwargs cannot set cinematic=True")
    obs_space, act_space = minari_spaces(store.hood_shape, env_kwargs)
    if _renderable(store.hood_shape, env_kwargs):
        env: Any = _spec_only(env_spec_for(store.hood_shape, env_kwargs), obs_space, act_space)
    else:
        env = None
        warnings.warn(
            f"the store's {store.hood_shape[0]}x{store.hood_shape[1]} hood is not a size "
            f"{ENV_ID} renders; the dataset records no env, so recover_environment() will not "
            "work (pass env_kwargs to name one)",
            stacklevel=2,
        )
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
                        env=env,
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
    assert dataset is not None  # the store has at least one episode
    if compress:
        _compress_hdf5(Path(dataset.spec.data_path))
        with _datasets_path(datasets_path):
            dataset = minari.load_dataset(dataset_id, download=False)
        dataset.storage.update_metadata({"dataset_size": dataset.storage.get_size()})
    return dataset


def _spec_only(spec: Any, observation_space: Any, action_space: Any) -> Any:
    """What ``minari.create_dataset_from_buffers`` reads of an env (its spec and spaces),
    without a renderer behind it: passing a spec instead would make (and leak) a real env."""
    import gymnasium as gym

    class SpecOnly(gym.Env):
        pass

    env = SpecOnly()
    env.spec = spec
    env.observation_space = observation_space
    env.action_space = action_space
    return env


def _compress_hdf5(data_path: Path) -> None:
    """Rewrite every HDF5 file under ``data_path`` with gzip-compressed datasets, atomically.

    Minari's HDF5 writer takes no compression option; h5py decompresses on read, so readers
    see the same arrays.
    """
    import h5py

    def copy(src: Any, dst: Any) -> None:
        dst.attrs.update(dict(src.attrs))
        for name, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(name))
                continue
            data = item[()]
            packable = item.shape != () and item.dtype.kind not in "OSUV"
            out = dst.create_dataset(
                name,
                data=data,
                dtype=item.dtype,
                **(
                    {
                        "compression": "gzip",
                        "compression_opts": 4,
                        "shuffle": True,
                        "chunks": True,
                        "maxshape": item.maxshape,
                    }
                    if packable
                    else {}
                ),
            )
            out.attrs.update(dict(item.attrs))

    for path in sorted(data_path.glob("*.hdf5")):
        tmp = path.with_name(f".{path.name}.tmp")
        with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
            copy(src, dst)
        os.replace(tmp, path)


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
                "light": info("light", np.full(t, LIGHT_UNKNOWN)).astype(np.int8),
                "target_speed": info("target_speed", np.full(t, np.nan)).astype(np.float32),
            }
        )
    if not parts:
        raise ValueError(f"Minari dataset {dataset.spec.dataset_id!r} has no episodes")
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
