"""The data and driving pipeline through ``backend="gta5"``: the expert records demonstrations
and a BC checkpoint drives, with the embedded world posing as GTA V under Xvfb (real window,
mss capture, bridge protocol)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from .fakes import TOKEN
from .test_gta5_posing_e2e import free_port, xdisplay  # noqa: F401  (fixture)

SIZES = {"hood": (90, 160), "cinematic": (180, 320)}


@pytest.fixture
def posing_server(xdisplay):  # noqa: F811
    sim = pytest.importorskip("gta_env.sim.game")
    from gta_env.gta5.posing import PosingServer, TkDisplay, screen_size_for

    server = PosingServer(
        token=TOKEN,
        game_factory=lambda: sim.SimGame(sim.SimConfig(cameras=("hood",))),
        display_factory=lambda: TkDisplay(size=screen_size_for([SIZES["hood"]])),
        cameras=("hood",),
        port=free_port(),
    ).start()
    yield server
    server.close()


@pytest.fixture
def gta5_env(posing_server, monkeypatch):
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("GTA5DRIVE_CONTROLLER", "bridge")
    env = gym.make("gta_env:GTA5Drive-v0", backend="gta5", bridge_port=posing_server.port)
    yield env
    env.close()


def test_the_expert_records_demonstrations_through_the_game_path(posing_server, tmp_path):
    from gta_env.env import GTA5DriveEnv
    from gta_env.gta5 import GTA5Config, GTA5Game
    from imitation.record import Recorder
    from imitation.storage import SampleStore, SampleWriter

    # Data collection in the game: the NPC autopilot drives, its controls are the labels.
    game = GTA5Game(
        config=GTA5Config(
            port=posing_server.port,
            token=TOKEN,
            controller="bridge",
            grabber="mss",
            hood_size=SIZES["hood"],
            cameras=("hood",),
            autopilot=True,
        )
    )
    env = GTA5DriveEnv(game=game, backend="gta5")
    with SampleWriter(tmp_path / "data") as writer:
        stats = Recorder(env, writer=writer).record_episode(
            town_seed=4, episode_id=0, seed=0, max_steps=60
        )
    store = SampleStore(tmp_path / "data")
    assert stats.written == len(store) == 60
    batch = store.read_batch(np.arange(60))
    assert batch["hood"].shape == (60, 90, 160, 3) and batch["hood"].std() > 10
    assert np.abs(batch["action"]).sum() > 0  # the game's expert drove
    assert batch["speed"][-1, 0] > 1.0  # and the car moved under its controls
    assert store.verify().ok
    env.close()


def test_a_bc_checkpoint_drives_through_the_game_path(gta5_env, tmp_path):
    from agents.bc import BCAgent
    from imitation.checkpoint import save_checkpoint
    from imitation.models import ModelConfig, model_from_config

    model = model_from_config(ModelConfig(backbone="pilotnet", image_size=(45, 80), dense=64))
    with torch.no_grad():  # a model that always accelerates, straight ahead
        for name, param in model.named_parameters():
            if name.startswith("heads.") and name.endswith((".weight", ".bias")):
                param.zero_()
        model.heads["throttle_brake"].net[-1].bias.fill_(2.0)
    path = save_checkpoint(tmp_path / "run" / "step-00000001.safetensors", model=model, step=1)
    agent = BCAgent.from_checkpoint(path)
    obs, info = gta5_env.reset(seed=0, options={"town_seed": 4})
    agent.reset()
    for _ in range(90):
        action = agent.act(obs, info)
        obs, _, terminated, truncated, info = gta5_env.step(action)
        assert not (terminated or truncated)
    assert action[0] > 0.9
    assert info["backend"] == "gta5" and info["distance"] > 5.0
