"""Record the embedded expert's clean action stream into ``expert_actions.npz`` (a test fixture).

Run once from the repository root: ``python tests/imitation/data/record_expert_actions.py``.
Living towns (traffic lights on), 8 traffic cars, 20 pedestrians, random weather, the default
noise on the executed actions (the labels, recorded here, stay clean), as ``gta5drive collect``
records. Only the labels are kept, in stream order, with the town of each: balancers see
exactly what a collector's balancer would see.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

import gta_env  # noqa: F401  (registers GTA5Drive-v0)
from imitation.noise import ActionNoise, NoiseConfig

OUT = Path(__file__).with_name("expert_actions.npz")
TOWNS = (101, 102, 103, 104, 105, 106)
STEPS_PER_TOWN = 3400


def main(total: int = 20_000) -> None:
    """Record ``total`` labels over :data:`TOWNS` and save them."""
    warnings.simplefilter("ignore", UserWarning)
    env = gym.make(
        "GTA5Drive-v0",
        backend="sim",
        hood_size=(16, 16),  # the expert does not look at the camera: render as little as possible
        traffic=8,
        pedestrians=20,
        weather="random",
        max_episode_steps=STEPS_PER_TOWN,
    )
    noise = ActionNoise(config=NoiseConfig.default(), rng=np.random.default_rng(15))
    actions: list[np.ndarray] = []
    towns: list[int] = []
    for town in TOWNS:
        _, info = env.reset(seed=town, options={"town_seed": town})
        noise.reset()
        for _ in range(STEPS_PER_TOWN):
            label = np.asarray(info["expert_action"], np.float32)
            if info.get("unstuck_phase") is None:
                actions.append(label)
                towns.append(town)
            _, _, terminated, truncated, info = env.step(noise(label))
            if terminated or truncated or len(actions) >= total:
                break
        print(f"town {town}: {len(actions)} actions so far", file=sys.stderr)
        if len(actions) >= total:
            break
    env.close()
    np.savez_compressed(OUT, action=np.stack(actions), town_id=np.asarray(towns, np.int16))
    print(f"{len(actions)} actions -> {OUT} ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
