"""`GTA5Game` over the bridge against a `Game` posing as GTA V (in-memory screen, fake pad)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from gta_env.game import Controls, Game
from gta_env.gta5 import GTA5Config, GTA5Game
from gta_env.gta5.bridge import BridgeClient, BridgeUnavailable, CommandFailed
from gta_env.gta5.capture import ScreenCapture
from gta_env.gta5.control import FakePad
from gta_env.gta5.game import CameraMismatch, telemetry_from_wire
from gta_env.gta5.posing import MemoryDisplay, MemoryGrabber, PosingServer, screen_size_for, upscale

from .fakes import TOKEN, LineGame, fake_telemetry

SIZES = {"hood": (9, 16), "cinematic": (18, 32)}


@pytest.fixture
def posed():
    """A LineGame behind a PosingServer, and a GTA5Game connected to it."""
    game = LineGame(sizes=SIZES)
    pad = FakePad()
    display = MemoryDisplay(size=screen_size_for(list(SIZES.values())))
    server = PosingServer(
        token=TOKEN, pad=pad, game=game, display=display, cameras=("hood", "cinematic")
    ).start()
    config = GTA5Config(
        port=server.port,
        token=TOKEN,
        controller="fake",
        hood_size=SIZES["hood"],
        cinematic_size=SIZES["cinematic"],
        cameras=("hood", "cinematic"),
        weather=None,
        hour=None,
    )
    client = BridgeClient(port=server.port, token=TOKEN)
    assert client.connect()["window"] == {"left": 0, "top": 0, "width": 32, "height": 18}
    capture = ScreenCapture(region=display.region, grabber=MemoryGrabber(display))
    gta = GTA5Game(config=config, client=client, capture=capture, pad=pad)
    yield gta, game, server, pad
    gta.close()
    server.close()


def test_gta5_game_satisfies_the_protocol(posed):
    gta, *_ = posed
    assert isinstance(gta, Game)
    assert gta.name == "gta5"


def test_load_step_and_telemetry(posed):
    gta, game, server, pad = posed
    gta.load(12)
    assert game.loaded_seed == 12 and server.paused
    t = gta.step(Controls(1.0, 0.0, 0.25))
    assert game.applied[-1] == Controls(1.0, 0.0, 0.25), "the fake pad's state reached the game"
    assert t.frame == 1 and t.speed == pytest.approx(0.3)
    assert t.heading == pytest.approx(-math.pi / 2)
    assert t.route_remaining == pytest.approx(105.0)
    for _ in range(2):
        t = gta.step(Controls(0.0, 0.0, 0.0))
    assert t.collisions[0].other == "pole" and t.collisions[0].kind == "static"
    assert gta.telemetry() == t
    assert gta.expert_action() is None, "no NPC is driving"


def test_frames_match_what_the_world_rendered_per_camera(posed):
    gta, game, server, _ = posed
    gta.load(0)
    for _ in range(5):
        gta.step(Controls(0.5, 0.0, 0.0))
        frames = gta.render(("hood", "cinematic"))
        expected = game.render(("hood", "cinematic"))
        for camera in ("hood", "cinematic"):
            assert frames[camera].shape == (*SIZES[camera], 3)
            np.testing.assert_array_equal(frames[camera], expected[camera])
    assert gta.camera_mismatches == 0


def test_camera_mismatch_is_retried_then_reported(posed, monkeypatch):
    gta, game, server, _ = posed
    gta.load(0)
    real = server.handle_set_camera

    def stubborn(camera):  # a game that keeps showing the hood camera
        return real("hood")

    monkeypatch.setattr(server, "handle_set_camera", stubborn)
    with pytest.raises(CameraMismatch, match="cinematic"):
        gta.render(("cinematic",))
    assert gta.camera_mismatches == gta.config.camera_retries


def test_autopilot_gives_the_npc_controls_as_expert(posed):
    gta = GTA5Game(
        config=GTA5Config(**{**posed[0].config.__dict__, "autopilot": True}),
        client=BridgeClient(port=posed[2].port, token=TOKEN),
        capture=posed[0].capture,
        pad=posed[3],
    )
    game = posed[1]
    gta.load(3)
    purpose = gta.new_purpose(np.random.default_rng(0))
    assert purpose == game.purpose
    gta.step(Controls(0.0, 1.0, 0.0))  # the NPC drives; the pad is ignored
    assert game.applied[-1] == Controls(0.5, 0.0, 0.1)
    assert gta.expert_action() == Controls(0.5, 0.0, 0.1)
    gta.close()


def test_teleport_and_fade(posed):
    gta, game, server, _ = posed
    gta.load(0)
    gta.set_fade(1.0)
    assert game.fade == 1.0
    assert not gta.render(("hood",))["hood"].any(), "a faded screen is black"
    gta.teleport(np.random.default_rng(1))
    gta.set_fade(0.0)
    assert gta.telemetry().position[0] == game.x
    assert gta.render(("hood",))["hood"].any()


def test_weather_presets_and_unsupported_commands(posed):
    gta, *_ = posed
    gta.load(0)
    assert gta.set_weather("fog", np.random.default_rng(0)) == "fog"
    assert posed[1].weather == "fog"
    assert gta.set_weather("night", np.random.default_rng(0)) == "night"
    assert posed[1].weather == "night"
    with pytest.raises(ValueError, match="weather="):
        gta.set_weather("sunny", np.random.default_rng(0))
    with pytest.raises(CommandFailed, match="random road spots"):
        gta.client.request("teleport", x=1.0, y=2.0)
    with pytest.raises(ValueError, match="not enabled"):
        gta.render(("extra",))


def test_commands_before_reset_are_refused():
    with PosingServer(token=TOKEN, pad=FakePad(), game=LineGame()) as server:
        client = BridgeClient(port=server.port, token=TOKEN)
        with pytest.raises(CommandFailed, match="send 'reset' first"):
            client.request("step")
        client.close()


def test_game_factory_runs_on_the_dispatch_thread_and_is_closed():
    import threading

    seen: dict[str, Any] = {}

    def factory():
        seen["thread"] = threading.current_thread().name
        seen["game"] = LineGame()
        return seen["game"]

    with PosingServer(token=TOKEN, pad=FakePad(), game_factory=factory):
        pass
    assert seen["thread"] == "bridge-dispatch" and seen["game"].closed
    with pytest.raises(ValueError, match="exactly one"):
        PosingServer(token=TOKEN, pad=FakePad())


def test_no_bridge_gives_the_documented_error():
    with pytest.raises(BridgeUnavailable, match="gta5drive mod"):
        GTA5Game(config=GTA5Config(port=1, token=TOKEN, connect_timeout=0.2, controller="fake"))


def test_config_validation():
    with pytest.raises(ValueError, match="GTA5Config.cameras"):
        GTA5Config(cameras=("drone",))
    with pytest.raises(ValueError, match="GTA5Config.weather"):
        GTA5Config(weather="SUNNY")
    with pytest.raises(ValueError, match="GTA5Config.controller"):
        GTA5Config(controller="wheel")


def test_telemetry_conversion_conventions():
    wire = fake_telemetry(frame=4)
    wire["heading_deg"] = 270.0
    wire["purpose"] = None
    wire["route_remaining"] = -1.0
    wire["collisions"] = [{"kind": "ped", "other": "ped", "impulse": 1.0}]
    t = telemetry_from_wire(wire)
    assert t.heading == pytest.approx(-math.pi / 2)
    assert t.purpose == t.position and t.route_remaining == 0.0
    assert t.collisions[0].kind == "vehicle" and t.collisions[0].other == "pedestrian"


def test_upscale_then_area_resize_is_lossless():
    from gta_env.gta5.capture import resize_frame

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_frame(upscale(frame, (18, 32)), (9, 16)), frame)
    assert screen_size_for([(90, 160), (180, 320)]) == (180, 320)
    with pytest.raises(ValueError, match="least common multiple"):
        screen_size_for([(1000, 1001), (999, 1003)])
