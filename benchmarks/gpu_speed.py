"""Scale: steps/s of single envs in many processes against the batched env, software and GL.

Rows (all in one run; every number is town-steps per second summed over processes, the car
driven by the expert (``info["expert_action"]``), episodes of 3,600 steps with resets
included, after a warm-up):

* (a) P processes × one ``gym.make`` env, software renderer;
* (b) the same with ``renderer="gl"`` (EGL);
* (c) one process, one `GTA5DriveVectorEnv` of N towns (one render pass per step);
* (d) K processes × a `GTA5DriveVectorEnv` of N towns each, measured inside the workers, and
  (d') the same driven from one process through `ProcessBatchVectorEnv` (end to end:
  shared-memory observations, batched infos).

Run::

    python benchmarks/gpu_speed.py --gpu --out results.jsonl     # the GPU-machine table
    python benchmarks/gpu_speed.py --cpu                           # batched vs SyncVectorEnv, CPU
    python benchmarks/gpu_speed.py --check-gl                      # GL vs software pixels

Each row is appended to ``--out`` (JSON lines) as soon as it is measured, so a run cut short
keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOOD = {"backend": "sim", "hood_size": (90, 160)}
CINEMATIC = {**HOOD, "cinematic": True, "cinematic_size": (180, 320)}
RAND = {"expert_in_info": False}
"""Rows marked ``rand``: no expert in info; random actions stand for an untrained policy."""


def _expert(info: dict[str, Any], n: int) -> np.ndarray:
    if "expert_action" not in info:
        return np.zeros((n, 2), np.float32)
    mask = info.get("_expert_action", np.ones(n, bool))
    return np.where(mask[:, None], np.stack(list(info["expert_action"])), 0.0).astype(np.float32)


def _single_worker(kwargs: dict[str, Any], seed: int, seconds: float, barrier: Any, q: Any) -> None:
    try:
        import gymnasium as gym

        import gta_env  # noqa: F401

        env = gym.make("GTA5Drive-v0", **kwargs)
        _, info = env.reset(seed=seed)
        for _ in range(30):
            _, _, term, trunc, info = env.step(info["expert_action"])
        barrier.wait()
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, _, term, trunc, info = env.step(info["expert_action"])
            steps += 1
            if term or trunc:
                _, info = env.reset()
        q.put(("ok", steps / (time.perf_counter() - t0)))
        env.close()
    except Exception:
        q.put(("error", traceback.format_exc()))
        barrier.abort()


def _batch_worker(
    kwargs: dict[str, Any], n: int, seed: int, seconds: float, barrier: Any, q: Any
) -> None:
    """Expert driving, or with ``expert_in_info=False`` random actions (an untrained policy)."""
    try:
        from gta_env.vector import GTA5DriveVectorEnv

        t_load = time.perf_counter()
        env = GTA5DriveVectorEnv(num_envs=n, max_episode_steps=3600, **kwargs)
        _, info = env.reset(seed=seed)
        load = time.perf_counter() - t_load
        rng = np.random.default_rng(seed)
        expert = kwargs.get("expert_in_info", True)

        def act(info: dict[str, Any]) -> np.ndarray:
            if expert:
                return _expert(info, n)
            return rng.uniform(-1, 1, (n, 2)).astype(np.float32)

        render_s = [0.0]
        tiles_render = env.tiles.render

        def timed_render() -> None:
            t = time.perf_counter()
            tiles_render()
            render_s[0] += time.perf_counter() - t

        env.tiles.render = timed_render  # type: ignore[method-assign]
        for _ in range(10):
            _, _, _, _, info = env.step(act(info))
        barrier.wait()
        render_s[0] = 0.0
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, _, _, _, info = env.step(act(info))
            steps += n
        elapsed = time.perf_counter() - t0
        q.put(("ok", steps / elapsed, load, render_s[0] / elapsed))
        env.close()
    except Exception:
        q.put(("error", traceback.format_exc()))
        barrier.abort()


def _parallel(target: Any, args_for: list[tuple], timeout: float) -> list[tuple]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_for))
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, q), daemon=True) for a in args_for]
    for p in procs:
        p.start()
    results = []
    deadline = time.monotonic() + timeout
    try:
        for _ in procs:
            results.append(q.get(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    return results


def _row(name: str, results: list[tuple], t0: float, **extra: Any) -> dict[str, Any]:
    errors = [r[1] for r in results if r[0] == "error"]
    ok = [r for r in results if r[0] == "ok"]
    row = {
        "row": name,
        "steps_per_s": round(sum(r[1] for r in ok), 1),
        "processes_ok": len(ok),
        "wall_s": round(time.perf_counter() - t0, 1),
        **extra,
    }
    if ok and len(ok[0]) > 2:
        row["load_s_max"] = round(max(r[2] for r in ok), 1)
        row["render_share"] = round(float(np.mean([r[3] for r in ok])), 3)
    if errors:
        row["error"] = errors[0][-1500:]
    return row


def single_processes(procs: int, kwargs: dict[str, Any], seconds: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    args = [(kwargs, 100 + i, seconds) for i in range(procs)]
    return _row("single", _parallel(_single_worker, args, 120 + seconds), t0, processes=procs)


def batched_processes(procs: int, n: int, kwargs: dict[str, Any], seconds: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    args = [(kwargs, n, 1000 * (i + 1), seconds) for i in range(procs)]
    results = _parallel(_batch_worker, args, 240 + seconds)
    return _row("batched", results, t0, processes=procs, num_envs=n)


def launcher(procs: int, n: int, kwargs: dict[str, Any], seconds: float) -> dict[str, Any]:
    from gta_env.multiproc import ProcessBatchVectorEnv

    t0 = time.perf_counter()
    envs = ProcessBatchVectorEnv(workers=procs, envs_per_worker=n, max_episode_steps=3600, **kwargs)
    try:
        _, info = envs.reset(seed=0)
        load = time.perf_counter() - t0
        for _ in range(10):
            _, _, _, _, info = envs.step(_expert(info, envs.num_envs))
        steps, t1 = 0, time.perf_counter()
        while time.perf_counter() - t1 < seconds:
            _, _, _, _, info = envs.step(_expert(info, envs.num_envs))
            steps += envs.num_envs
        rate = steps / (time.perf_counter() - t1)
    finally:
        envs.close()
    return {
        "row": "launcher",
        "steps_per_s": round(rate, 1),
        "processes": procs,
        "num_envs": n,
        "load_s": round(load, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def check_gl(out: Path | None) -> dict[str, Any]:
    """Same towns and drive, software vs GL: single envs, and the batched env on GL."""
    import gymnasium as gym

    import gta_env  # noqa: F401
    from gta_env.vector import GTA5DriveVectorEnv

    stats: dict[str, Any] = {"row": "gl_vs_software"}
    frames: dict[str, list[np.ndarray]] = {}
    for renderer in ("software", "gl"):
        frames[renderer] = []
        for seed in (1, 2, 3):
            env = gym.make("GTA5Drive-v0", **CINEMATIC, renderer=renderer)
            obs, info = env.reset(seed=seed)
            for _ in range(20):
                obs, *_, info = env.step(info["expert_action"])
            frames[renderer] += [obs["hood"], obs["cinematic"]]
            env.close()
    vec = GTA5DriveVectorEnv(num_envs=3, **CINEMATIC, renderer="gl")
    obs, info = vec.reset(seed=[1, 2, 3])  # the towns and drives of the single envs above
    gsg = vec.tiles.buffer.getGsg()
    stats["gl_driver"] = f"{gsg.getDriverVendor()} / {gsg.getDriverRenderer()}"
    for _ in range(20):
        obs, *_, info = vec.step(_expert(info, 3))
    frames["batched_gl"] = [obs[k][i] for i in range(3) for k in ("hood", "cinematic")]
    vec.close()

    def compare(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, float]:
        d = np.concatenate(
            [
                np.abs(x.astype(int) - y.astype(int)).max(-1).ravel()
                for x, y in zip(a, b, strict=True)
            ]
        )
        return {
            "mean_abs_diff": round(float(d.mean()), 3),
            "share_equal": round(float((d == 0).mean()), 4),
            "share_within_8": round(float((d <= 8).mean()), 4),
            "share_within_32": round(float((d <= 32).mean()), 4),
            "max": int(d.max()),
        }

    stats["software_vs_gl"] = compare(frames["software"], frames["gl"])
    stats["gl_vs_batched_gl"] = compare(frames["gl"], frames["batched_gl"])
    if out is not None:
        np.savez_compressed(
            out.with_name("gl_frames.npz"),
            **{f"{k}_{i}": f for k, v in frames.items() for i, f in enumerate(v)},
        )
    return stats


def _emit(row: dict[str, Any], out: Path | None, label: str) -> None:
    row = {"label": label, **row}
    print(json.dumps(row), flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="the GPU-machine table")
    parser.add_argument("--cpu", action="store_true", help="batched vs SyncVectorEnv on CPU")
    parser.add_argument("--check-gl", action="store_true", help="GL vs software pixels")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured time per row")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--n", type=int, default=64, help="towns per batched process")
    parser.add_argument("--n-big", type=int, default=256, help="towns of the big batch")
    parser.add_argument("--force-renderer", default="", help="smoke test: one renderer for all")
    parser.add_argument("--only", default="", help="comma-separated row labels to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    s, p, n, nb = args.seconds, args.procs, args.n, args.n_big
    only = set(filter(None, args.only.split(",")))

    def r(renderer: str) -> str:
        return args.force_renderer or renderer

    def want(label: str) -> bool:
        return not only or label in only

    if args.check_gl and want("check_gl"):
        _emit(check_gl(args.out), args.out, "check_gl")
    if args.gpu:
        rows: list[tuple[str, Any]] = [
            ("d_hood_gl", lambda: batched_processes(p, n, {**HOOD, "renderer": r("gl")}, s)),
            ("d_cin_gl", lambda: batched_processes(p, n, {**CINEMATIC, "renderer": r("gl")}, s)),
            ("c_hood_gl_n", lambda: batched_processes(1, n, {**HOOD, "renderer": r("gl")}, s)),
            ("c_cin_gl_n", lambda: batched_processes(1, n, {**CINEMATIC, "renderer": r("gl")}, s)),
            ("a_hood_sw", lambda: single_processes(p, {**HOOD, "renderer": r("software")}, s)),
            ("a_cin_sw", lambda: single_processes(p, {**CINEMATIC, "renderer": r("software")}, s)),
            ("b_hood_gl", lambda: single_processes(p, {**HOOD, "renderer": r("gl")}, s)),
            ("b_cin_gl", lambda: single_processes(p, {**CINEMATIC, "renderer": r("gl")}, s)),
            ("c_hood_gl_big", lambda: batched_processes(1, nb, {**HOOD, "renderer": r("gl")}, s)),
            ("d_hood_sw", lambda: batched_processes(p, n, {**HOOD, "renderer": r("software")}, s)),
            (
                "d_cin_sw",
                lambda: batched_processes(p, n, {**CINEMATIC, "renderer": r("software")}, s),
            ),
            ("dl_hood_gl", lambda: launcher(p, n // 2, {**HOOD, "renderer": r("gl")}, s)),
            (
                "d_hood_gl_rand",
                lambda: batched_processes(p, n, {**HOOD, **RAND, "renderer": r("gl")}, s),
            ),
            (
                "d_cin_gl_rand",
                lambda: batched_processes(p, n, {**CINEMATIC, **RAND, "renderer": r("gl")}, s),
            ),
            (
                "d_hood_gl_2p",
                lambda: batched_processes(2 * p, n // 2, {**HOOD, "renderer": r("gl")}, s),
            ),
            (
                "c_hood_gl_rand",
                lambda: batched_processes(1, n, {**HOOD, **RAND, "renderer": r("gl")}, s),
            ),
            (
                "c_cin_gl_big",
                lambda: batched_processes(1, nb, {**CINEMATIC, "renderer": r("gl")}, s),
            ),
        ]
        for label, run in rows:
            if want(label):
                try:
                    _emit(run(), args.out, label)
                except Exception:
                    _emit({"error": traceback.format_exc()[-1500:]}, args.out, label)
    if args.cpu:
        cpu_compare(args.out, s, want)


def cpu_compare(out: Path | None, seconds: float, want: Any) -> None:
    """One process: the batched env against Gymnasium's SyncVectorEnv of the same N."""
    import gymnasium as gym

    import gta_env  # noqa: F401

    for n in (8,):
        for mode in ("sync", "vector_entry_point"):
            label = f"cpu_{mode}_{n}"
            if not want(label):
                continue
            envs = gym.make_vec("GTA5Drive-v0", num_envs=n, vectorization_mode=mode, **HOOD)
            _, info = envs.reset(seed=0)
            for _ in range(5):
                _, _, _, _, info = envs.step(_expert(info, n))
            steps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                _, _, _, _, info = envs.step(_expert(info, n))
                steps += n
            rate = steps / (time.perf_counter() - t0)
            envs.close()
            _emit({"row": mode, "num_envs": n, "steps_per_s": round(rate, 1)}, out, label)


if __name__ == "__main__":
    main()
