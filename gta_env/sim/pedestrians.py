"""Pedestrians: walkers who wait on the sidewalk and cross the road at zebra crossings.

Each walker belongs to one zebra (:class:`~gta_env.sim.junctions.JunctionLayout`): it waits on
the sidewalk at one end, crosses when it may, waits a while on the other side and crosses back.
At a signalised intersection it starts only in the first seconds of the pedestrian phase (every
vehicle light red); elsewhere only when no vehicle is on or near the zebra or would reach it
within a few seconds. Once on the zebra it walks on, and vehicles must yield: a zebra with a
walker on it is *occupied* (:attr:`Pedestrians.occupied`), which traffic and the expert treat
as a stop.

All walkers of a town are simulated together as numpy arrays; each has a kinematic Bullet box
(named ``pedestrian``, so hitting one is a collision of category ``"pedestrian"``) and a
low-poly mesh, moved only while it walks.
"""

from __future__ import annotations

import numpy as np
from panda3d.core import GeomNode, NodePath

from gta_env.game import FRAME_DT
from gta_env.sim.junctions import ZEBRA_HALF, JunctionLayout
from gta_env.sim.physics import Physics
from gta_env.sim.scene import Lighting, MeshBuilder
from gta_env.sim.town import Box

PEDESTRIAN_HALF = (0.3, 0.25, 0.9)
"""Half extents of a walker's collision box, metres."""
WALK_START_S = 2.0
"""At a signalised zebra, walkers start only this long into the pedestrian phase."""
CLEAR_RADIUS = 14.0
"""No vehicle may be this close to a zebra's centre when a walker starts (unsignalised)."""
CLEAR_TIME = 6.0
"""...nor reach it within this many seconds at its current speed."""
_SHIRTS = [
    (200, 40, 40),
    (40, 90, 200),
    (230, 200, 40),
    (240, 240, 240),
    (40, 160, 80),
    (220, 110, 30),
    (150, 60, 170),
]


def walker_mesh(shirt: tuple[int, int, int], light: Lighting, name: str) -> GeomNode:
    """A low-poly walker (legs, torso, head) standing at the origin, facing +y."""
    mb = MeshBuilder()
    mb.add_box(Box(0, 0, 0, 0.42, 0.28, 0.8, "legs", (45, 45, 60)), light)
    mb.add_box(Box(0, 0, 0, 0.52, 0.32, 0.72, "torso", shirt, 0.8), light)
    mb.add_box(Box(0, 0, 0, 0.26, 0.26, 0.26, "head", (214, 170, 130), 1.54), light)
    return mb.build(name)


class Pedestrians:
    """Every walker of a town.

    Args:
        layout: the town's zebras and lights.
        physics: its physics world (each walker gets a kinematic box).
        root: scene node the walkers' meshes hang under.
        count: number of walkers.
        rng: generator for zebras, sides, speeds and waits.
        light: baked lighting for the meshes.
    """

    def __init__(
        self,
        *,
        layout: JunctionLayout,
        physics: Physics,
        root: NodePath,
        count: int,
        rng: np.random.Generator,
        light: Lighting,
    ) -> None:
        self.layout = layout
        self.rng = rng
        zebras = len(layout)
        if zebras == 0:
            count = 0
        half = layout.town.config.road_half_width
        # Where walkers wait: 0.7 m before the sidewalk's far edge (1.8 m into the default
        # one). At 1.0 m a walker waiting at a zebra's end stood in the sweep of a car turning
        # close to the corner; the car waited for the walker and the walker for the car, for
        # ever (town 6001).
        self.wait_lat = half + max(layout.town.config.sidewalk_width - 0.7, 0.5)
        self.road_lat = half + 0.3  # |lateral| below this is the carriageway (and a bit)
        self.zebra = rng.integers(zebras, size=count) if count else np.zeros(0, np.int64)
        self.side = np.where(rng.random(count) < 0.5, -1.0, 1.0)
        self.along = rng.uniform(-0.85, 0.85, count) * ZEBRA_HALF
        self.lat = self.side * self.wait_lat
        self.direction = np.zeros(count)  # 0 waiting, +-1 walking toward that side
        self.wait = rng.uniform(0.0, 10.0, count)
        self.speed = rng.uniform(1.2, 1.7, count)
        self.nodes: list[NodePath] = []
        for i in range(count):
            node = physics.add_dynamic_box("pedestrian", PEDESTRIAN_HALF, actor=i)
            shirt = _SHIRTS[int(rng.integers(len(_SHIRTS)))]
            node.attachNewNode(walker_mesh(shirt, light, f"walker{i}"))
            self.nodes.append(node)
        self.occupied = np.zeros(zebras, bool)
        """Per zebra (= approach index): a walker is on it or stepping onto it."""
        # A walker faces straight across its zebra, one way or the other: its two headings,
        # degrees, worked out once ([i, 0] walking toward -right, [i, 1] toward +right).
        self._headings = np.zeros((count, 2))
        for i in range(count):
            for j, sign in enumerate((-1.0, 1.0)):
                across = layout.right[self.zebra[i]] * sign
                self._headings[i, j] = np.degrees(np.arctan2(-across[0], across[1]))
        # What a walker's position adds to its lateral offset never changes: its zebra's
        # centre (and the offset along it, added last), the direction across.
        z = self.zebra
        self._centre, self._across = layout.zebra[z], layout.right[z]
        self._along = layout.travel[z] * self.along[:, None]
        self._positions = self._compute_positions()
        self._place_all(np.arange(count))

    def __len__(self) -> int:
        return len(self.nodes)

    def positions(self) -> np.ndarray:
        """(N, 2) walker positions (a copy)."""
        return self._positions.copy()

    def step(
        self,
        *,
        walk: np.ndarray,
        vehicles: np.ndarray,
        velocities: np.ndarray,
        dt: float = FRAME_DT,
    ) -> None:
        """Advance every walker by ``dt`` seconds.

        Args:
            walk: per approach, seconds since the pedestrian phase began (inf outside it;
                :meth:`JunctionLayout.states`).
            vehicles: (V, 2) positions of every vehicle (traffic and the player).
            velocities: (V, 2) their velocities, m/s.
        """
        if not len(self.nodes):
            return
        waiting = self.direction == 0.0
        self.wait[waiting] -= dt
        ready = waiting & (self.wait <= 0.0)
        if ready.any():
            allowed = self._may_start(walk, vehicles, velocities)
            start = ready & allowed[self.zebra]
            self.direction[start] = -self.side[start]
        walking = self.direction != 0.0
        if walking.any():
            # A waiting walker's direction is 0: its step is 0 and its offset stays as it is.
            self.lat += self.direction * self.speed * dt
            arrived = walking & (self.lat * self.direction >= self.wait_lat)
            if arrived.any():
                self.side[arrived] = self.direction[arrived]
                self.lat[arrived] = self.side[arrived] * self.wait_lat
                self.direction[arrived] = 0.0
                self.wait[arrived] = self.rng.uniform(4.0, 16.0, np.count_nonzero(arrived))
            self._positions = self._compute_positions()
            self._place_all(walking.nonzero()[0])
        self.occupied[:] = False
        on = self.direction != 0.0
        self.occupied[self.zebra[on]] = True

    # -- internals -----------------------------------------------------------------------------
    def _may_start(
        self, walk: np.ndarray, vehicles: np.ndarray, velocities: np.ndarray
    ) -> np.ndarray:
        """Per zebra: may a walker step onto it now?"""
        layout = self.layout
        centre = layout.zebra  # (Z, 2)
        if len(vehicles):
            # x and y apart: (Z, V) arrays, cheaper than (Z, V, 2) ones, the same arithmetic.
            relx = centre[:, 0, None] - vehicles[:, 0]  # (Z, V)
            rely = centre[:, 1, None] - vehicles[:, 1]
            dist = np.hypot(relx, rely)
            closing = (relx * velocities[:, 0] + rely * velocities[:, 1]) / np.maximum(dist, 1e-6)
            eta = np.where(closing > 0.3, dist / np.maximum(closing, 1e-6), np.inf)
            near = dist < CLEAR_RADIUS
            soon = eta < CLEAR_TIME
            on_zebra = dist < 6.0
        else:
            near = soon = on_zebra = np.zeros((len(centre), 1), bool)
        signalised = layout.signalised
        free_road = ~(near | soon).any(axis=1)
        phase_ok = (walk < WALK_START_S) & ~on_zebra.any(axis=1)
        return np.where(signalised, phase_ok, free_road)

    def _compute_positions(self) -> np.ndarray:
        return self._centre + self._across * self.lat[:, None] + self._along

    def _place_all(self, walkers: np.ndarray) -> None:
        """Move the meshes and bodies of ``walkers`` to their positions."""
        direction = self.direction[walkers]
        facing = np.where(direction != 0.0, direction, -self.side[walkers])
        headings = self._headings[walkers, (facing > 0).astype(np.int64)].tolist()
        xy = self._positions[walkers].tolist()
        for i, (x, y), heading in zip(walkers.tolist(), xy, headings, strict=True):
            self.nodes[i].setPosHpr(x, y, 0.0, heading, 0.0, 0.0)
