"""The batched vector env: Gymnasium's vector contract, and the same towns as single envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import gta_env  # noqa: F401  (registers GTA5Drive-v0)
from gta_env.sim import render
from gta_env.vector import GTA5DriveVectorEnv

SMALL = {"backend": "sim", "hood_size": (45, 80), "town_grid": 3}


def _vec(num_envs, **kwargs):
    return gym.make_vec(
        "GTA5Drive-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        **{**SMALL, **kwargs},
    )


def _sync(num_envs, **kwargs):
    return gym.make_vec(
        "GTA5Drive-v0", num_envs=num_envs, vectorization_mode="sync", **{**SMALL, **kwargs}
    )


def _same(a, b):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_make_vec_gives_a_native_vector_env_with_batched_spaces():
    envs = _vec(3, cinematic=True, cinematic_size=(45, 80))
    try:
        assert isinstance(envs.unwrapped, GTA5DriveVectorEnv)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        single = gym.make("GTA5Drive-v0", **SMALL, cinematic=True, cinematic_size=(45, 80))
        assert envs.single_observation_space == single.observation_space
        assert envs.single_action_space == single.action_space
        single.close()
        obs, info = envs.reset(seed=0)
        assert obs in envs.observation_space
        assert obs["hood"].shape == (3, 45, 80, 3) and obs["hood"].dtype == np.uint8
        assert obs["cinematic"].shape == (3, 45, 80, 3)
        assert obs["purpose"].dtype == np.float32 and obs["speed"].shape == (3, 1)
        assert info["town_seed"].shape == (3,) and info["_town_seed"].all()
        assert info["backend"].dtype == object and list(info["backend"]) == ["sim"] * 3
        envs.action_space.seed(0)
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert obs in envs.observation_space
        assert reward.shape == (3,) and reward.dtype == np.float64
        assert terminated.dtype == bool and truncated.shape == (3,)
        assert info["expert_action"].shape == (3, 2) and info["_expert_action"].all()
    finally:
        envs.close()


def test_same_observations_rewards_and_autoresets_as_single_envs():
    """Bit for bit on the software renderer, across a NEXT_STEP autoreset (episodes of 4)."""
    kwargs = {"cinematic": True, "cinematic_size": (45, 80), "traffic": 2, "max_episode_steps": 4}
    vec, sync = _vec(3, **kwargs), _sync(3, **kwargs)
    try:
        tiles = vec.unwrapped.tiles
        ov, iv = vec.reset(seed=11)
        os_, is_ = sync.reset(seed=11)
        _same(ov, os_)
        np.testing.assert_array_equal(iv["town_seed"], is_["town_seed"])
        rng = np.random.default_rng(0)
        for t in range(10):
            passes = tiles.passes
            action = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
            ov, rv, tv, uv, iv = vec.step(action)
            os_, rs, ts, us, is_ = sync.step(action)
            assert tiles.passes == passes + 1  # one render pass per step, for all towns
            _same(ov, os_)
            np.testing.assert_array_equal(rv, rs)
            np.testing.assert_array_equal(tv, ts)
            np.testing.assert_array_equal(uv, us)
            for key in ("town_seed", "frame", "position", "distance", "expert_action"):
                np.testing.assert_array_equal(iv[key], is_[key], err_msg=key)
            if t in (4, 9):  # the step after each truncation resets: reward 0, flags down
                assert not uv.any() and (rv == 0).all() and (iv["frame"] == 0).all()
            if t in (3, 8):
                assert uv.all()
    finally:
        vec.close()
        sync.close()


def test_towns_share_no_state_and_one_town_works():
    """Two copies of one town driven apart; each matches a batch of one driven the same way."""
    pair, solo = _vec(2), _vec(1)
    try:
        obs, _ = pair.reset(seed=[5, 5])
        solo_obs, _ = solo.reset(seed=5)
        np.testing.assert_array_equal(obs["hood"][1], solo_obs["hood"][0])
        go, stop = np.array([1.0, 0.3], np.float32), np.array([-1.0, 0.0], np.float32)
        for _ in range(15):
            obs, *_ = pair.step(np.stack([go, stop]))
            solo_obs, *_ = solo.step(stop[None])
        np.testing.assert_array_equal(obs["hood"][1], solo_obs["hood"][0])
        assert not np.array_equal(obs["hood"][0], obs["hood"][1])
        assert obs["speed"][0, 0] > 1.0 > obs["speed"][1, 0]
    finally:
        pair.close()
        solo.close()


def test_disabled_autoreset_resets_only_the_masked_towns():
    envs = _vec(2, autoreset_mode="disabled", max_episode_steps=2)
    try:
        assert envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
        envs.reset(seed=3)
        act = np.zeros((2, 2), np.float32)
        envs.step(act)
        _, _, _, truncated, info = envs.step(act)
        assert truncated.all()
        _, info = envs.reset(options={"reset_mask": np.array([True, False])})
        assert list(info["_frame"]) == [True, False] and info["frame"][0] == 0
        with pytest.raises(ValueError, match="reset_mask"):
            envs.reset(options={"reset_mask": np.array([1, 0])})
    finally:
        envs.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "backend": "gta5"}, "gta5"),
        ({"num_envs": 2, "autoreset_mode": "sometimes"}, "autoreset_mode"),
        ({"num_envs": 2, "max_episode_steps": 0}, "max_episode_steps"),
        ({"num_envs": 2, "hood_size": (0, 3)}, "hood_size"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GTA5DriveVectorEnv(**kwargs)


def test_step_checks_the_action_batch():
    envs = _vec(2)
    try:
        with pytest.raises(RuntimeError, match="reset"):
            envs.step(np.zeros((2, 2), np.float32))
        envs.reset(seed=0)
        with pytest.raises(ValueError, match=r"\(2, 2\)"):
            envs.step(np.zeros((3, 2), np.float32))
    finally:
        envs.close()


def test_tile_layout_keeps_tiles_apart_and_inside_the_buffer():
    sizes = {"hood": (90, 160), "cinematic": (180, 320)}
    for slots in (1, 2, 7, 64, 256):
        origins, width, height = render._tile_layout(slots, sizes)
        boxes = []
        for (_, name), (x, y) in origins.items():
            h, w = sizes[name]
            assert x >= 0 and x + w <= width and y >= 0 and y + h <= height
            boxes.append((x, y, x + w, y + h))
        boxes.sort()
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                if b[0] >= a[2]:
                    break
                assert b[1] >= a[3] or a[1] >= b[3], (a, b)
        assert len(origins) == 2 * slots


def test_gl_renderer_opens_or_fails_naming_the_software_renderer(monkeypatch):
    """Where EGL is missing the 'gl' renderer fails clearly; where it exists it renders."""
    try:
        pipe = render.get_pipe("gl")
    except RuntimeError as err:
        assert "renderer='software'" in str(err)
    else:
        assert pipe.isValid()
    monkeypatch.setattr(render, "_pipes", {})
    monkeypatch.setitem(render._PIPE_TYPES, "gl", "noSuchGraphicsPipe")
    with pytest.raises(RuntimeError, match="renderer='software'"):
        render.get_pipe("gl")
    with pytest.raises(ValueError, match="renderer must be one of"):
        render.get_pipe("vulkan")


def test_worker_processes_give_the_same_towns_as_one_batch():
    from gta_env.multiproc import ProcessBatchVectorEnv

    procs = ProcessBatchVectorEnv(workers=2, envs_per_worker=2, max_episode_steps=3, **SMALL)
    one = _vec(4, max_episode_steps=3)
    try:
        assert procs.num_envs == 4 and procs.observation_space == one.observation_space
        _same(procs.reset(seed=21)[0], one.reset(seed=21)[0])
        rng = np.random.default_rng(1)
        for _ in range(4):
            action = rng.uniform(-1, 1, (4, 2)).astype(np.float32)
            op, rp, _, up, ip = procs.step(action)
            oo, ro, _, uo, io = one.step(action)
            _same(op, oo)
            np.testing.assert_array_equal(rp, ro)
            np.testing.assert_array_equal(up, uo)
            np.testing.assert_array_equal(ip["position"], io["position"])
            np.testing.assert_array_equal(ip["_position"], io["_position"])
    finally:
        procs.close()
        one.close()


def test_same_step_autoreset_matches_sync_vector_env():
    """SAME_STEP (CleanRL's mode): the reset observation at once, the last one in final_obs."""
    vec = _vec(2, max_episode_steps=3, autoreset_mode="same_step")
    sync = _sync(2, vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, max_episode_steps=3)
    try:
        assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        _same(vec.reset(seed=4)[0], sync.reset(seed=4)[0])
        act = np.full((2, 2), 0.5, np.float32)
        for t in range(4):
            ov, rv, _, uv, iv = vec.step(act)
            os_, rs, _, us, is_ = sync.step(act)
            _same(ov, os_)
            np.testing.assert_array_equal(rv, rs)
            np.testing.assert_array_equal(uv, us)
            np.testing.assert_array_equal(iv["frame"], is_["frame"])
            if t == 2:
                assert uv.all() and (iv["frame"] == 0).all()
                for i in range(2):
                    _same(iv["final_obs"][i], is_["final_obs"][i])
                np.testing.assert_array_equal(
                    iv["final_info"]["distance"], is_["final_info"]["distance"]
                )
            else:
                assert "final_obs" not in iv
    finally:
        vec.close()
        sync.close()


def test_a_world_on_a_tile_slot_renders_alone_what_its_own_renderer_does():
    """A lone SimGame on a shared TiledRenderer re-renders when it has read the last pass."""
    from gta_env.game import Controls
    from gta_env.sim.game import SimConfig, SimGame
    from gta_env.sim.town import TownConfig

    cfg = SimConfig(town=TownConfig(grid=(3, 3)), hood_size=(45, 80))
    tiles = render.TiledRenderer(slots=2, cameras={"hood": (45, 80)})
    tiled, own = SimGame(cfg, renderer=tiles.slot(1)), SimGame(cfg)
    try:
        for g in (tiled, own):
            g.load(9)
        for _ in range(3):
            for g in (tiled, own):
                g.step(Controls(1.0, 0.0, 0.2))
            before = tiles.passes
            np.testing.assert_array_equal(
                tiled.render(("hood",))["hood"], own.render(("hood",))["hood"]
            )
            assert tiles.passes == before + 1
        with pytest.raises(ValueError, match="tiled renderer was made for"):
            tiles.slot(0).add_camera(
                "hood", scene=tiled.root, parent=tiled.root, size=(90, 160), fov=80.0
            )
    finally:
        tiled.close()
        own.close()
        tiles.close()


def test_a_failing_worker_is_reported_with_its_error():
    from gta_env.multiproc import ProcessBatchVectorEnv

    with pytest.raises(RuntimeError, match="max_episode_steps must be a positive integer"):
        ProcessBatchVectorEnv(workers=1, envs_per_worker=1, max_episode_steps=0, **SMALL)
    with pytest.raises(ValueError, match="workers"):
        ProcessBatchVectorEnv(workers=0, envs_per_worker=1, **SMALL)
