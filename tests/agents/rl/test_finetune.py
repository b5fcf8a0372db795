"""A tiny fine-tune runs end to end on CPU and writes checkpoints the player and eval load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.cli import build_parser
from agents.rl.finetune import FinetuneConfig, finetune, load_rl_policy_state
from imitation.checkpoint import load_checkpoint
from imitation.policy import BCPolicy


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_tiny_finetune_writes_loadable_checkpoints(
    algo: str, bc_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / algo
    config = FinetuneConfig(
        checkpoint=str(bc_checkpoint),
        algo=algo,  # type: ignore[arg-type]
        steps=64,
        envs=1,
        out=str(out),
        n_steps=32,
        batch_size=16,
        warmup_steps=32,
        eval_every=0,
        eval_seeds=(1000,),
        eval_route_m=40.0,
        buffer_size=200,
        device="cpu",
        progress=False,
    )
    result = finetune(config)
    assert result.env_steps >= 64
    assert len(result.evaluations) == 2  # step 0 (the BC model itself) and the end
    assert "eval/driving_score" in result.evaluations[0]
    lines = (out / "eval.jsonl").read_text().splitlines()
    assert [json.loads(line)["env_steps"] for line in lines] == [0, result.env_steps]
    assert (out / "tensorboard").is_dir()
    # The player's loader and eval's loader read it like a BC checkpoint.
    policy = BCPolicy.load(out)
    assert policy.meta["step"] == result.env_steps
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.meta["extra"]["rl"]["algo"] == algo
    assert ckpt.meta["extra"]["rl"]["base_step"] == 10
    assert load_rl_policy_state(result.checkpoint)
    obs = {
        "hood": np.zeros((45, 80, 3), np.uint8) + 100,
        "purpose": np.array([0.5, 0.0, 1.0], np.float32),
        "speed": np.array([3.0], np.float32),
    }
    assert policy.predict(obs).shape == (2,)
    from agents.evaluate import agent_factory

    name, factory = agent_factory(str(out))
    assert name
    # The checkpoint at step 0 is the BC model, untouched.
    first = load_checkpoint(out / "checkpoints" / "step-00000000.safetensors")
    base = load_checkpoint(bc_checkpoint)
    for key, value in base.model.items():
        torch.testing.assert_close(first.model[key], value, msg=key)


def test_warmup_freezes_the_actor(bc_checkpoint: Path, tmp_path: Path) -> None:
    """While the critic warms up, PPO updates leave the actor exactly as BC made it."""
    out = tmp_path / "frozen"
    config = FinetuneConfig(
        checkpoint=str(bc_checkpoint),
        steps=64,
        envs=1,
        out=str(out),
        n_steps=32,
        batch_size=16,
        warmup_steps=10_000,
        eval_every=0,
        eval_seeds=(1000,),
        eval_route_m=20.0,
        device="cpu",
        progress=False,
    )
    result = finetune(config)
    final = load_checkpoint(result.checkpoint)
    base = load_checkpoint(bc_checkpoint)
    for key, value in base.model.items():
        torch.testing.assert_close(final.model[key], value, msg=key)


def test_config_refuses_eval_towns_in_training() -> None:
    with pytest.raises(ValueError, match="held-out"):
        FinetuneConfig(checkpoint="x", train_towns=(1, 2), eval_seeds=(2,))


def test_cli_parses_finetune() -> None:
    args = build_parser().parse_args(
        [
            "finetune",
            "--checkpoint",
            "runs/bc",
            "--algo",
            "sac",
            "--steps",
            "100",
            "--envs",
            "2",
            "--train-towns",
            "0-9",
            "--env",
            "penalty_collision=10,frame_skip=2",
        ]
    )
    assert args.algo == "sac" and args.envs == 2
    assert args.train_towns == tuple(range(10))
    assert args.env == {"penalty_collision": 10, "frame_skip": 2}
