"""Weather and time of day change the picture: night lights, rain, fog, dusk."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from gta_env.config import EnvConfig
from gta_env.game import Controls
from gta_env.sim.game import SimConfig, SimGame
from gta_env.sim.weather import WEATHERS, apply_rain, make_weather, rain_streaks

CAMERAS = ("hood", "cinematic")


@pytest.fixture(scope="module")
def game():
    """A town with the car at rest on its lane, 22 m before a street lamp."""
    game = SimGame(SimConfig(cameras=CAMERAS))
    try:
        game.load(2)
        town, car, lights = game.town, game.car, game.street_lights
        assert town is not None and car is not None and lights is not None
        lamp = lights.positions[3]
        lanes = [town.lane_polyline(i, True) for i in range(len(town.roads))]
        lane = min(lanes, key=lambda pts: np.linalg.norm(pts - lamp, axis=1).min())
        s = np.r_[0.0, np.linalg.norm(np.diff(lane, axis=0), axis=1).cumsum()]
        k = int(np.linalg.norm(lane - lamp, axis=1).argmin())
        j = int(np.searchsorted(s, max(s[k] - 22.0, 0.0)))
        d = lane[j + 1] - lane[j]
        car.place(float(lane[j][0]), float(lane[j][1]), float(np.arctan2(-d[0], d[1])))
        for _ in range(10):  # settle on the suspension
            game.step(Controls(throttle=0.0, brake=1.0, steering=0.0))
        yield game
    finally:
        game.close()


def _frames(game: SimGame, weather: str) -> dict[str, np.ndarray]:
    game.set_weather(weather, np.random.default_rng(0))
    return game.render(CAMERAS)


def _brightness(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32).mean(axis=-1)


def test_presets_by_name_random_is_deterministic_and_covers_all():
    assert set(WEATHERS) == {"clear", "overcast", "fog", "dusk", "night", "rain"}
    for name in WEATHERS:
        assert make_weather(name).name == name
        assert EnvConfig(weather=name).weather == name

    def draws(seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [make_weather("random", rng) for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert {w.name for w in draws(7)} == set(WEATHERS)
    assert make_weather("night").lights == 1.0 and 0.0 < make_weather("dusk").lights < 1.0
    assert make_weather("rain").rain > 0.0 and make_weather("clear").lights == 0.0


def test_unknown_weather_raises_naming_the_field():
    with pytest.raises(ValueError, match="weather='sunny'"):
        make_weather("sunny")
    with pytest.raises(ValueError, match="weather='sunny'"):
        EnvConfig(weather="sunny")


def test_night_rain_fog_and_dusk_change_the_picture(game, tmp_path):
    frames = {w: _frames(game, w) for w in ("clear", "dusk", "night", "rain", "fog")}
    for weather, cams in frames.items():
        both = np.concatenate(
            [np.kron(cams["hood"], np.ones((2, 2, 1), np.uint8)), cams["cinematic"]], 1
        )
        iio.imwrite(tmp_path / f"weather_{weather}.png", both)
        assert (tmp_path / f"weather_{weather}.png").stat().st_size > 1000
    for cam in CAMERAS:
        day = _brightness(frames["clear"][cam])
        means = {w: _brightness(f[cam]).mean() for w, f in frames.items()}
        assert means["night"] < 0.55 * means["clear"]
        assert means["night"] < means["dusk"] < means["clear"]
        assert means["rain"] < means["clear"]
        for weather in ("dusk", "night", "rain", "fog"):
            changed = np.abs(_brightness(frames[weather][cam]) - day) > 8
            assert changed.mean() > 0.4, (cam, weather, changed.mean())
    # Rain wets the road: the asphalt right ahead is darker and bluer than by day.
    h, w, _ = frames["clear"]["hood"].shape
    band = (slice(int(h * 0.6), int(h * 0.75)), slice(w // 3, 2 * w // 3))
    dry = np.median(frames["clear"]["hood"][band].reshape(-1, 3).astype(int), axis=0)
    wet = np.median(frames["rain"]["hood"][band].reshape(-1, 3).astype(int), axis=0)
    assert wet.sum() < 0.8 * dry.sum() and wet[2] - wet[0] > dry[2] - dry[0]
    # Night keeps the sky distinguishable from the black of an unlit frame.
    assert _brightness(frames["night"]["hood"][: h // 8]).mean() > 8


def test_street_lamps_glow_and_headlights_light_the_road(game):
    lights, player = game.street_lights, game.player_lights
    night = _frames(game, "night")
    assert not lights.pools.isHidden() and not player.beam.isHidden()
    lights.set_level(0.0)
    unlit_lamps = game.render(CAMERAS)
    lights.set_level(1.0)
    player.set_level(0.0)
    no_headlights = game.render(CAMERAS)
    player.set_level(1.0)
    for cam in CAMERAS:
        # The lamp heads are the brightest things in the upper half of a night frame.
        top = slice(0, night[cam].shape[0] // 2)
        glowing = (night[cam][top].max(axis=-1) > 170).sum()
        assert glowing >= 10 and glowing > 3 * (unlit_lamps[cam][top].max(axis=-1) > 170).sum()
    # The road ahead (lower middle of the hood view) is much brighter with the headlights on.
    h, w, _ = night["hood"].shape
    band = (slice(int(h * 0.55), int(h * 0.8)), slice(w // 3, 2 * w // 3))
    lit = _brightness(night["hood"][band]).mean()
    dark = _brightness(no_headlights["hood"][band]).mean()
    assert lit > dark + 50, (lit, dark)
    # The chase camera sees the beam on the road in front of the car.
    ch, cw, _ = night["cinematic"].shape
    ahead = (slice(int(ch * 0.4), int(ch * 0.52)), slice(int(cw * 0.4), int(cw * 0.6)))
    assert (
        _brightness(night["cinematic"][ahead]).mean()
        > _brightness(no_headlights["cinematic"][ahead]).mean() + 30
    )
    # By day nothing of it is drawn: the picture and its cost are what they were without lamps.
    _frames(game, "clear")
    assert lights.node.isHidden() and player.lamps.isHidden() and player.beam.isHidden()


def test_rain_streaks_fall_between_frames(game):
    layers = rain_streaks(90, 160, 0.03)
    assert all(0.015 < len(layer) / (90 * 160) < 0.045 for layer in layers)
    assert len({layer.tobytes() for layer in layers}) == len(layers)
    img = np.full((90, 160, 3), 40, np.uint8)
    apply_rain(img, layers[0], 220)
    assert (img.reshape(-1, 3)[layers[0]] == 130).all() and (img == 40).sum() > 0.9 * img.size

    game.set_weather("rain", np.random.default_rng(0))
    first = game.render(("hood",))["hood"]
    assert np.array_equal(first, game.render(("hood",))["hood"])  # same frame, same picture
    game.step(Controls(throttle=0.0, brake=1.0, steering=0.0))
    second = game.render(("hood",))["hood"]
    changed = (np.abs(first.astype(int) - second.astype(int)) > 10).any(axis=-1).mean()
    assert 0.02 < changed < 0.15, changed
