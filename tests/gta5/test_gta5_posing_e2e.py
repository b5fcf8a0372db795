"""End to end under Xvfb: the embedded world posing as GTA V in a real X window, captured by mss.

Needs ``Xvfb`` (``apt-get install -y xvfb``), tkinter and mss; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

from gta_env.game import Controls
from gta_env.gta5 import GTA5Config, GTA5Game
from gta_env.gta5.posing import PosingServer, TkDisplay, screen_size_for

from .fakes import TOKEN, LineGame


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def xdisplay():
    pytest.importorskip("mss")
    pytest.importorskip("tkinter")
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb: apt-get install -y xvfb")
    number = 90 + os.getpid() % 100
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield f":{number}"
    if old is None:
        del os.environ["DISPLAY"]
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(timeout=10)


def posing_pair(game_factory, sizes, *, cameras=("hood", "cinematic")):
    screen = screen_size_for([sizes[c] for c in cameras])
    server = PosingServer(
        token=TOKEN,
        game_factory=game_factory,
        display_factory=lambda: TkDisplay(size=screen),
        cameras=cameras,
        port=free_port(),
    ).start()
    config = GTA5Config(
        port=server.port,
        token=TOKEN,
        controller="bridge",
        grabber="mss",
        hood_size=sizes["hood"],
        cinematic_size=sizes["cinematic"],
        cameras=cameras,
    )
    return server, GTA5Game(config=config)


def test_captured_frames_match_the_window_pixel_for_pixel(xdisplay):
    sizes = {"hood": (9, 16), "cinematic": (18, 32)}
    holder: dict[str, LineGame] = {}

    def factory():
        holder["game"] = LineGame(sizes=sizes)
        return holder["game"]

    server, gta = posing_pair(factory, sizes)
    try:
        gta.load(1)
        for _ in range(4):
            gta.step(Controls(0.5, 0.0, 0.2))
            frames = gta.render(("hood", "cinematic"))
            expected = holder["game"].render(("hood", "cinematic"))
            for camera in ("hood", "cinematic"):
                np.testing.assert_array_equal(frames[camera], expected[camera])
        assert holder["game"].applied[-1] == Controls(0.5, 0.0, 0.2), (
            "bridge controls reached the game"
        )
        assert gta.capture_fps > 0
    finally:
        gta.close()
        server.close()


def test_gym_make_gta5_backend_runs_on_the_posing_world(xdisplay, monkeypatch):
    sim = pytest.importorskip("gta_env.sim.game")
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    sizes = {"hood": (90, 160), "cinematic": (180, 320)}
    config = sim.SimConfig(cameras=("hood", "cinematic"))
    server = PosingServer(
        token=TOKEN,
        game_factory=lambda: sim.SimGame(config),
        display_factory=lambda: TkDisplay(size=screen_size_for(list(sizes.values()))),
        cameras=("hood", "cinematic"),
        port=free_port(),
    ).start()
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("GTA5DRIVE_CONTROLLER", "bridge")
    try:
        env = gym.make(
            "gta_env:GTA5Drive-v0", backend="gta5", bridge_port=server.port, cinematic=True
        )
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=3)
        assert info["backend"] == "gta5"
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                obs, info = env.reset()
        assert obs["hood"].shape == (90, 160, 3) and obs["cinematic"].shape == (180, 320, 3)
        env.close()
    finally:
        server.close()


def _posing_sim_server(sizes):
    sim = pytest.importorskip("gta_env.sim.game")
    config = sim.SimConfig(cameras=("hood",))
    return PosingServer(
        token=TOKEN,
        game_factory=lambda: sim.SimGame(config),
        display_factory=lambda: TkDisplay(size=sizes),
        cameras=("hood",),
        port=free_port(),
    ).start()


def test_gym_make_gta5_with_autopilot_reports_the_npc_expert(xdisplay, monkeypatch):
    import gymnasium as gym

    server = _posing_sim_server((90, 160))
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("GTA5DRIVE_CONTROLLER", "bridge")
    try:
        env = gym.make(
            "gta_env:GTA5Drive-v0", backend="gta5", bridge_port=server.port, autopilot=True
        )
        _, info = env.reset(seed=5)
        labels = []
        for _ in range(10):
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            labels.append(info.get("expert_action"))
            if terminated or truncated:
                break
        env.close()
    finally:
        server.close()
    assert info["backend"] == "gta5"
    assert all(label is not None for label in labels), "every step carries the NPC's action"
    assert np.asarray(labels[-1]).shape == (2,)


def test_collect_records_labels_through_the_game_backend(xdisplay, monkeypatch, tmp_path):
    from imitation.collect import CollectConfig, collect
    from imitation.noise import NoiseConfig
    from imitation.storage import SampleStore

    server = _posing_sim_server((90, 160))
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("GTA5DRIVE_CONTROLLER", "bridge")
    try:
        result = collect(
            CollectConfig(
                out=tmp_path / "store",
                samples=12,
                backend="gta5",
                noise=NoiseConfig.parse("off"),
                traffic=0,
                weather="clear",
                episode_steps=12,
                env_kwargs=(("bridge_port", server.port),),
            ),
            progress=False,
        )
    finally:
        server.close()
    assert result.ok, [w.error for w in result.workers]
    assert result.samples_after - result.samples_before >= 12
    store = SampleStore(tmp_path / "store")
    assert len(store) >= 12, "the NPC's labels were recorded"
