"""`SimGame`: the embedded driving world behind the :class:`~gta_env.game.Game` protocol."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from panda3d.core import NodePath

from gta_env.game import FRAME_DT, CollisionEvent, Controls, Telemetry
from gta_env.sim.autopilot import Autopilot, AutopilotConfig
from gta_env.sim.junctions import (
    FRONT,
    LIGHT_NAMES,
    RED,
    STOP_MARGIN,
    JunctionLayout,
    SignalLamps,
    StopTable,
)
from gta_env.sim.lamps import CarLights, StreetLights
from gta_env.sim.pedestrians import PEDESTRIAN_HALF, Pedestrians
from gta_env.sim.physics import Car, CarSpec, Physics, SolidCells
from gta_env.sim.render import CameraHost, Renderer
from gta_env.sim.route import Route, build_route, nearest_directed_road
from gta_env.sim.scene import (
    JUNCTION_BIN,
    Lighting,
    MeshBuilder,
    build_town_scene,
    car_mesh,
    marker_mesh,
)
from gta_env.sim.town import Town, TownConfig, generate_town, polyline_length
from gta_env.sim.traffic import CAR_HALF, IntersectionTurns, Traffic
from gta_env.sim.weather import (
    RAIN_LAYERS,
    FogBlend,
    Weather,
    apply_rain,
    fog_weights,
    make_weather,
    rain_streaks,
)

_CAR_GROUND = -0.23  # the chassis origin rests this far above the ground
PLAYER = -1  # the player's id among intersection holders

# Camera mounts in the car's frame: position, a point looked at, near plane. The hood camera
# sits above the front of the cabin, pitched 6 degrees down: the bonnet fills the bottom ~15 %
# of its frame. The chase camera follows 8.5 m behind and 3.4 m up.
_MOUNTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    "hood": ((0.0, 1.2, 1.4 + _CAR_GROUND), (0.0, 11.2, 1.4 + _CAR_GROUND - 1.051), 0.25),
    "cinematic": ((0.0, -8.5, 3.4), (0.0, 6.0, 0.6), 0.5),
}


@dataclass(frozen=True)
class SimConfig:
    """Settings of the embedded world.

    Attributes:
        town: the procedural town generator's settings.
        hood_size: ``(height, width)`` of the hood camera.
        cinematic_size: ``(height, width)`` of the 3rd-person chase camera.
        cameras: which cameras to create (``"hood"``, ``"cinematic"``).
        renderer: ``"software"`` (CPU, no display) or ``"gl"`` (EGL).
        purpose_marker: show a tall marker at the purpose point.
        hood_fov: horizontal field of view of the hood camera, degrees.
        cinematic_fov: horizontal field of view of the chase camera, degrees.
        min_route_length: purpose points are at least this far along the road, metres.
        traffic: number of traffic cars.
        traffic_lights: signalise every four-way and a seeded share of the three-way
            intersections (False: all uncontrolled; stop lines and zebras stay).
        pedestrians: number of walkers who cross at the zebras.
        autopilot: the expert's driving style.
    """

    town: TownConfig = field(default_factory=TownConfig)
    hood_size: tuple[int, int] = (90, 160)
    cinematic_size: tuple[int, int] = (180, 320)
    cameras: tuple[str, ...] = ("hood",)
    renderer: str = "software"
    purpose_marker: bool = False
    hood_fov: float = 80.0
    cinematic_fov: float = 70.0
    min_route_length: float = 150.0
    traffic: int = 0
    traffic_lights: bool = True
    pedestrians: int = 0
    autopilot: AutopilotConfig = field(default_factory=AutopilotConfig)


FIXED_ROUTE_TOLERANCE = 15.0
"""Metres from the fixed route within which driving along it counts as covering it."""

REPLAN_FRAMES = 30
"""Fewest frames between two re-plans of the route when the car is far off it."""


class SimGame:
    """A procedural town with a Bullet car, headless cameras and an autopilot expert.

    Every instance owns its own scene graph and physics world, and by default its own graphics
    engine. Pass ``renderer=`` (a :class:`~gta_env.sim.render.CameraHost`, e.g. one
    `TiledRenderer.slot`) to render its cameras with an engine shared by a batch of worlds;
    the world's scene graph stays its own (each camera looks only at its world's root).
    """

    name = "sim"

    def __init__(
        self, config: SimConfig | None = None, *, renderer: CameraHost | None = None
    ) -> None:
        self.config = config or SimConfig()
        self.root = NodePath("world")
        self.renderer: CameraHost = (
            renderer if renderer is not None else Renderer(renderer=self.config.renderer)
        )
        self.spec = CarSpec()
        self.autopilot = Autopilot(self.spec, self.config.autopilot)
        self.town: Town | None = None
        self.physics: Physics | None = None
        self.car: Car | None = None
        self.route: Route | None = None
        self._scene: NodePath | None = None
        self._car_visual: NodePath | None = None
        self._marker: NodePath | None = None
        self._fade = 0.0
        self._frame = 0
        self._s = 0.0
        self._off_route = 0.0
        self._replanned_at = -REPLAN_FRAMES
        self._collisions: tuple[CollisionEvent, ...] = ()
        self._expert: Controls | None = None
        self._purpose = (0.0, 0.0)
        self.traffic: Traffic | None = None
        self.weather = make_weather("clear")
        self._fog: dict[str, FogBlend] = {}
        self._rain: dict[str, list[np.ndarray]] = {}
        self.street_lights: StreetLights | None = None
        self.player_lights: CarLights | None = None
        self._crossing_stop: float | None = None
        self.layout: JunctionLayout | None = None
        self.pedestrians: Pedestrians | None = None
        self._lamps: SignalLamps | None = None
        self._states = np.zeros(0, np.int64)
        self._occupied = np.zeros(0, bool)
        self._stops = StopTable(np.zeros((1, 0)), np.zeros((1, 0), np.int64), np.zeros(0, bool))
        self._rule_stop = float("inf")
        self._light = -1
        self._line_s = float("inf")
        self.governing_approach = -1
        self.fixed_route: Route | None = None
        """The route of `fix_route` (None: purpose points are drawn at random)."""
        self._fixed_nodes: list[int] = []
        self._fixed_start = 0.0
        self._fixed_covered = 0.0
        self._fixed_deviation = 0.0
        self._infractions: tuple[str, ...] = ()
        self._ray_memo: tuple[tuple[int, int, float, float] | None, float] = (None, 0.0)

    # -- Game protocol -------------------------------------------------------------------------
    def load(self, seed: int) -> None:
        """Generate the town for ``seed`` and place the car at a seed-chosen start."""
        self._unload()
        cfg = self.config
        town = generate_town(seed, cfg.town)
        self.town = town
        layout = JunctionLayout(town, np.random.default_rng([seed, 3]), signals=cfg.traffic_lights)
        self.layout = layout
        # The rules are asked as soon as the car has a route (below): they must see this
        # town's lights and zebras, not the last town's.
        self._states, _ = layout.states(0.0)
        self._occupied = np.zeros(len(layout), bool)
        light = Lighting(town.sun, town.sun_color, town.ambient)
        self._scene = build_town_scene(town, self.root)
        self._build_junctions(layout, light)
        self.physics = Physics(town, self.root, layout.solids())
        self.car = Car(self.physics, self.spec)
        self._car_visual = self.car.node.attachNewNode(car_mesh((178, 24, 30), light, "player"))
        self._car_visual.setZ(_CAR_GROUND)
        self.player_lights = CarLights(self._car_visual, light)
        self.street_lights = StreetLights(town, self._scene, light)
        self._marker = self.root.attachNewNode(marker_mesh(light))
        if not self.config.purpose_marker:
            self._marker.hide()
        self._make_cameras(town)
        self._frame = 0
        self._replanned_at = -REPLAN_FRAMES
        self._fade = 0.0
        self._place_randomly(np.random.default_rng([seed, 1]))
        if cfg.traffic:
            self.traffic = Traffic(
                town=town,
                physics=self.physics,
                root=self.root,
                count=cfg.traffic,
                rng=np.random.default_rng([seed, 2]),
                keep_clear=[self.car.position],
                layout=layout,
            )
        if cfg.pedestrians:
            self.pedestrians = Pedestrians(
                layout=layout,
                physics=self.physics,
                root=self.root,
                count=cfg.pedestrians,
                rng=np.random.default_rng([seed, 4]),
                light=light,
            )
        if self._lamps is not None:
            self._lamps.update(self._states)
        self._update_rules()
        self.set_weather("clear", np.random.default_rng(0))

    def step(self, controls: Controls) -> Telemetry:
        """Advance one frame (1/30 s) with ``controls``."""
        car, physics = self._require()
        layout = self.layout
        assert layout is not None
        states, walk = layout.states(self._frame * FRAME_DT)
        self._states = states
        if self._lamps is not None:
            self._lamps.update(states)
        if self.pedestrians is not None:
            vehicles, velocities = self._vehicles()
            self.pedestrians.step(walk=walk, vehicles=vehicles, velocities=velocities)
            self._occupied = self.pedestrians.occupied
        front_before = self._front()
        car.apply(controls)
        if self.traffic is not None:
            self.traffic.step(car.position, car.heading, states=states, occupied=self._occupied)
        physics.step(FRAME_DT)
        self._frame += 1
        self._collisions = physics.new_contacts(car.body)
        crossed = layout.crossed_stop_lines(front_before, self._front())
        ran_red = [k for k in crossed if layout.signalised[k] and states[k] == RED]
        self._infractions = ("red_light",) if ran_red else ()
        self._update_route()
        self._update_fixed()
        self._update_rules()
        self._hold_crossing()
        self._expert = None
        return self.telemetry()

    def telemetry(self) -> Telemetry:
        """Current state of the car without advancing time."""
        car, _ = self._require()
        assert self.town is not None and self.route is not None
        x, y = car.position
        return Telemetry(
            position=(x, y),
            heading=car.heading,
            speed=car.speed,
            on_road=self.town.on_road(x, y),
            purpose=self._purpose,
            route_remaining=max(self.route.length - self._s, 0.0) + self._off_route,
            collisions=self._collisions,
            frame=self._frame,
            traffic_light=LIGHT_NAMES[self._light] if self._light >= 0 else None,
            stop_line_distance=self._line_s - self._s - FRONT,
            infractions=self._infractions,
            waiting=self._waiting(),
            route_length=(self.fixed_route.length - self._fixed_start if self.fixed_route else 0.0),
            route_covered=self._fixed_covered,
            route_deviation=self._fixed_deviation,
        )

    def render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Frames of the named cameras (faded when a fade is active)."""
        missing = [c for c in cameras if c not in self.renderer.cameras]
        if missing:
            raise ValueError(
                f"camera(s) {missing} not enabled; SimConfig.cameras is {self.config.cameras}"
            )
        frames = self.renderer.render(cameras)
        if self.weather.fog_density > 0.0:
            frames = {k: self._fog[k](v) for k, v in frames.items()}
        if self._rain:
            level = int(min(255, 300 * max(self.weather.tint)))
            for k, v in frames.items():
                apply_rain(v, self._rain[k][self._frame % RAIN_LAYERS], level)
        if self._fade > 0.0:
            scale = np.uint16(round((1.0 - self._fade) * 256))
            frames = {
                k: ((v.astype(np.uint16) * scale) >> 8).astype(np.uint8) for k, v in frames.items()
            }
        return frames

    def new_purpose(self, rng: np.random.Generator) -> tuple[float, float]:
        """Pick a purpose intersection reachable by road and plan the route to it.

        On a fixed route (:meth:`fix_route`) the purpose points are its intersections in
        order, and the car keeps the fixed route while it is on it; after the last one, or
        far off it, purpose points are drawn at random again.
        """
        car, _ = self._require()
        assert self.town is not None
        town = self.town
        fixed = self.fixed_route
        if fixed is not None and not self._fixed_nodes and self._fixed_covered < fixed.length:
            # The last purpose point of the fixed route is reached: the route is complete.
            px, py = self._purpose
            if np.hypot(car.position[0] - px, car.position[1] - py) < FIXED_ROUTE_TOLERANCE:
                self._fixed_covered = fixed.length - self._fixed_start
        if self._fixed_nodes:
            node = self._fixed_nodes.pop(0)
            if self.route is not self.fixed_route:
                assert self.route is not None
                index, _, _ = self.route.project(*car.position)
                start = self.route.directed_at(index)
                self._set_route(build_route(town, town.shortest_route(*start, node), node))
            return self._set_purpose(node)
        if self.route is not None:
            index, _, dist = self.route.project(*car.position)
            directed = (
                self.route.directed_at(index)
                if dist < 15.0
                else nearest_directed_road(town, *car.position, car.heading)
            )
        else:
            directed = nearest_directed_road(town, *car.position, car.heading)
        best: list[tuple[int, bool]] | None = None
        for _ in range(12):
            target = int(rng.integers(len(town.nodes)))
            path = town.shortest_route(directed[0], directed[1], target)
            length = sum(town.roads[r].length for r, _ in path[1:])
            if best is None or length >= self.config.min_route_length:
                best = path
                if length >= self.config.min_route_length:
                    break
        assert best is not None
        road, fw = best[-1]
        target_node = town.roads[road].b if fw else town.roads[road].a
        self._set_route(build_route(town, best, target_node))
        return self._set_purpose(target_node)

    def fix_route(
        self, rng: np.random.Generator, *, min_length: float, min_intersections: int
    ) -> float:
        """Plan a fixed route through the town and put the car at rest at its start.

        A walk over the road graph without U-turns (preferring roads not driven yet) until it
        is ``min_length`` metres long and has passed ``min_intersections`` intersections of
        three or more roads; the car starts in its first lane, clear of the intersection. The
        walk's intersections become the purpose points, in order (:meth:`new_purpose`).

        Returns:
            The route's length from the car's start, metres.
        """
        car, _ = self._require()
        town = self.town
        assert town is not None
        margin = town.junction_radius + 8.0
        for _ in range(50):
            road = int(rng.integers(len(town.roads)))
            forward = bool(rng.integers(2))
            lane = town.lane_polyline(road, forward)
            if town.roads[road].length < 2 * margin + 5.0:
                continue
            start = lane[int(np.searchsorted(polyline_length(lane), margin))]
            if self._spot_occupied(start):
                continue
            # Lanes and turns are shorter than the centre lines they follow: lengthen the walk
            # until the route itself is long enough.
            want = min_length + margin
            while True:
                walk = _long_walk(town, (road, forward), rng, want, min_intersections)
                heads = [town.roads[r].b if f else town.roads[r].a for r, f in walk]
                route = build_route(town, walk, heads[-1])
                if route.length >= min_length + margin or len(walk) > 400:
                    break
                want += min_length + margin - route.length + 10.0
            d = lane[min(int(np.searchsorted(polyline_length(lane), margin)) + 1, len(lane) - 1)]
            heading = float(np.arctan2(-(d[0] - start[0]), d[1] - start[1]))
            car.place(float(start[0]), float(start[1]), heading)
            self.route = None
            self._set_route(route)
            self.fixed_route = route
            self._fixed_nodes = heads
            self._fixed_start = self._s
            self._fixed_covered = 0.0
            self._fixed_deviation = 0.0
            return route.length - self._s
        raise RuntimeError(f"town {town.seed}: found no free spot to start a fixed route")

    def _set_purpose(self, node: int) -> tuple[float, float]:
        assert self.town is not None
        x, y = self.town.nodes[node]
        self._purpose = (float(x), float(y))
        if self._marker is not None:
            self._marker.setPos(x, y, 0.0)
        return self._purpose

    def teleport(self, rng: np.random.Generator) -> None:
        """Move the car, at rest, to a random lane spot facing along its lane."""
        self._place_randomly(rng)

    def set_weather(self, name: str, rng: np.random.Generator) -> str:
        """Sky, light, fog, rain and lamps: a preset name or ``"random"`` (drawn from ``rng``)."""
        weather: Weather = make_weather(name, rng)
        self.weather = weather
        town = self.town
        assert town is not None and self._scene is not None
        self.root.setColorScale(*weather.tint, 1.0)
        road = self._scene.find("road")
        if weather.road is not None:
            road.setColorScale(*weather.road, 1.0)
        else:
            road.clearColorScale()
        for lights in (self.street_lights, self.player_lights):
            if lights is not None:
                lights.set_level(weather.lights)
        if self.traffic is not None:
            self.traffic.set_light_level(weather.lights)
        self._rain = {
            cam: rain_streaks(view.height, view.width, weather.rain, town.seed)
            for cam, view in self.renderer.cameras.items()
            if weather.rain > 0.0
        }
        sky = weather.sky if weather.sky is not None else town.sky
        self.renderer.set_clear_color(sky)
        self._fog = {}
        for cam, view in self.renderer.cameras.items():
            lens = view.node.node().getLens()
            pitch = view.node.getP(self.car.node) if self.car is not None else 0.0
            height = view.node.getZ(self.root) if self.car is not None else 1.3
            weights = fog_weights(
                view.height, lens.getVfov(), pitch, max(height, 0.5), weather.fog_density
            )
            self._fog[cam] = FogBlend(weights, view.width, weather.fog_color)
        return weather.name

    def set_fade(self, level: float) -> None:
        """0 = normal image, 1 = black."""
        self._fade = float(np.clip(level, 0.0, 1.0))

    def expert_action(self) -> Controls | None:
        """The autopilot's controls for the current state (computed once per frame)."""
        if self._expert is None:
            car, _ = self._require()
            assert self.route is not None
            self._expert = self.autopilot.act(
                self.route,
                position=car.position,
                heading=car.heading,
                speed=car.speed,
                s=self._s,
                obstacle_ahead=self._obstacle_ahead,
            )
        return self._expert

    def expert_target_speed(self) -> float | None:
        """The speed (m/s) the autopilot aims at in the current state (its controls follow it)."""
        self.expert_action()
        return self.autopilot.target_speed

    def close(self) -> None:
        """Free the graphics engine and physics world."""
        self._unload()
        self.renderer.close()

    # -- internals -----------------------------------------------------------------------------
    def _require(self) -> tuple[Car, Physics]:
        if self.car is None or self.physics is None:
            raise RuntimeError("SimGame: call load(seed) before stepping or rendering")
        return self.car, self.physics

    def _unload(self) -> None:
        if self.physics is not None:
            self.physics.close()
        for node in (self._scene, self._marker):
            if node is not None:
                node.removeNode()
        self.renderer.remove_cameras()
        self.town = self.physics = self.car = self.route = None
        self.traffic = None
        self.pedestrians = None
        self.layout = None
        self._lamps = None
        self._crossing_stop = None
        self._infractions = ()
        self.fixed_route = None
        self._fixed_nodes = []
        self._scene = self._marker = self._car_visual = None
        self.street_lights = self.player_lights = None

    def _make_cameras(self, town: Town) -> None:
        assert self.car is not None
        cfg = self.config
        for name in cfg.cameras:
            if name not in _MOUNTS:
                raise ValueError(f"unknown camera {name!r}; choose from {sorted(_MOUNTS)}")
            pos, look_at, near = _MOUNTS[name]
            mount = self.car.node.attachNewNode(f"{name}-mount")
            mount.setPos(*pos)
            mount.lookAt(*look_at)
            size, fov = (
                (cfg.hood_size, cfg.hood_fov)
                if name == "hood"
                else (cfg.cinematic_size, cfg.cinematic_fov)
            )
            self.renderer.add_camera(
                name,
                scene=self.root,
                parent=mount,
                size=size,
                fov=fov,
                near=near,
                far=350.0,
                clear_color=town.sky,
            )

    def route_point(self, ahead: float) -> tuple[float, float] | None:
        """The point ``ahead`` metres along the planned route from the car (the purpose point at
        most); None before a town is loaded."""
        if self.route is None:
            return None
        x, y = self.route.point_at(self._s + ahead)
        return float(x), float(y)

    def _place_randomly(self, rng: np.random.Generator) -> None:
        car, _ = self._require()
        town = self.town
        assert town is not None
        for _ in range(50):
            road = int(rng.integers(len(town.roads)))
            forward = bool(rng.integers(2))
            lane = town.lane_polyline(road, forward)
            margin = town.junction_radius + 8.0
            n = len(lane)
            k = int(rng.integers(n))
            s = np.linalg.norm(np.diff(lane, axis=0), axis=1).cumsum()
            if n < 4 or k == 0 or s[k - 1] < margin or s[-1] - s[k - 1] < margin:
                continue
            if self._spot_occupied(lane[k]):
                continue
            d = lane[min(k + 1, n - 1)] - lane[k - 1]
            heading = float(np.arctan2(-d[0], d[1]))
            car.place(float(lane[k][0]), float(lane[k][1]), heading)
            self.route = None
            self._set_route(build_route(town, [(road, forward)], -1))
            return
        raise RuntimeError(f"town {town.seed}: found no free road spot to place the car")

    def _spot_occupied(self, point: np.ndarray) -> bool:
        return self.traffic is not None and self.traffic.near(
            float(point[0]), float(point[1]), 15.0
        )

    def _set_route(self, route: Route) -> None:
        car, _ = self._require()
        self.autopilot.prepare(route)
        self.route = route
        route.reset_hint(0)
        _, self._s, dist = route.project(*car.position)
        self._off_route = dist
        self._expert = None
        if self.layout is not None:
            stop_s, stop_ref = self.layout.route_stops(route)
            self._stops = StopTable(stop_s[None], stop_ref[None], self.layout.signalised)
            self._update_rules()

    def _build_junctions(self, layout: JunctionLayout, light: Lighting) -> None:
        """Stop lines, zebras, signal poles and their lamps under the town scene."""
        assert self._scene is not None
        markings = layout.markings(light)
        if markings:
            node = self._scene.attachNewNode(markings.build("junction_markings"))
            node.setBin("background", JUNCTION_BIN)
            node.setDepthWrite(False)
            node.setDepthTest(False)
        solids = MeshBuilder()
        for box in layout.solids():
            solids.add_box(box, light)
        if solids:
            self._scene.attachNewNode(solids.build("signal_poles"))
        self._lamps = SignalLamps(layout, self._scene)

    def _front(self) -> np.ndarray:
        car, _ = self._require()
        x, y = car.position
        h = car.heading
        return np.array([x - np.sin(h) * FRONT, y + np.cos(h) * FRONT])

    def _vehicles(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities of every vehicle: traffic, then the player."""
        car, _ = self._require()
        h = car.heading
        mine_v = np.array([[-np.sin(h) * car.speed, np.cos(h) * car.speed]])
        mine_p = np.array([car.position])
        if self.traffic is None:
            return mine_p, mine_v
        return (
            np.concatenate((self.traffic.positions(), mine_p)),
            np.concatenate((self.traffic.velocities(), mine_v)),
        )

    def _update_rules(self) -> None:
        """Where the player must stop for lights and walkers, and the light governing it."""
        if self.layout is None or self.car is None:
            return
        stop_at, light, line_s, approach = self._stops.rules(
            np.array([self._s]),
            np.array([max(self.car.speed, 0.0)]),
            self._states,
            self._occupied,
        )
        self._rule_stop, self._light, self._line_s = (
            float(stop_at[0]),
            int(light[0]),
            float(line_s[0]),
        )
        self.governing_approach = int(approach[0])
        """Index (in :attr:`layout`) of the signalised approach whose light governs the car's
        lane ahead, -1 if none."""

    def _waiting(self) -> bool:
        """Whether the player's car stands for a reason the rules give (see `Telemetry`)."""
        car, _ = self._require()
        if car.speed > 0.5 or self.route is None:
            return False
        near = 10.0
        if self._rule_stop - self._s < near:
            return True
        if self._crossing_stop is not None and self._crossing_stop - self._s < near:
            return True
        # The expert's own look-ahead, when it reaches further, finds the same first hit: one
        # ray pass serves both (the expert asks for it right after, from the same place).
        reach = max(12.0, self.autopilot.config.sensor_range)
        return self._ray_obstacle(self.route, self._s, reach) < 12.0

    def _update_route(self) -> None:
        car, _ = self._require()
        assert self.route is not None and self.town is not None
        _, s, dist = self.route.project(*car.position)
        if dist > 20.0 and self._frame - self._replanned_at >= REPLAN_FRAMES:
            # Far off the planned path (a non-expert driver went elsewhere): re-plan to the
            # same purpose point from the nearest road, so progress stays meaningful. At most
            # once a second: a car far from every road would otherwise re-plan every frame.
            self._replanned_at = self._frame
            directed = nearest_directed_road(self.town, *car.position, car.heading)
            target = self.route.target_node
            if target >= 0:
                path = self.town.shortest_route(directed[0], directed[1], target)
                self._set_route(build_route(self.town, path, target))
                return
        self._s, self._off_route = s, dist

    def _update_fixed(self) -> None:
        """Progress along the fixed route: the furthest point reached in order while on it."""
        fixed = self.fixed_route
        if fixed is None:
            return
        car, _ = self._require()
        if fixed is self.route:
            s, dist = self._s, self._off_route
        else:
            _, s, dist = fixed.project(*car.position)
        self._fixed_deviation = dist
        if dist < FIXED_ROUTE_TOLERANCE:
            self._fixed_covered = max(self._fixed_covered, s - self._fixed_start)

    def _hold_crossing(self) -> None:
        """The player's car takes intersection turns with the traffic, whoever drives it."""
        if self.traffic is not None and self.route is not None:
            held_by_light = self._rule_stop - self._s < IntersectionTurns.ASK_DISTANCE
            self._crossing_stop = self.traffic.turns.negotiate(
                PLAYER, self.route.crossings, self._s, allowed=not held_by_light
            )

    def _obstacle_ahead(self, route: Route, s: float, reach: float) -> float:
        """Metres along the path to the first solid thing in the lane (``inf`` if none).

        The entrance of an intersection that traffic holds counts as an obstacle.
        """
        gap = self.autopilot.config.stop_gap
        limit = self._rule_stop - s + gap
        if self._crossing_stop is not None:
            limit = min(limit, self._crossing_stop - FRONT - STOP_MARGIN - s + gap)
        return min(limit, self._ray_obstacle(route, s, reach))

    def _ray_obstacle(self, route: Route, s: float, reach: float) -> float:
        key = (self._frame, id(route), s, reach)
        if self._ray_memo[0] != key:
            self._ray_memo = (key, self._cast_rays(route, s, reach))
        return self._ray_memo[1]

    def _cast_rays(self, route: Route, s: float, reach: float) -> float:
        _, physics = self._require()
        step = STEP_PIECE
        # The path ahead is cut into 5 m pieces from 3 m ahead of the centre, each swept by
        # seven parallel rays across the car's width; the geometry of every piece is
        # worked out at once, the rays are cast in order until the first hit. A first, short
        # piece starts just behind the bumper (the car's own body is not seen): a car already
        # touching the bumper sits where the 3 m rays would start inside it, and a ray that
        # starts inside a body does not hit it.
        starts = [s + 3.0]
        while starts[-1] + step < s + reach:
            starts.append(starts[-1] + step)
        if starts[0] >= s + reach:
            return float("inf")
        starts.insert(0, s + BUMPER_RAY)
        # Each piece ends where the next starts: one lerp serves both ends of every piece.
        corners = route.points_lerp(np.array([*starts, starts[-1] + step]))
        pa, pb = corners[:-1], corners[1:]
        d = pb - pa
        # Lengths as np.linalg.norm takes them per piece (a dot product: matmul matches it bit
        # for bit where a sum of squares does not).
        length = np.sqrt((d[:, None, :] @ d[:, :, None])[:, 0])
        n = d[:, ::-1] * _TO_RIGHT / (length + 1e-9)  # (dy, -dx): the right-hand normal
        a = pa[:, None, :] + n[:, None, :] * _RAY_OFFSETS  # (pieces, 3, 2)
        b = pb[:, None, :] + n[:, None, :] * _RAY_OFFSETS
        # Only pieces that something could block are cast: a conservative test first (static
        # solids from a grid, moving bodies by their distance to the rays), so the first hit
        # is the one the full sweep finds.
        for k in self._may_block(a, b).nonzero()[0].tolist():
            for (ax, ay), (bx, by) in zip(a[k].tolist(), b[k].tolist(), strict=True):
                if physics.ray_hit((ax, ay, 0.7), (bx, by, 0.7)):
                    return starts[k] - s
        return float("inf")

    def _may_block(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per piece of rays ``a -> b`` ((pieces, 3, 2) each): whether a ray of it may hit."""
        _, physics = self._require()
        ab = b - a
        samples = a[..., None, :] + ab[..., None, :] * _PIECE_SAMPLES[:, None]  # (pieces, 3, S, 2)
        maybe = np.logical_or.reduce(physics.solid_cells.touches(samples), axis=(1, 2))
        ax, ay = a[..., 0, None], a[..., 1, None]  # (pieces, 3, 1)
        dx, dy = ab[..., 0, None], ab[..., 1, None]
        pos, reach = self._movers_near(a, b)
        if len(pos):
            # Distance of every body's centre to every ray, against the body's half-diagonal.
            rx, ry = pos[:, 0] - ax, pos[:, 1] - ay  # (pieces, 3, bodies)
            t = np.minimum(
                np.maximum((rx * dx + ry * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0.0), 1.0
            )
            near = np.hypot(rx - t * dx, ry - t * dy) < reach
            maybe |= near.any(axis=(1, 2))
        return maybe

    def _movers_near(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Traffic cars and walkers that might come within reach of a ray ``a -> b``: their
        positions (B, 2) and how close a ray must pass each centre to hit it (B,).

        Every ray lies within ``radius`` of the first piece's start (no ray end is further),
        so a body further than that plus its reach cannot be near one; dropping those first
        keeps the exact test (the caller's) small. The extra metre keeps rounding from ever
        dropping a body the exact test keeps.
        """
        groups = []
        if self.traffic is not None and self.traffic.count:
            groups.append((self.traffic.positions(), CAR_REACH))
        if self.pedestrians is not None and len(self.pedestrians):
            groups.append((self.pedestrians.positions(), WALKER_REACH))
        if not groups:
            return np.zeros((0, 2)), np.zeros(0)
        pos = np.concatenate([p for p, _ in groups])
        reach = np.repeat([r for _, r in groups], [len(p) for p, _ in groups])
        centre = a[0, 1]
        # No ray end is further from the centre than (its largest |dx|, its largest |dy|).
        span = np.abs(np.concatenate((a, b)) - centre).max(axis=(0, 1))
        radius = math.hypot(float(span[0]), float(span[1]))
        near = np.hypot(pos[:, 0] - centre[0], pos[:, 1] - centre[1]) < reach + (radius + 1.0)
        return pos[near], reach[near]


STEP_PIECE = 5.0
"""Metres of look-ahead path per piece of the expert's ray sweep."""
_PIECE_SAMPLES = np.linspace(0.0, 1.0, int(np.ceil(STEP_PIECE / SolidCells.SPACING)) + 1)
"""Fractions along a ray piece where the solid grid is asked (at most a grid spacing apart)."""
_RAY_OFFSETS = np.linspace(-1.0, 1.0, 7)[None, :, None]
"""Lateral offsets of a piece's seven rays, metres: 0.1 m beyond the car's sides, 0.33 m apart,
closer than a walker (0.6 × 0.5 m) is wide. Three rays 0.9 m apart let a walker stand between
them, and the expert drove into one crossing in front of it."""
_TO_RIGHT = np.array([1.0, -1.0])
"""Signs that turn a reversed direction ``(dy, dx)`` into its right-hand normal ``(dy, -dx)``."""
BUMPER_RAY = FRONT - 0.3
"""Where the sweep's first, short piece starts: 0.3 m behind the front bumper, metres from the
car's centre along the path."""
MOVE_MARGIN = 0.5
"""Metres more than a body's half-diagonal: covers a frame's movement (12 m/s is 0.4 m) between
the positions kept in numpy and the pose the physics world holds."""
CAR_REACH = float(np.hypot(CAR_HALF[0], CAR_HALF[1])) + MOVE_MARGIN
WALKER_REACH = float(np.hypot(PEDESTRIAN_HALF[0], PEDESTRIAN_HALF[1])) + MOVE_MARGIN
"""How close (metres) a ray must pass a traffic car's or walker's centre to be able to hit it."""


def _long_walk(
    town: Town,
    start: tuple[int, bool],
    rng: np.random.Generator,
    min_length: float,
    min_intersections: int,
) -> list[tuple[int, bool]]:
    """Directed roads from ``start`` without U-turns, preferring roads not driven yet, until
    ``min_length`` metres and ``min_intersections`` intersections (3+ roads) are passed."""
    walk = [start]
    used = {start[0]}
    length = town.roads[start[0]].length
    crossings = 0
    while length < min_length or crossings < min_intersections:
        road, forward = walk[-1]
        head = town.roads[road].b if forward else town.roads[road].a
        options = [r for r, _ in town.adjacency[head] if r != road]
        fresh = [r for r in options if r not in used] or options
        nxt = fresh[int(rng.integers(len(fresh)))]
        crossings += len(town.adjacency[head]) >= 3
        walk.append((nxt, town.roads[nxt].a == head))
        used.add(nxt)
        length += town.roads[nxt].length
        if len(walk) > 400:
            break
    return walk
