"""RL speed: the env's raw steps/s, PPO's env steps/s with subprocess envs, and learner throughput.

CPU (the embedded world)::

    python benchmarks/rl_speed.py --envs 2

GPU machine (learner only: PPO and SAC updates on synthetic observations of the env's spaces)::

    python benchmarks/rl_speed.py --learner-only --device cuda

* **raw**: one ``GTA5Drive-v0`` (embedded world) stepped with random actions, no learning.
* **PPO collection**: ``gta5drive finetune``'s setup (BC policy, ``SubprocVecEnv`` of ``--envs``)
  learning for a few rollouts; env steps/s overall, and the share of time spent collecting
  rollouts vs updating.
* **learner**: PPO ``train()`` on a full rollout buffer (samples/s through the networks:
  epochs × rollout size / time) and SAC gradient steps/s, on synthetic observations so no env
  is needed (the GPU machine has no embedded world).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from imitation.models import build_model


class SpacesOnlyEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Random observations with `GTA5Drive-v0`'s spaces (for timing learners without an env)."""

    def __init__(self, size: tuple[int, int] = (90, 160)) -> None:
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "hood": spaces.Box(0, 255, (*size, 3), np.uint8),
                "purpose": spaces.Box(
                    np.array([0, -1, -1], np.float32), np.array([1, 1, 1], np.float32)
                ),
                "speed": spaces.Box(0, 50, (1,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self._t = 0
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> Any:
        self._t += 1
        obs = self.observation_space.sample()
        return obs, float(self.np_random.normal()), False, self._t >= 500, {}


def bench_raw(steps: int) -> float:
    import gta_env  # noqa: F401

    env = gym.make("GTA5Drive-v0", backend="sim")
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        env.step(env.action_space.sample())
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def _bc_checkpoint(folder: Path, backbone: str) -> Path:
    from imitation.checkpoint import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(folder / "bc" / "step-00000000", model=build_model(backbone), step=0)


def bench_ppo_collection(args: argparse.Namespace) -> dict[str, float]:
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.rl.finetune import FinetuneConfig, make_vec_env
    from agents.rl.policies import bc_to_sb3
    from imitation.checkpoint import load_checkpoint
    from wrappers.preprocessing import Preprocessing

    ckpt = _bc_checkpoint(args.out, args.model)
    cfg = FinetuneConfig(
        checkpoint=str(ckpt), envs=args.envs, n_steps=args.n_steps, out=str(args.out)
    )
    pre = Preprocessing.from_dict(load_checkpoint(ckpt).meta["preprocessing"])

    class Split(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.collect = 0.0
            self._t = 0.0

        def _on_rollout_start(self) -> None:
            self._t = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.collect += time.perf_counter() - self._t

        def _on_step(self) -> bool:
            return True

    venv = make_vec_env(cfg, pre)
    try:
        agent = bc_to_sb3(
            ckpt,
            venv,
            algo="ppo",
            n_steps=args.n_steps,
            batch_size=64,
            n_epochs=4,
            device=args.device,
        )
        agent.learn(args.n_steps * args.envs)  # warm-up: subprocess start, first rollout
        split = Split()
        total = args.rollouts * args.n_steps * args.envs
        t0 = time.perf_counter()
        agent.learn(total, callback=split, reset_num_timesteps=False)
        wall = time.perf_counter() - t0
    finally:
        venv.close()
    return {
        "env_steps_per_s": total / wall,
        "collect_share": split.collect / wall,
        "collect_steps_per_s": total / split.collect,
        "update_share": 1 - split.collect / wall,
    }


def bench_learner(args: argparse.Namespace) -> dict[str, float]:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.policies import bc_to_sb3

    out: dict[str, float] = {}
    model = build_model(args.model)
    n_envs = args.learner_envs
    venv = DummyVecEnv([SpacesOnlyEnv for _ in range(n_envs)])
    n_steps = args.learner_steps
    ppo = bc_to_sb3(
        model,
        venv,
        algo="ppo",
        n_steps=n_steps,
        batch_size=256,
        n_epochs=4,
        target_kl=None,
        device=args.device,
    )
    ppo.learn(n_steps * n_envs)  # one rollout + one update (warm-up, cuDNN autotune)
    if ppo.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    reps = args.learner_reps
    for _ in range(reps):
        ppo.train()
    if ppo.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    out["ppo_update_samples_per_s"] = reps * ppo.n_epochs * n_steps * n_envs / wall
    venv.close()

    venv = DummyVecEnv([SpacesOnlyEnv])
    sac = bc_to_sb3(
        model,
        venv,
        algo="sac",
        buffer_size=2000,
        learning_starts=300,
        batch_size=256,
        device=args.device,
    )
    sac.learn(300)  # fills the replay buffer (no update before learning_starts)
    sac.train(gradient_steps=3, batch_size=256)
    if sac.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    sac.train(gradient_steps=args.sac_steps, batch_size=256)
    if sac.device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    out["sac_gradient_steps_per_s"] = args.sac_steps / wall
    out["sac_update_samples_per_s"] = args.sac_steps * 256 / wall
    venv.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, default=2, help="subprocess envs for PPO")
    parser.add_argument("--n-steps", type=int, default=256, help="PPO rollout per env")
    parser.add_argument("--rollouts", type=int, default=2, help="timed PPO rollouts")
    parser.add_argument("--raw-steps", type=int, default=1000)
    parser.add_argument("--model", default="pilotnet", help="BC backbone of the policy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sac-steps", type=int, default=50)
    parser.add_argument("--learner-envs", type=int, default=8, help="PPO learner: envs")
    parser.add_argument("--learner-steps", type=int, default=256, help="PPO learner: steps/env")
    parser.add_argument("--learner-reps", type=int, default=3, help="PPO learner: timed updates")
    parser.add_argument("--learner-only", action="store_true", help="skip the env benchmarks")
    parser.add_argument("--out", type=Path, default=Path("runs/rl-speed"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}  model: {args.model}  torch threads: {torch.get_num_threads()}")
    results: dict[str, Any] = {"device": name, "model": args.model}
    if not args.learner_only:
        raw = bench_raw(args.raw_steps)
        results["raw_env_steps_per_s"] = raw
        print(f"raw env (1 env, random actions):           {raw:8,.0f} steps/s")
        ppo = bench_ppo_collection(args)
        results["ppo"] = ppo
        print(
            f"PPO, {args.envs} subprocess envs, overall:        {ppo['env_steps_per_s']:8,.0f} env steps/s "
            f"({ppo['collect_share']:.0%} collecting, {ppo['update_share']:.0%} updating)"
        )
        print(
            f"PPO rollout collection alone:              {ppo['collect_steps_per_s']:8,.0f} env steps/s"
        )
    learner = bench_learner(args)
    results["learner"] = learner
    print(
        f"PPO update (4 epochs, minibatch 256):      {learner['ppo_update_samples_per_s']:8,.0f} samples/s"
    )
    print(
        f"SAC update (batch 256):                    {learner['sac_gradient_steps_per_s']:8,.1f} gradient steps/s "
        f"({learner['sac_update_samples_per_s']:,.0f} samples/s)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
