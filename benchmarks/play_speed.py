"""Speed of acting: player predictions/s, stream composer frames/s, evaluation throughput.

    python benchmarks/play_speed.py [--steps 600] [--model-size 45x80] [--checkpoint runs/demo/run]

* **player PPS**: the player loop in ``--fast`` mode with the demo's model (PilotNet, a
  target-speed head and its speed controller; untrained weights: speed does not depend on them)
  on the CPU, env step included (hood camera only, no
  console, no stream). Target: >= 200 PPS.
* **composer FPS**: :class:`agents.stream.StreamComposer` frames at 1280×720 from camera-sized
  inputs, without and with H.264 encoding.
* **eval throughput**: route-km of the ``town`` protocol (one fixed 2 km route in the living
  town) evaluated per wall-clock minute, for the expert and for a BC model (``--checkpoint``:
  a trained one; by default an untrained one, which is blocked early).

Torch runs on one thread (faster for these small convolutions on a shared machine). Timings
on a shared machine are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="player steps")
    parser.add_argument("--frames", type=int, default=60, help="composer frames")
    parser.add_argument(
        "--route-m", type=float, default=2000.0, help="town-protocol route length for the eval rows"
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a trained BC run or checkpoint for the BC eval row (default: an untrained model, "
        "which stops early: blocked)",
    )
    parser.add_argument("--model-size", type=_size, default=(45, 80), help="model input HxW")
    args = parser.parse_args()

    import gymnasium as gym
    import torch

    import gta_env  # noqa: F401
    from agents.demo import DemoConfig, demo_model_config
    from agents.evaluate import EvalConfig, agent_factory, evaluate
    from agents.player import Player, PlayerConfig
    from agents.stream import StreamComposer, StreamInputs, StreamWriter
    from imitation.checkpoint import save_checkpoint
    from imitation.models import model_from_config

    torch.set_num_threads(1)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(
            Path(tmp) / "run" / "step-00000000.safetensors",
            model=model_from_config(demo_model_config(DemoConfig(image_size=args.model_size))),
            step=0,
        )
        # As `gta5drive play` makes it: the player needs no expert action in `info`.
        env = gym.make(
            "GTA5Drive-v0",
            backend="sim",
            town_seed=1000,
            expert_in_info=False,
            max_episode_steps=10**9,
        )
        # env alone, for reference
        obs, _ = env.reset(seed=0)
        t = time.perf_counter()
        for _ in range(args.steps):
            obs, *_ = env.step(np.array([0.5, 0.0], np.float32))
        env_sps = args.steps / (time.perf_counter() - t)
        rows.append(("env step alone (fixed action)", f"{env_sps:.0f} steps/s", ""))
        player = Player(
            env=env, checkpoint=ckpt, config=PlayerConfig(fast=True, console=False, swap=False)
        )
        stats = player.run(steps=args.steps, seed=0)
        rows.append(
            (
                f"player loop, pilotnet {args.model_size[0]}x{args.model_size[1]}, env included",
                f"{stats.pps:.0f} PPS",
                "target >= 200",
            )
        )
        env.close()

        rng = np.random.default_rng(0)
        inputs = StreamInputs(
            third_person=rng.integers(0, 256, (180, 320, 3), dtype=np.uint8),
            hood=rng.integers(0, 256, (90, 160, 3), dtype=np.uint8),
            convcam=rng.integers(0, 256, (40, 120, 3), dtype=np.uint8),
            player_lines=player.console_lines(),
            trainer_lines=[f"train/loss {i}" for i in range(10)],
            loss=[(i, 1 / (i + 1)) for i in range(200)],
            model_name="pilotnet step 0",
            created="2026-01-01T00:00:00+0000",
        )
        composer = StreamComposer()
        t = time.perf_counter()
        for _ in range(args.frames):
            composer.compose(inputs)
        rows.append(
            ("composer 1280x720", f"{args.frames / (time.perf_counter() - t):.0f} frames/s", "")
        )
        writer = StreamWriter(Path(tmp) / "bench.mp4")
        t = time.perf_counter()
        for _ in range(args.frames):
            writer.write(composer.compose(inputs))
        writer.close()
        rows.append(
            (
                "composer + H.264 encoding",
                f"{args.frames / (time.perf_counter() - t):.0f} frames/s",
                "",
            )
        )

        for spec in ("expert", args.checkpoint or str(ckpt)):
            name, factory = agent_factory(spec)
            cfg = EvalConfig(seeds=(1000,), route_m=args.route_m)
            report = evaluate({name: factory}, config=cfg, progress=False)
            tot = report.total(name)
            label = "expert" if spec == "expert" else "BC pilotnet"
            rows.append(
                (
                    f"town protocol, {label}",
                    f"{tot['route_km_per_wall_min']:.2f} route-km/wall-min",
                    f"route {tot['route_m']:.0f} m, completion {tot['route_completion']:.2f}, "
                    f"game {tot['game_s']:.0f} s in {tot['wall_s']:.0f} s",
                )
            )

    width = max(len(r[0]) for r in rows)
    print(f"\n{'case':<{width}}  {'speed':>24}  note")
    for case, speed, note in rows:
        print(f"{case:<{width}}  {speed:>24}  {note}")


if __name__ == "__main__":
    main()
