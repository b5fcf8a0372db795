"""`GTA5DriveEnv`: drive a car from pixels, in GTA5 or in the embedded world."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gta_env.config import SEED_MAX, EnvConfig
from gta_env.fields import check_int
from gta_env.game import FRAME_DT, Controls, Game, Telemetry
from gta_env.purpose import purpose_vector
from gta_env.unstuck import StuckDetector

if TYPE_CHECKING:
    from gta_env.sim.render import CameraHost


class BackendFallbackWarning(UserWarning):
    """``backend="auto"`` found no game bridge and uses the embedded world."""


def observation_space_for(cfg: EnvConfig) -> spaces.Dict:
    """The observation space of an env with settings ``cfg`` (no backend needed)."""
    obs: dict[str, spaces.Space[Any]] = {
        "hood": spaces.Box(0, 255, (*cfg.hood_size, 3), np.uint8),
    }
    if cfg.cinematic:
        obs["cinematic"] = spaces.Box(0, 255, (*cfg.cinematic_size, 3), np.uint8)
    obs["purpose"] = spaces.Box(
        np.array([0, -1, -1], np.float32), np.array([1, 1, 1], np.float32), dtype=np.float32
    )
    obs["speed"] = spaces.Box(0.0, cfg.max_speed, (1,), np.float32)
    return spaces.Dict(obs)


def action_space_for(cfg: EnvConfig) -> spaces.Box:
    """The action space of an env with settings ``cfg``."""
    if cfg.action_mode == "pedal":
        return spaces.Box(-1.0, 1.0, (2,), np.float32)
    return spaces.Box(
        np.array([0, 0, -1], np.float32), np.array([1, 1, 1], np.float32), dtype=np.float32
    )


class GTA5DriveEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """## Description

    Drive a car through a town from what a hood-mounted camera sees, toward a *purpose point*,
    as in "Python Plays GTA5 – Reboot". Two backends share this interface: the **embedded
    world** (a procedural 3-D town in Panda3D with Bullet car physics, rendered headless on the
    CPU; the default) and **Grand Theft Auto 5** through a bridge to a game mod (Windows). Each
    town is generated from a seed: a road graph with intersections and curves, two-way lanes
    with markings, sidewalks, buildings, poles, trees and parked cars. It is a *living town*:
    traffic lights with stop lines at the intersections (``traffic_lights``, on by default),
    walkers who cross at zebra crossings (``pedestrians``), traffic cars that obey the lights,
    queue and yield (``traffic``), and weather and time of day drawn per episode
    (``weather="random"``). A built-in autopilot (the role of the game's NPC drivers) keeps
    every rule and reports what it would do in ``info["expert_action"]``.

    One step is ``frame_skip`` frames of 1/30 s of game time (the original's sampling period).

    ## Action Space

    ``Box(-1, 1, (2,), float32)``: ``[throttle_brake, steering]``; throttle when
    ``throttle_brake > 0``, brake when ``< 0``; steering > 0 turns right. With
    ``action_mode="separate"``: ``Box([0, 0, -1], [1, 1, 1], (3,))`` = ``[throttle, brake,
    steering]``. Out-of-range values are **clipped** to the box; a NaN/inf or a wrong shape
    raises `ValueError`.

    ## Observation Space

    ``Dict``:

    * ``hood``: uint8 ``(H, W, 3)``, the hood camera (default 90×160; ``hood_size="original"``
      gives the original's 270×480). This is what a driving model sees.
    * ``cinematic``: uint8 ``(H, W, 3)``, 3rd-person chase camera; only with ``cinematic=True``.
    * ``purpose``: float32 ``(3,)``: straight-line distance to the purpose point divided by
      ``purpose_distance_scale`` and clipped to [0, 1], then sin and cos of its bearing in the
      car's frame (positive = right). With ``purpose_mode="route"`` (and ``"auto"``, the
      default, on the embedded world) the bearing is that of the point ``purpose_lookahead``
      metres ahead on the planned road route instead: a sat-nav arrow that turns before each
      intersection. ``purpose_mode="point"`` keeps the original's bearing to the point itself
      (``"auto"`` on the game, whose route the mod does not report).
    * ``speed``: float32 ``(1,)``: forward speed in m/s, clipped to ``[0, max_speed]``.

    ## Rewards

    Per frame: ``reward_progress`` × metres of progress along the planned route toward the
    purpose point (negative when driving away; bounded by the distance actually driven),
    ``+ reward_purpose`` when a purpose point is reached, ``− penalty_collision`` per new
    collision, ``− penalty_red_light`` per stop line crossed on red, ``− penalty_off_road`` per
    frame with the car's centre off the road, and ``− penalty_stuck`` when the car is found
    stuck. A step sums its frames.

    Shaping for RL: with the defaults progress dominates the return (about 0.03 per frame at
    town speed against 5 per collision); for fine-tuning, raise ``penalty_collision`` (10–20)
    to trade speed for safety, or set ``terminate_on_collision=True`` to end episodes at the
    first crash.

    ## Starting State

    A town from ``town_seed`` (or a fresh seed from the env's RNG at every reset; pass
    ``options={"town_seed": n}`` to pick one), the car at rest in a random lane, and a purpose
    point at a road intersection at least 150 m away by road. Reaching a purpose point picks the
    next one, so purpose points chain into a route. With ``route_length > 0`` a fixed route
    (at least that long, through ``route_intersections`` intersections) is planned instead,
    the car starts at its beginning and its intersections are the purpose points in order.

    ## Episode Termination

    * ``terminated``: only with ``terminate_on_collision=True``, at the first collision.
    * ``truncated``: with ``on_stuck="truncate"`` when the car is stuck; otherwise only through
      the time limit (``gym.make`` adds 3,600 steps = 2 minutes of game time at frame_skip 1).

    **Unstuck**: if the car moved less than ``stuck_distance`` metres over the last
    ``stuck_window`` seconds (waiting at a red light, behind a queue or for a walker does not
    count: the backend reports such waits), ``on_stuck="teleport"`` fades the picture out over
    ``fade_frames`` frames (the car brakes, actions are ignored), teleports the car to a random
    free lane spot with a new purpose point, fades back in and continues.
    ``info["unstuck_phase"]`` is ``"fade_out"``/``"fade_in"`` meanwhile and
    ``info["unstucks"]`` counts them.

    ## Info

    ``backend``, ``town_seed``, ``weather``, ``frame``, ``position``, ``heading``, ``speed``, ``on_road``,
    ``purpose_point``, ``route_remaining``, ``traffic_light`` (``"red"``/``"amber"``/
    ``"green"`` for the signalised stop line ahead in the car's lane, None if there is none),
    ``stop_line_distance`` (metres from the car's front to that line, ``inf`` if none),
    ``route_length``, ``route_covered`` and ``route_deviation`` (metres of the fixed route,
    covered so far in order, and from the car to it; 0 without one),
    ``distance`` (metres driven this episode), ``collisions``, ``off_road_frames``,
    ``red_lights``, ``unstucks``, ``purposes_reached``, ``events`` (this step's infractions:
    dicts with ``kind`` in ``collision``/``red_light``/``off_road``/``stuck`` and, for
    collisions, ``category`` (``vehicle``/``pedestrian``/``static``), ``other`` and ``actor``,
    which one of its kind was hit, -1 for static bodies),
    ``unstuck_phase``, and
    ``expert_action`` (the autopilot's action for the returned observation, in this env's action
    format) when the backend has an expert, and ``expert_target_speed`` (m/s, the speed those
    controls aim at) where the backend knows it (the embedded world).

    ## Arguments

    ``gym.make("GTA5Drive-v0", **kwargs)``: every field of :class:`gta_env.config.EnvConfig`
    (e.g. ``backend="sim"``, ``cinematic=True``, ``hood_size="original"``, ``town_seed=3``,
    ``traffic=8``, ``pedestrians=20``, ``traffic_lights=False``, ``weather="random"``,
    ``on_stuck="truncate"``, ``frame_skip=2``), plus ``render_mode="rgb_array"``
    (returns the chase camera) and ``game=`` to pass a ready backend object. Unknown keys or
    bad values raise `ValueError` naming them. ``metadata["render_fps"]`` is
    ``30 / frame_skip`` (game time), so recorded videos play at the game's speed.

    ``GTA5DriveSmall-v0`` is registered beside it for tools that take only an id: the embedded
    world, hood 45×80, 1,000-step episodes (other kwargs still apply).

    ## Version History

    * v0: initial release (embedded world and GTA5 backends, dual cameras, purpose vector whose
      bearing follows the planned route where the backend plans one (``purpose_mode="auto"``),
      unstuck by teleport or truncation); the embedded world became a living town (traffic
      lights, stop lines, zebras, pedestrians, traffic that keeps the rules, rain and night
      with street and head lights) with ``red_light`` infractions and ``pedestrian``
      collisions.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        game: Game | None = None,
        config: EnvConfig | None = None,
        **kwargs: Any,
    ) -> None:
        if config is not None and kwargs:
            raise ValueError("pass either config= or keyword settings, not both")
        self.config = config or EnvConfig.from_kwargs(**kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None"
            )
        self.render_mode = render_mode
        cfg = self.config
        self._obs_cameras: tuple[str, ...] = ("hood", "cinematic") if cfg.cinematic else ("hood",)
        cameras = self._obs_cameras
        if render_mode == "rgb_array" and "cinematic" not in cameras:
            cameras = (*cameras, "cinematic")
        self.game: Game = game if game is not None else make_game(cfg, cameras)

        self.observation_space = observation_space_for(cfg)  # type: ignore[assignment]
        self.action_space = action_space_for(cfg)
        # Recorded videos play in game time: one env step is frame_skip frames of 1/30 s.
        self.metadata = {**self.metadata, "render_fps": 30 / cfg.frame_skip}
        self._stuck = StuckDetector(window=cfg.stuck_window_frames, min_distance=cfg.stuck_distance)
        self._telemetry: Telemetry | None = None
        self._town_seed = -1
        self._weather = ""
        self._phase: str | None = None
        self._fade_k = 0
        self._counters: dict[str, float] = {}
        self._last_frame: dict[str, np.ndarray] = {}

    # -- Gymnasium API ---------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._start(seed=seed, options=options)
        return self._observe(), self._info([])

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward, terminated, truncated, events = self._advance(action)
        return self._observe(), reward, terminated, truncated, self._info(events)

    def _start(self, *, seed: int | None, options: dict[str, Any] | None) -> None:
        """Everything `reset` does before it observes (the batched env renders in between)."""
        super().reset(seed=seed)
        options = dict(options or {})
        town_seed = options.pop("town_seed", self.config.town_seed)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; valid: ['town_seed']")
        check_int("options['town_seed']", town_seed, minimum=0, maximum=SEED_MAX, optional=True)
        if town_seed is None:
            town_seed = int(self.np_random.integers(2**31 - 1))
        self._town_seed = int(town_seed)
        self.game.load(self._town_seed)
        if self.config.route_length > 0:
            self.game.fix_route(
                self.np_random,
                min_length=self.config.route_length,
                min_intersections=self.config.route_intersections,
            )
        self._weather = self.game.set_weather(self.config.weather, self.np_random)
        self.game.set_fade(0.0)
        self.game.new_purpose(self.np_random)
        self._telemetry = self.game.telemetry()
        self._stuck.reset()
        self._phase, self._fade_k = None, 0
        self._counters = {
            "distance": 0.0,
            "collisions": 0,
            "off_road_frames": 0,
            "unstucks": 0,
            "purposes_reached": 0,
            "red_lights": 0,
        }

    def _advance(self, action: Any) -> tuple[float, bool, bool, list[dict[str, Any]]]:
        """Everything `step` does before it observes: reward, terminated, truncated, events."""
        if self._telemetry is None:
            raise RuntimeError("call reset() before step()")
        controls = self._controls(action)
        cfg = self.config
        reward = 0.0
        terminated = truncated = False
        events: list[dict[str, Any]] = []
        for _ in range(cfg.frame_skip):
            r, frame_events, stuck = self._frame(controls)
            reward += r
            events += frame_events
            if cfg.terminate_on_collision and any(e["kind"] == "collision" for e in frame_events):
                terminated = True
            if stuck and cfg.on_stuck == "truncate":
                truncated = True
            if terminated or truncated:
                break
        return float(reward), terminated, truncated, events

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._telemetry is None:
            raise RuntimeError("call reset() before render()")
        return self.game.render(("cinematic",))["cinematic"]

    def close(self) -> None:
        game = getattr(self, "game", None)
        if game is not None:
            game.close()
        super().close()

    # -- internals -------------------------------------------------------------------------------
    def _controls(self, action: Any) -> Controls:
        expected = self.action_space.shape
        try:
            raw = np.asarray(action)
            # Strings ("0.5"), objects and bools are not actions: numpy would convert them.
            if raw.dtype.kind not in "iuf":
                raise TypeError
            a = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"action must be numeric with shape {expected}, got {action!r}"
            ) from None
        if a.shape != expected:
            raise ValueError(
                f"action must have shape {expected} ({self._action_names()}), got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a.tolist()}")
        box = self.action_space
        assert isinstance(box, spaces.Box)
        a = np.minimum(np.maximum(a, box.low), box.high)
        if self.config.action_mode == "pedal":
            return Controls.from_pedal(float(a[0]), float(a[1]))
        return Controls(float(a[0]), float(a[1]), float(a[2]))

    def _action_names(self) -> str:
        if self.config.action_mode == "pedal":
            return "[throttle_brake, steering]"
        return "[throttle, brake, steering]"

    def _encode(self, controls: Controls) -> np.ndarray:
        if self.config.action_mode == "pedal":
            return controls.as_pedal()
        return np.array([controls.throttle, controls.brake, controls.steering], np.float32)

    def _frame(self, controls: Controls) -> tuple[float, list[dict[str, Any]], bool]:
        """One game frame: unstuck phases, physics, reward terms, purpose chaining."""
        cfg = self.config
        prev = self._telemetry
        assert prev is not None
        if self._phase is not None:
            controls = Controls(0.0, 1.0, 0.0)  # the car brakes while the screen is faded
        tel = self.game.step(controls)
        reward = 0.0
        events: list[dict[str, Any]] = []
        stuck = False
        self._counters["distance"] += float(
            np.hypot(tel.position[0] - prev.position[0], tel.position[1] - prev.position[1])
        )
        if self._phase is None:
            bound = abs(tel.speed) * FRAME_DT + 0.5
            progress = min(max(prev.route_remaining - tel.route_remaining, -bound), bound)
            reward += cfg.reward_progress * progress
        for c in tel.collisions:
            events.append(
                {"kind": "collision", "category": c.kind, "other": c.other, "actor": c.actor}
            )
            self._counters["collisions"] += 1
            reward -= cfg.penalty_collision
        for kind in tel.infractions:
            events.append({"kind": kind})
            if kind == "red_light":
                self._counters["red_lights"] += 1
                reward -= cfg.penalty_red_light
        if not tel.on_road and self._phase is None:
            events.append({"kind": "off_road"})
            self._counters["off_road_frames"] += 1
            reward -= cfg.penalty_off_road
        if self._phase is None:
            dx = tel.position[0] - tel.purpose[0]
            dy = tel.position[1] - tel.purpose[1]
            if np.hypot(dx, dy) < cfg.purpose_radius:
                self._counters["purposes_reached"] += 1
                reward += cfg.reward_purpose
                self.game.new_purpose(self.np_random)
                tel = self.game.telemetry()
            elif tel.waiting:
                self._stuck.reset()  # waiting at a red light or for a walker is not stuck
            elif self._stuck.update(tel.position):
                stuck = True
                events.append({"kind": "stuck"})
                reward -= cfg.penalty_stuck
                if cfg.on_stuck == "teleport":
                    self._phase, self._fade_k = "fade_out", 0
        else:
            tel = self._advance_fade(tel)
        self._telemetry = tel
        return reward, events, stuck

    def _advance_fade(self, tel: Telemetry) -> Telemetry:
        n = self.config.fade_frames
        if self._phase == "fade_out":
            self._fade_k += 1
            self.game.set_fade(self._fade_k / n)
            if self._fade_k >= n:
                self.game.teleport(self.np_random)
                self.game.new_purpose(self.np_random)
                self._counters["unstucks"] += 1
                self._stuck.reset()
                self._phase = "fade_in"
                tel = self.game.telemetry()
        else:
            self._fade_k -= 1
            self.game.set_fade(self._fade_k / n)
            if self._fade_k <= 0:
                self._phase = None
        return tel

    def _observe(self) -> dict[str, np.ndarray]:
        tel = self._telemetry
        assert tel is not None
        frames = self.game.render(self._obs_cameras)
        self._last_frame = frames
        obs: dict[str, np.ndarray] = {"hood": frames["hood"]}
        if self.config.cinematic:
            obs["cinematic"] = frames["cinematic"]
        obs["purpose"] = purpose_vector(
            tel.position,
            tel.heading,
            tel.purpose,
            self.config.purpose_distance_scale,
            toward=self._route_point(),
        )
        obs["speed"] = np.array([min(max(tel.speed, 0.0), self.config.max_speed)], np.float32)
        return obs

    def _route_point(self) -> tuple[float, float] | None:
        cfg = self.config
        if cfg.purpose_mode == "point":
            return None
        point = self.game.route_point(cfg.purpose_lookahead)
        if point is None and cfg.purpose_mode == "route":
            raise RuntimeError(
                f"purpose_mode='route' needs a backend that plans road routes; the "
                f"{self.game.name!r} backend reports none (use purpose_mode='point')"
            )
        return point

    def _info(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        tel = self._telemetry
        assert tel is not None
        info: dict[str, Any] = {
            "backend": self.game.name,
            "town_seed": self._town_seed,
            "weather": self._weather,
            "frame": tel.frame,
            "position": np.array(tel.position, np.float64),
            "heading": tel.heading,
            "speed": tel.speed,
            "on_road": tel.on_road,
            "purpose_point": np.array(tel.purpose, np.float64),
            "route_remaining": tel.route_remaining,
            "route_length": tel.route_length,
            "route_covered": tel.route_covered,
            "route_deviation": tel.route_deviation,
            "traffic_light": tel.traffic_light,
            "stop_line_distance": tel.stop_line_distance,
            "events": events,
            "unstuck_phase": self._phase,
            **self._counters,
        }
        if self.config.expert_in_info:
            expert = self.game.expert_action()
            if expert is not None:
                info["expert_action"] = self._encode(expert)
                target = self.game.expert_target_speed()
                if target is not None:
                    info["expert_target_speed"] = float(target)
        return info


_fallback_warned = False
"""The fallback is announced once per process, not once per env (vector envs make many)."""


def make_game(config: EnvConfig, cameras: tuple[str, ...]) -> Game:
    """The backend ``config.backend`` asks for (see `EnvConfig.backend`)."""
    if config.backend in ("auto", "gta5"):
        from gta_env import gta5

        port = config.bridge_port if config.bridge_port is not None else gta5.DEFAULT_PORT
        if gta5.probe(config.bridge_host, port, config.bridge_timeout):
            return gta5.GTA5Game.from_env_config(config, cameras)
        if config.backend == "gta5":
            raise RuntimeError(
                f"backend='gta5': no game bridge answered on {config.bridge_host}:{port} within "
                f"{config.bridge_timeout} s. Start GTA5 with ScriptHookVDotNet and the gta5drive "
                "mod loaded (see docs/gta5.md), or use backend='sim' for the embedded world."
            )
        global _fallback_warned
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                f"no GTA5 bridge on {config.bridge_host}:{port}; using the embedded world "
                "(pass backend='sim' to choose it explicitly and silence this warning)",
                BackendFallbackWarning,
                stacklevel=3,
            )
    return make_sim_game(config, cameras)


def make_sim_game(
    config: EnvConfig, cameras: tuple[str, ...], *, renderer: CameraHost | None = None
) -> Game:
    """The embedded world with the settings of ``config`` (``renderer``: see `SimGame`)."""
    from gta_env.sim.game import SimConfig, SimGame
    from gta_env.sim.town import TownConfig

    return SimGame(
        SimConfig(
            town=TownConfig(grid=(config.town_grid, config.town_grid)),
            hood_size=config.hood_size,
            cinematic_size=config.cinematic_size,
            cameras=cameras,
            renderer=config.renderer,
            purpose_marker=config.purpose_marker,
            traffic=config.traffic,
            traffic_lights=config.traffic_lights,
            pedestrians=config.pedestrians,
        ),
        renderer=renderer,
    )
