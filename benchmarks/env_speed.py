"""Environment speed: steps/s of GTA5Drive-v0 on the embedded world vs Gymnasium's CarRacing-v3.

Every case runs in its own process pinned to one CPU core, so numbers are per core and the
resident memory is that of one environment. Run::

    python benchmarks/env_speed.py            # full table
    python benchmarks/env_speed.py --steps 300  # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from typing import Any

import numpy as np

LIVING_TOWN = {"traffic": 8, "pedestrians": 24, "traffic_lights": True, "weather": "random"}
"""The evaluation protocol's living town: traffic, walkers, lights, weather drawn per episode."""

CASES: dict[str, dict[str, Any]] = {
    "hood 90x160": {"hood_size": (90, 160)},
    "living town, hood 90x160": {"hood_size": (90, 160), **LIVING_TOWN},
    "hood 90x160 + cinematic 180x320": {"hood_size": (90, 160), "cinematic": True},
    "hood 270x480 (original)": {"hood_size": "original"},
}
TARGETS = {
    "hood 90x160": 4.0,
    "living town, hood 90x160": 4.0,
    "hood 90x160 + cinematic 180x320": 3.0,
}


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _run_gta(kwargs: dict[str, Any], steps: int, queue: mp.Queue) -> None:
    _pin()
    import gymnasium as gym

    import gta_env  # noqa: F401
    from gta_env.sim.weather import WEATHERS

    env = gym.make("GTA5Drive-v0", backend="sim", **kwargs)
    resets = []
    for seed in range(3):
        t = time.perf_counter()
        _, info = env.reset(seed=seed)
        resets.append(time.perf_counter() - t)
    # With weather="random" the steps are timed in six stretches, one under each preset (night
    # and rain cost more than a clear day): "random" draws each preset with probability 1/6, so
    # this is its expected cost, not the cost of whichever presets six draws happen to pick.
    rng = np.random.default_rng(0)
    stretches = len(WEATHERS) if kwargs.get("weather") == "random" else 1
    elapsed = 0.0
    for k in range(stretches):
        if stretches > 1:
            env.unwrapped.game.set_weather(WEATHERS[k], rng)  # type: ignore[attr-defined]
        t = time.perf_counter()
        for _step in range(steps // stretches):
            _, _, term, trunc, info = env.step(info["expert_action"])
            if term or trunc:
                env.reset()
        elapsed += time.perf_counter() - t
    queue.put(
        {
            "steps_s": (steps // stretches) * stretches / elapsed,
            "reset_s": float(np.mean(resets)),
            "rss_mb": _rss_mb(),
        }
    )
    env.close()


def _run_car_racing(steps: int, queue: mp.Queue) -> None:
    _pin()
    import gymnasium as gym

    env = gym.make("CarRacing-v3")
    env.reset(seed=0)
    env.action_space.seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    elapsed = time.perf_counter() - t
    queue.put({"steps_s": steps / elapsed, "reset_s": float("nan"), "rss_mb": _rss_mb()})
    env.close()


def _measure(target: Any, *args: Any) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per case")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    # The reference runs before and after the cases and is averaged, so a change in machine
    # load during the run shifts both sides of every ratio alike.
    with console.status("CarRacing-v3 (reference)..."):
        before = _measure(_run_car_racing, args.steps)
    rows = []
    for name, kwargs in CASES.items():
        with console.status(f"GTA5Drive-v0 {name}..."):
            rows.append((name, _measure(_run_gta, kwargs, args.steps)))
    with console.status("CarRacing-v3 (reference, again)..."):
        after = _measure(_run_car_racing, args.steps)
    ref = {k: (before[k] + after[k]) / 2 for k in before}
    table = Table(title=f"Environment speed, one CPU core, {args.steps} steps per case")
    for col in ("case", "steps/s", "× CarRacing-v3", "target", "reset (new town) s", "RSS MB"):
        table.add_column(col, justify="right" if col != "case" else "left")
    table.add_row(
        "CarRacing-v3 96x96 (reference)",
        f"{ref['steps_s']:.0f}",
        "1.0",
        "",
        "",
        f"{ref['rss_mb']:.0f}",
    )
    for name, r in rows:
        ratio = r["steps_s"] / ref["steps_s"]
        target = TARGETS.get(name)
        mark = "" if target is None else f"≥ {target:.0f}× {'ok' if ratio >= target else 'MISSED'}"
        table.add_row(
            f"GTA5Drive-v0 {name}",
            f"{r['steps_s']:.0f}",
            f"{ratio:.1f}",
            mark,
            f"{r['reset_s']:.2f} (< 2)",
            f"{r['rss_mb']:.0f} (< 500)",
        )
    console.print(table)


if __name__ == "__main__":
    main()
