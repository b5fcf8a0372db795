"""The Gymnasium contract of GTA5Drive-v0 on the embedded world."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gta_env
from gta_env.env import BackendFallbackWarning, GTA5DriveEnv


def test_make_falls_back_to_the_embedded_world_with_one_warning():
    gta_env.env._fallback_warned = False  # a fresh process would start like this
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make("GTA5Drive-v0")
        env2 = gym.make("gta_env:GTA5Drive-v0")
    try:
        fallback = [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
        assert len(fallback) == 1
        assert "backend='sim'" in str(fallback[0].message)
        _, info = env.reset(seed=0)
        assert info["backend"] == "sim"
        assert env.spec is not None and env.spec.max_episode_steps == 3600
    finally:
        env.close()
        env2.close()


@pytest.mark.parametrize("cinematic", [False, True])
def test_gymnasium_and_sb3_checkers_pass_without_warnings(make_env, cinematic):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env(cinematic=cinematic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=True)
    assert [str(w.message) for w in caught] == []
    obs, _ = env.reset(seed=1)
    assert set(obs) == (
        {"hood", "cinematic", "purpose", "speed"} if cinematic else {"hood", "purpose", "speed"}
    )
    if cinematic:
        assert obs["cinematic"].shape == (180, 320, 3)


def test_spaces_and_presets(make_env):
    env = make_env(hood_size="original", action_mode="separate")
    obs, _ = env.reset(seed=0)
    assert obs["hood"].shape == (270, 480, 3) and obs["hood"].dtype == np.uint8
    assert env.action_space.shape == (3,)
    assert obs["purpose"].dtype == np.float32 and obs["purpose"].shape == (3,)
    assert np.isclose(np.hypot(obs["purpose"][1], obs["purpose"][2]), 1.0, atol=1e-5)


def test_async_vector_env_steps():
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make("GTA5Drive-v0", backend="sim") for _ in range(2)]
    )
    try:
        obs, _ = envs.reset(seed=[0, 1])
        assert obs["hood"].shape == (2, 90, 160, 3)
        for _ in range(3):
            obs, reward, term, trunc, info = envs.step(envs.action_space.sample())
        assert reward.shape == (2,)
        assert not np.array_equal(obs["hood"][0], obs["hood"][1])
    finally:
        envs.close()


def _rollout(env, seed, steps=200):
    obs, info = env.reset(seed=seed)
    frames, rewards = [obs["hood"].copy()], []
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = np.clip(info["expert_action"] + rng.normal(0, 0.2, 2), -1, 1).astype(np.float32)
        obs, reward, _, _, info = env.step(action)
        frames.append(obs["hood"].copy())
        rewards.append(reward)
    return np.stack(frames), np.array(rewards)


def test_same_seed_same_observations_and_rewards(make_env):
    a_frames, a_rewards = _rollout(make_env(), seed=7)
    b_frames, b_rewards = _rollout(make_env(), seed=7)
    assert np.array_equal(a_frames, b_frames)
    assert np.array_equal(a_rewards, b_rewards)
    assert a_rewards.sum() > 0  # the noisy expert makes progress


def test_different_seeds_give_different_towns(make_env):
    env = make_env()
    env.reset(seed=1)
    town_a = env.unwrapped.game.town
    nodes_a = town_a.nodes.copy()
    env.reset(seed=2)
    town_b = env.unwrapped.game.town
    assert town_a.seed != town_b.seed
    assert not np.allclose(nodes_a, town_b.nodes)


def test_two_envs_in_one_process_do_not_share_state(make_env):
    a, b = make_env(town_seed=5), make_env(town_seed=5)
    obs_a, _ = a.reset(seed=0)
    obs_b, _ = b.reset(seed=0)
    assert np.array_equal(obs_a["hood"], obs_b["hood"])
    for _ in range(30):
        obs_a, *_ = a.step(np.array([1.0, 0.0], np.float32))
    obs_b2, *_ = b.step(np.array([0.0, 0.0], np.float32))
    # b barely moved, a drove 30 frames: b's picture is still (almost) its start picture.
    assert a.unwrapped.game.root is not b.unwrapped.game.root
    assert np.abs(obs_b2["hood"].astype(int) - obs_b["hood"]).mean() < 2
    assert np.abs(obs_a["hood"].astype(int) - obs_b["hood"]).mean() > 2


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.array([np.nan, 0.0], np.float32), "NaN"),
        (np.array([0.5, np.inf], np.float32), "NaN or inf"),
        (np.zeros(3, np.float32), "shape (2,)"),
        (np.zeros((1, 2), np.float32), "shape (2,)"),
        ("fast", "numeric"),
        ("0.5", "numeric"),
        (np.array(["0.5", "0.1"]), "numeric"),
        ([True, False], "numeric"),
    ],
)
def test_bad_actions_raise_clear_errors(make_env, action, message):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        env.step(action)
    env.step(np.zeros(2, np.float32))  # the env is still usable


def test_out_of_range_actions_are_clipped(make_env):
    a, b = make_env(town_seed=4), make_env(town_seed=4)
    a.reset(seed=0)
    b.reset(seed=0)
    for _ in range(20):
        obs_a, *_ = a.step(np.array([5.0, -3.0], np.float32))
        obs_b, *_ = b.step(np.array([1.0, -1.0], np.float32))
    assert np.array_equal(obs_a["hood"], obs_b["hood"])


def test_bad_config_values_name_the_key():
    with pytest.raises(ValueError, match="unknown GTA5Drive-v0 argument.*'colour'"):
        gym.make("GTA5Drive-v0", backend="sim", colour="red")
    with pytest.raises(ValueError, match="on_stuck"):
        gym.make("GTA5Drive-v0", backend="sim", on_stuck="explode")
    with pytest.raises(ValueError, match="hood_size"):
        gym.make("GTA5Drive-v0", backend="sim", hood_size=(5, 5))
    with pytest.raises(ValueError, match="frame_skip"):
        gym.make("GTA5Drive-v0", backend="sim", frame_skip=0)
    with pytest.raises(ValueError, match="bridge_host"):
        gym.make("GTA5Drive-v0", backend="sim", bridge_host="10.0.0.1")
    with pytest.raises(ValueError, match="render_mode"):
        GTA5DriveEnv(render_mode="human", backend="sim")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("frame_skip", 10**7),
        ("frame_skip", 2.0),
        ("frame_skip", True),
        ("stuck_window", 1e300),
        ("stuck_window", float("nan")),
        ("stuck_window", "8"),
        ("bridge_port", -1),
        ("bridge_port", 99999),
        ("bridge_port", "x"),
        ("bridge_port", 0),
        ("hood_size", (90.5, 160)),
        ("hood_size", ("90", "160")),
        ("hood_size", (90, 160, 3)),
        ("cinematic_size", (16, 10**6)),
        ("town_seed", 1.7),
        ("town_seed", -1),
        ("town_seed", 2**64),
        ("town_grid", 13),
        ("traffic", 10**6),
        ("pedestrians", -1),
        ("fade_frames", 10**9),
        ("max_speed", 0),
        ("penalty_stuck", -1.0),
        ("reward_progress", 1e12),
        ("bridge_timeout", 3600.0),
        ("purpose_radius", None),
        ("weather", 3),
        ("backend", ["sim"]),
        ("cinematic", 1),
    ],
)
def test_out_of_range_and_wrong_type_config_values_name_the_field(field, value):
    from gta_env.config import EnvConfig

    with pytest.raises(ValueError, match=field):
        EnvConfig(**{field: value})


def test_config_sections_hold_every_field_once():
    import dataclasses

    from gta_env.config import INT_RANGES, NUMBER_RANGES, SECTIONS, EnvConfig

    listed = [name for names in SECTIONS.values() for name in names]
    assert sorted(listed) == sorted(f.name for f in dataclasses.fields(EnvConfig))
    assert set(INT_RANGES) | set(NUMBER_RANGES) <= set(listed)
    EnvConfig(bridge_port=65535, frame_skip=300, stuck_window=600.0, town_seed=2**63 - 1)


def test_reset_town_seed_option_must_be_an_integer(make_env):
    env = make_env()
    for bad in (1.7, "3", -1, True):
        with pytest.raises(ValueError, match="town_seed"):
            env.reset(seed=0, options={"town_seed": bad})
    env.reset(seed=0, options={"town_seed": 3})


def test_gta5_backend_without_game_says_what_to_start():
    with pytest.raises(RuntimeError, match="Start GTA5.*backend='sim'"):
        gym.make("GTA5Drive-v0", backend="gta5", bridge_port=9, bridge_timeout=0.05)


def _drive_into_something(env, steps=3000):
    """Full throttle, wheel straight: leaves the road and ends against something solid."""
    history = []
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(np.array([1.0, 0.0], np.float32))
        history.append((obs, reward, term, trunc, info))
        if term or trunc or (info["unstucks"] and info["unstuck_phase"] is None):
            break
    return history


def test_stuck_car_fades_out_teleports_fades_in_and_continues(make_env):
    env = make_env(town_seed=3)
    env.reset(seed=0)
    history = _drive_into_something(env)
    infos = [h[4] for h in history]
    assert any(e["kind"] == "collision" for i in infos for e in i["events"])
    stuck_at = next(
        k for k, i in enumerate(infos) if any(e["kind"] == "stuck" for e in i["events"])
    )
    assert history[stuck_at][1] < 0  # the stuck penalty
    fade_out = [h[0]["hood"].mean() for h in history if h[4]["unstuck_phase"] == "fade_out"]
    fade_in = [h[0]["hood"].mean() for h in history if h[4]["unstuck_phase"] == "fade_in"]
    assert len(fade_out) == 10 and len(fade_in) == 10  # fade_frames each way
    assert all(np.diff(fade_out) < 0), "the picture darkens step by step"
    assert min(fade_in) < 3.0, "the screen goes black around the teleport"
    assert all(np.diff(fade_in) > 0), "and brightens again"
    before = infos[stuck_at]["position"]
    after = infos[-1]["position"]
    assert infos[-1]["unstucks"] == 1 and np.hypot(*(after - before)) > 5
    assert infos[-1]["on_road"]
    obs, *_, info = env.step(np.array([1.0, 0.0], np.float32))  # and it goes on
    assert info["unstuck_phase"] is None and obs["hood"].mean() > 20


def test_on_stuck_truncate_ends_the_episode(make_env):
    env = make_env(town_seed=3, on_stuck="truncate")
    env.reset(seed=0)
    history = _drive_into_something(env)
    _, _, term, trunc, info = history[-1]
    assert trunc and not term
    assert any(e["kind"] == "stuck" for e in info["events"])
    assert info["unstucks"] == 0


def test_terminate_on_collision(make_env):
    env = make_env(town_seed=3, terminate_on_collision=True)
    env.reset(seed=0)
    _, _, term, trunc, info = _drive_into_something(env)[-1]
    assert term and not trunc
    assert any(e["kind"] == "collision" for e in info["events"])


def test_reaching_a_purpose_point_chains_to_the_next(make_env):
    env = make_env(town_seed=0)
    obs, info = env.reset(seed=0)
    first = info["purpose_point"].copy()
    total = 0.0
    for _ in range(3600):
        obs, reward, _, _, info = env.step(info["expert_action"])
        total += reward
        if info["purposes_reached"]:
            break
    assert info["purposes_reached"] == 1
    assert not np.allclose(info["purpose_point"], first)
    assert total > 10.0
    assert info["collisions"] == 0 and info["off_road_frames"] == 0


def test_frame_skip_advances_several_frames(make_env):
    env = make_env(frame_skip=3)
    _, info0 = env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["frame"] - info0["frame"] == 3


def test_render_returns_the_chase_camera(make_env):
    env = make_env(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8
    assert "cinematic" not in obs


def test_reset_option_picks_the_town(make_env):
    env = make_env()
    _, info = env.reset(seed=0, options={"town_seed": 42})
    assert info["town_seed"] == 42
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"weather": "rain"})


def test_gl_renderer_renders_or_says_what_to_use(make_env):
    try:
        env = make_env(renderer="gl")
    except RuntimeError as exc:  # no EGL here: the error names the working alternative
        assert "renderer='software'" in str(exc)
        return
    obs, _ = env.reset(seed=0)
    assert obs["hood"].std() > 10


def test_route_purpose_points_along_the_planned_route(make_env):
    """purpose_mode="route": the bearing is that of the route point ahead, the distance unchanged."""
    point_env = make_env(town_seed=5, purpose_mode="point")
    route_env = make_env(town_seed=5, purpose_mode="route", purpose_lookahead=20.0)
    obs_p, info_p = point_env.reset(seed=1)
    obs_r, info_r = route_env.reset(seed=1)
    assert np.allclose(info_p["purpose_point"], info_r["purpose_point"])
    assert obs_p["purpose"][0] == pytest.approx(obs_r["purpose"][0])
    bearings = []
    for _ in range(900):
        obs_r, _, _, _, info_r = route_env.step(info_r["expert_action"])
        game = route_env.unwrapped.game
        ahead = np.array(game.route_point(20.0))
        pos, heading = np.array(info_r["position"]), info_r["heading"]
        d = ahead - pos
        right = d[0] * np.cos(heading) + d[1] * np.sin(heading)
        forward = -d[0] * np.sin(heading) + d[1] * np.cos(heading)
        expected = np.arctan2(right, forward)
        got = np.arctan2(obs_r["purpose"][1], obs_r["purpose"][2])
        assert got == pytest.approx(expected, abs=1e-4)
        bearings.append(got)
    # the expert follows the route, so the route arrow stays near ahead and swings at turns
    assert np.median(np.abs(bearings)) < 0.2
    assert np.max(np.abs(bearings)) > 0.3


def test_route_purpose_needs_a_backend_with_a_route():
    from tests.gta5.fakes import LineGame

    env = GTA5DriveEnv(game=LineGame(), purpose_mode="route")
    with pytest.raises(RuntimeError, match="purpose_mode='route'"):
        env.reset(seed=0)
    env.close()
    # "auto" (the default) falls back to the bearing of the purpose point itself
    auto = GTA5DriveEnv(game=LineGame())
    point = GTA5DriveEnv(game=LineGame(), purpose_mode="point")
    assert np.allclose(auto.reset(seed=0)[0]["purpose"], point.reset(seed=0)[0]["purpose"])
    auto.close()
    point.close()


def test_auto_purpose_is_the_route_on_the_embedded_world(make_env):
    auto, route = make_env(town_seed=2), make_env(town_seed=2, purpose_mode="route")
    a, r = auto.reset(seed=0)[0], route.reset(seed=0)[0]
    assert np.allclose(a["purpose"], r["purpose"])


@pytest.mark.parametrize("frame_skip", [1, 2, 3])
def test_render_fps_is_game_time(frame_skip):
    """RecordVideo reads metadata['render_fps']: with frame_skip 2 a video must not play 2x."""
    env = gym.make("GTA5Drive-v0", backend="sim", frame_skip=frame_skip, hood_size=(45, 80))
    try:
        assert env.metadata["render_fps"] == pytest.approx(30 / frame_skip)
        assert env.unwrapped.metadata["render_fps"] == pytest.approx(30 / frame_skip)
    finally:
        env.close()
    # Per instance: the class (and so every other env) keeps its own value.
    assert GTA5DriveEnv.metadata["render_fps"] == 30


def test_small_variant_is_registered_for_id_only_tools():
    env = gym.make("GTA5DriveSmall-v0")
    try:
        assert env.observation_space["hood"].shape == (45, 80, 3)
        assert env.spec is not None and env.spec.max_episode_steps == 1000
        _, info = env.reset(seed=0)
        assert info["backend"] == "sim"
    finally:
        env.close()
    # Its settings are defaults: gym.make's kwargs still win; the module prefix form works too.
    env = gym.make("gta_env:GTA5DriveSmall-v0", hood_size=(32, 48), max_episode_steps=10)
    try:
        assert env.observation_space["hood"].shape == (32, 48, 3)
        assert env.spec is not None and env.spec.max_episode_steps == 10
    finally:
        env.close()
