"""Drive an agent through a town and film it: the `gta5drive drive` harness."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
from tqdm import tqdm

from agents.base import Agent


@dataclass(frozen=True)
class DriveSummary:
    """What happened during a drive (totals over all episodes)."""

    steps: int
    game_seconds: float
    distance_m: float
    collisions: int
    unstucks: int
    off_road_frames: int
    purposes_reached: int
    mean_speed_kmh: float

    def line(self) -> str:
        """One human-readable line."""
        return (
            f"{self.distance_m:.0f} m in {self.game_seconds:.0f} s of game time, "
            f"mean speed {self.mean_speed_kmh:.1f} km/h, {self.collisions} collisions, "
            f"{self.unstucks} unstucks, {self.off_road_frames} off-road frames, "
            f"{self.purposes_reached} purpose points reached"
        )

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for JSON)."""
        return asdict(self)


def inset_frame(chase: np.ndarray, hood: np.ndarray, scale: float = 0.34) -> np.ndarray:
    """The chase camera with the hood camera inset in its top-right corner (white border)."""
    out = chase.copy()
    h, w = chase.shape[:2]
    iw = int(w * scale)
    ih = int(round(iw * hood.shape[0] / hood.shape[1]))
    small = cv2.resize(hood, (iw, ih), interpolation=cv2.INTER_AREA)
    x0, y0 = w - iw - 4, 4
    out[y0 - 2 : y0 + ih + 2, x0 - 2 : x0 + iw + 2] = 255
    out[y0 : y0 + ih, x0 : x0 + iw] = small
    return out


def drive(
    env: gym.Env,
    agent: Agent,
    *,
    steps: int,
    seed: int | None = None,
    video: str | Path | None = None,
    progress: bool = True,
) -> DriveSummary:
    """Run ``agent`` in ``env`` for ``steps`` steps (resetting when an episode ends).

    Args:
        env: a `GTA5Drive-v0` env; for video it must have ``cinematic=True``.
        video: MP4 path for the chase camera with the hood inset, or None.
        progress: show a progress bar.
    """
    writer = None
    if video is not None:
        if "cinematic" not in env.observation_space.spaces:  # type: ignore[attr-defined]
            raise ValueError("video needs the chase camera: make the env with cinematic=True")
        import imageio.v2 as imageio

        Path(video).parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(
            str(video), fps=30, codec="libx264", quality=7, macro_block_size=2
        )
    totals = {
        "distance": 0.0,
        "collisions": 0,
        "unstucks": 0,
        "off_road_frames": 0,
        "purposes_reached": 0,
    }
    obs, info = env.reset(seed=seed)
    agent.reset()
    speeds: list[float] = []
    bar = tqdm(total=steps, disable=not progress, unit="step", desc=f"{agent.name} driving")
    try:
        for _ in range(steps):
            action = agent.act(obs, info)
            obs, _, terminated, truncated, info = env.step(action)
            speeds.append(float(info["speed"]))
            if writer is not None:
                writer.append_data(inset_frame(obs["cinematic"], obs["hood"]))
            bar.update(1)
            if bar.n % 30 == 0:
                bar.set_postfix(kmh=f"{info['speed'] * 3.6:.0f}", dist=f"{info['distance']:.0f}m")
            if terminated or truncated:
                for key in totals:
                    totals[key] += info[key]
                obs, info = env.reset()
                agent.reset()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    for key in totals:
        totals[key] += info[key]
    frame_skip = env.unwrapped.config.frame_skip  # type: ignore[attr-defined]
    return DriveSummary(
        steps=steps,
        game_seconds=steps * frame_skip / 30.0,
        distance_m=float(totals["distance"]),
        collisions=int(totals["collisions"]),
        unstucks=int(totals["unstucks"]),
        off_road_frames=int(totals["off_road_frames"]),
        purposes_reached=int(totals["purposes_reached"]),
        mean_speed_kmh=float(np.mean(speeds) * 3.6) if speeds else 0.0,
    )
