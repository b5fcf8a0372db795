"""`ProcessBatchVectorEnv`: K worker processes, each a batched `GTA5DriveVectorEnv` of N towns.

One process renders N towns in one pass but steps their physics on one core; K of them keep K
cores (and the GPU, with ``renderer="gl"``) busy. Observations travel through shared memory
(written in place by the workers, never pickled); actions, rewards, flags and infos through
one pipe per worker. To the caller it is one `VectorEnv` of ``K * N`` towns: town ``j`` is
town ``j % N`` of worker ``j // N``, seeded ``seed + j`` exactly as a `GTA5DriveVectorEnv` of
``K * N`` would seed it, so it returns the same observations as that one env.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from gta_env.config import EnvConfig
from gta_env.env import action_space_for, observation_space_for


def _worker(
    conn: Connection, shm_names: dict[str, str], num_envs: int, kwargs: dict[str, Any]
) -> None:
    from gta_env.vector import GTA5DriveVectorEnv

    shms = {k: SharedMemory(name=n) for k, n in shm_names.items()}
    try:
        env = GTA5DriveVectorEnv(num_envs=num_envs, **kwargs)
        spaces = env.single_observation_space.spaces  # type: ignore[attr-defined]
        views = {
            k: np.ndarray((num_envs, *spaces[k].shape), spaces[k].dtype, buffer=shm.buf)
            for k, shm in shms.items()
        }
        conn.send(("ready", None))
        while True:
            cmd, data = conn.recv()
            if cmd == "reset":
                obs, info = env.reset(seed=data[0], options=data[1])
                result: Any = info
            elif cmd == "step":
                obs, reward, terminated, truncated, info = env.step(data)
                result = (reward, terminated, truncated, info)
            else:
                env.close()
                conn.send(("ok", None))
                return
            for k, view in views.items():
                view[...] = obs[k]
            conn.send(("ok", result))
    except Exception:  # pragma: no cover - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))
    finally:
        for shm in shms.values():
            shm.close()


def _merge_infos(parts: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Concatenate per-worker vector infos (Gymnasium's ``key`` / ``_key`` convention)."""
    total = sum(sizes)
    merged: dict[str, Any] = {}
    keys = [k for k in dict.fromkeys(k for p in parts for k in p) if not k.startswith("_")]
    for key in keys:
        if any(isinstance(p.get(key), dict) for p in parts):
            merged[key] = _merge_infos([p.get(key, {}) for p in parts], sizes)
            continue
        example = next(p[key] for p in parts if key in p)
        values, masks = [], []
        for p, n in zip(parts, sizes, strict=True):
            if key in p:
                values.append(p[key])
                masks.append(p.get(f"_{key}", np.ones(n, bool)))
            else:
                filler = np.zeros((n, *example.shape[1:]), example.dtype)
                if example.dtype == object:
                    filler[:] = None
                values.append(filler)
                masks.append(np.zeros(n, bool))
        merged[key] = np.concatenate(values) if total else example
        merged[f"_{key}"] = np.concatenate(masks)
    return merged


class ProcessBatchVectorEnv(VectorEnv[dict[str, np.ndarray], np.ndarray, np.ndarray]):
    """``workers`` processes × ``envs_per_worker`` towns as one `VectorEnv` (see the module).

    Args:
        workers: K, the number of processes.
        envs_per_worker: N, towns per process (one render pass each per step).
        context: multiprocessing start method (``"spawn"``: each worker starts its own Panda3D).
        **kwargs: `GTA5DriveVectorEnv` arguments (``max_episode_steps``, ``autoreset_mode``,
            every `EnvConfig` keyword).
    """

    def __init__(
        self,
        *,
        workers: int,
        envs_per_worker: int,
        context: str = "spawn",
        **kwargs: Any,
    ) -> None:
        for name, value in (("workers", workers), ("envs_per_worker", envs_per_worker)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        env_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("max_episode_steps", "autoreset_mode")
        }
        cfg = EnvConfig.from_kwargs(**env_kwargs)
        self.workers, self.envs_per_worker = workers, envs_per_worker
        self.num_envs = workers * envs_per_worker
        self.single_observation_space = observation_space_for(cfg)
        self.single_action_space = action_space_for(cfg)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        from gta_env.vector import _MODES, GTA5DriveVectorEnv

        mode = getattr(kwargs.get("autoreset_mode"), "value", kwargs.get("autoreset_mode"))
        if (mode or "next_step") not in _MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(_MODES)}, got {mode!r}")
        self.metadata = {
            **GTA5DriveVectorEnv.metadata,
            "autoreset_mode": _MODES[mode or "next_step"],
        }
        n = envs_per_worker
        self._shms: list[dict[str, SharedMemory]] = []
        self._views: list[dict[str, np.ndarray]] = []
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        ctx = mp.get_context(context)
        try:
            for _ in range(workers):
                shms, views = {}, {}
                for k, space in self.single_observation_space.spaces.items():
                    shape = (n, *space.shape)  # type: ignore[misc]
                    nbytes = int(np.prod(shape)) * np.dtype(space.dtype).itemsize
                    shms[k] = SharedMemory(create=True, size=max(nbytes, 1))
                    views[k] = np.ndarray(shape, space.dtype, buffer=shms[k].buf)
                self._shms.append(shms)
                self._views.append(views)
                parent, child = ctx.Pipe()
                proc = ctx.Process(  # type: ignore[attr-defined]
                    target=_worker,
                    args=(child, {k: s.name for k, s in shms.items()}, n, kwargs),
                    daemon=True,
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for conn in self._conns:
                self._receive(conn)
        except BaseException:
            self.close()
            raise

    def _receive(self, conn: Connection) -> Any:
        status, payload = conn.recv()
        if status == "error":
            raise RuntimeError(f"a GTA5DriveVectorEnv worker failed:\n{payload}")
        return payload

    def _gather(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([v[k] for v in self._views]) for k in self._views[0]}

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every town; an int ``seed`` seeds town ``j`` with ``seed + j``."""
        n = self.envs_per_worker
        for w, conn in enumerate(self._conns):
            if seed is None:
                part: Any = None
            elif isinstance(seed, int):
                part = seed + w * n
            else:
                part = list(seed)[w * n : (w + 1) * n]
            opts = dict(options or {})
            if "reset_mask" in opts:
                opts["reset_mask"] = np.asarray(opts["reset_mask"])[w * n : (w + 1) * n]
            conn.send(("reset", (part, opts)))
        infos = [self._receive(conn) for conn in self._conns]
        return self._gather(), _merge_infos(infos, [n] * self.workers)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every worker's towns at once, then gather."""
        actions = np.asarray(actions)
        expected = (self.num_envs, *self.single_action_space.shape)  # type: ignore[misc]
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        n = self.envs_per_worker
        for w, conn in enumerate(self._conns):
            conn.send(("step", actions[w * n : (w + 1) * n]))
        parts = [self._receive(conn) for conn in self._conns]
        rewards = np.concatenate([p[0] for p in parts])
        terminated = np.concatenate([p[1] for p in parts])
        truncated = np.concatenate([p[2] for p in parts])
        infos = _merge_infos([p[3] for p in parts], [n] * self.workers)
        return self._gather(), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        """Stop the workers and free the shared memory."""
        for conn in self._conns:
            try:
                conn.send(("close", None))
                conn.recv()
            except (OSError, EOFError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        for shms in self._shms:
            for shm in shms.values():
                shm.close()
                shm.unlink()
        self._conns, self._procs, self._shms, self._views = [], [], [], []
