"""Bullet physics for a town: static bodies for everything solid and a raycast vehicle.

Each :class:`Physics` owns its own `BulletWorld`; nothing is shared between worlds. Static props
are boxes named by kind (``building``, ``pole``, ``tree``, ``parked_car``, ``wall``) so that a
contact can say what the car hit. The ground is a plane; kerbs are visual only, so leaving the road
is detected from the road raster, not by bumping into a kerb.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from panda3d.bullet import (
    BulletBoxShape,
    BulletPlaneShape,
    BulletRigidBodyNode,
    BulletVehicle,
    BulletWorld,
    ZUp,
)
from panda3d.core import BitMask32, NodePath, Point3, TransformState, Vec3

from gta_env.game import FRAME_DT, CollisionEvent, Controls
from gta_env.sim.town import Box, Town

VEHICLE_KINDS = frozenset({"parked_car", "traffic_car"})
PEDESTRIAN_KINDS = frozenset({"pedestrian"})
SOLID_KINDS = frozenset({"building", "pole", "tree", "parked_car", "wall", "signal_pole"})
# Collide masks. Panda3D's Bullet pairs two bodies in the broadphase when their masks share a
# bit, and a ray test hits bodies whose mask shares a bit with the ray's.
SOLID_MASK = BitMask32.bit(1)
"""Static solids and the ground; the player's car collides with them."""
CAR_MASK = BitMask32.bit(2)
"""The player's car."""
SENSED_MASK = BitMask32.bit(3)
"""Static solids the autopilot's rays see."""
MOVING_MASK = BitMask32.bit(4)
"""Kinematic bodies (traffic, walkers) and the player's car, which collides with them. Neither
the ground nor the static solids carry it: a kinematic body moves where it is told, so its
contacts with them (every walker and car stands on the ground plane, and each static compound
spans the town) would only cost the broadphase and solver work every substep."""
SENSED_MOVING_MASK = BitMask32.bit(5)
"""Kinematic bodies the autopilot's rays see."""
RAY_MASK = SENSED_MASK | SENSED_MOVING_MASK
"""What the autopilot's rays see: everything solid except the player's own car (in a tight
turn its front corner reaches into the look-ahead path)."""
CONTACT_DEBOUNCE = 15  # frames (0.5 s)


@dataclass(frozen=True)
class CarSpec:
    """Physical constants of the simulated car (a mid-size saloon)."""

    mass: float = 1300.0
    half_extents: tuple[float, float, float] = (0.9, 2.15, 0.45)
    wheel_base: float = 2.7
    track: float = 1.6
    wheel_radius: float = 0.33
    max_steer_deg: float = 32.0
    engine_force: float = 3400.0
    brake_force: float = 60.0
    drag: float = 2.2
    rolling: float = 120.0


def collision_category(name: str) -> str:
    """The driving-score category of a body: ``vehicle``, ``pedestrian`` or ``static``."""
    if name in VEHICLE_KINDS:
        return "vehicle"
    if name in PEDESTRIAN_KINDS:
        return "pedestrian"
    return "static"


class SolidCells:
    """A conservative map of where the static solids are: 1 m cells a solid may reach into.

    A cell is marked when it lies within a box dilated by :attr:`DILATION` (half a cell's
    diagonal plus half the spacing of the points :meth:`touches` is asked about), so a segment
    sampled at most :attr:`SPACING` apart that passes no marked cell cannot meet a solid. Points
    outside the town's bounds count as marked (the boundary walls stand there).
    """

    CELL = 1.0
    SPACING = 1.0
    DILATION = CELL * 0.5**0.5 + SPACING / 2 + 0.05

    def __init__(self, boxes: Iterable[Box], bounds: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = bounds
        self.origin = (x0, y0)
        self._origin = np.array(self.origin)
        width = int(np.ceil((x1 - x0) / self.CELL)) + 1
        height = int(np.ceil((y1 - y0) / self.CELL)) + 1
        # A border of marked cells all round: `touches` clamps every point onto the grid or
        # its border, so it needs no test of which points lie inside.
        self._bordered = np.ones((width + 2, height + 2), bool)
        self.grid = self._bordered[1:-1, 1:-1]
        self.grid[:] = False
        self._shape = np.array(self.grid.shape, np.float64)
        for b in boxes:
            hw, hd = b.width / 2 + self.DILATION, b.depth / 2 + self.DILATION
            r = float(np.hypot(hw, hd))
            i0, j0 = self._index(b.x - r, b.y - r)
            i1, j1 = self._index(b.x + r, b.y + r)
            i0, j0 = max(i0, 0), max(j0, 0)
            i1, j1 = min(i1, width - 1), min(j1, height - 1)
            if i1 < i0 or j1 < j0:
                continue
            cx = x0 + (np.arange(i0, i1 + 1) + 0.5) * self.CELL - b.x
            cy = y0 + (np.arange(j0, j1 + 1) + 0.5) * self.CELL - b.y
            c, s = np.cos(b.heading), np.sin(b.heading)
            # The box's local axes: width along (c, s), depth along (-s, c) (as scene.add_box).
            u = cx[:, None] * c + cy[None, :] * s
            v = -cx[:, None] * s + cy[None, :] * c
            self.grid[i0 : i1 + 1, j0 : j1 + 1] |= (np.abs(u) <= hw) & (np.abs(v) <= hd)

    def _index(self, x: float, y: float) -> tuple[int, int]:
        return (
            int(np.floor((x - self.origin[0]) / self.CELL)),
            int(np.floor((y - self.origin[1]) / self.CELL)),
        )

    def touches(self, points: np.ndarray) -> np.ndarray:
        """Per point (``points`` of any shape ``(..., 2)``): whether a solid may be within
        reach of it.

        Cell indices are clamped to one beyond the grid's edges, where the border is marked:
        points outside the town land there, and so do NaNs (``fmax`` and ``fmin`` return the
        number where the other argument is NaN).
        """
        cell = (points - self._origin) / self.CELL
        ij = np.floor(np.fmin(np.fmax(cell, -1.0), self._shape)).astype(np.int64) + 1
        return self._bordered[ij[..., 0], ij[..., 1]]


class Physics:
    """A Bullet world for one town."""

    def __init__(self, town: Town, root: NodePath, extra: Iterable[Box] = ()) -> None:
        """Static bodies for the town's solid props and ``extra`` boxes (e.g. signal poles)."""
        self.world = BulletWorld()
        self.world.setGravity(Vec3(0, 0, -9.81))
        self.root = root.attachNewNode("physics")
        ground = BulletRigidBodyNode("ground")
        ground.addShape(BulletPlaneShape(Vec3(0, 0, 1), 0))
        gnp = self.root.attachNewNode(ground)
        gnp.setCollideMask(BitMask32.allOn() & ~(MOVING_MASK | SENSED_MOVING_MASK))
        self.world.attachRigidBody(ground)
        bodies = [box for box in (*town.props, *extra) if box.kind in SOLID_KINDS]
        x0, y0, x1, y1 = town.bounds
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        bodies += [
            Box(cx, y0, 0.0, w, 1.0, 4.0, "wall", (0, 0, 0)),
            Box(cx, y1, 0.0, w, 1.0, 4.0, "wall", (0, 0, 0)),
            Box(x0, cy, 0.0, 1.0, h, 4.0, "wall", (0, 0, 0)),
            Box(x1, cy, 0.0, 1.0, h, 4.0, "wall", (0, 0, 0)),
        ]
        # One compound body per kind keeps the broadphase small.
        for kind in sorted({b.kind for b in bodies}):
            node = BulletRigidBodyNode(kind)
            for b in bodies:
                if b.kind != kind:
                    continue
                shape = BulletBoxShape(Vec3(b.width / 2, b.depth / 2, b.height / 2))
                ts = TransformState.makePosHpr(
                    Point3(b.x, b.y, b.base + b.height / 2), Vec3(np.degrees(b.heading), 0, 0)
                )
                node.addShape(shape, ts)
            np_ = self.root.attachNewNode(node)
            np_.setCollideMask(SOLID_MASK | SENSED_MASK)
            self.world.attachRigidBody(node)
        self._last_touch: dict[str, int] = {}
        self._frame = 0
        self.solid_cells = SolidCells(bodies, town.bounds)
        """Where a ray could meet a static solid: lets ray casting skip what cannot hit."""

    def add_dynamic_box(
        self, name: str, half: tuple[float, float, float], actor: int = -1
    ) -> NodePath:
        """A kinematic box (e.g. a traffic car) that the player can hit and sensors can see.

        ``actor`` (its index among the bodies of its kind) comes back in the
        :class:`CollisionEvent` of a contact with it.
        """
        node = BulletRigidBodyNode(name)
        node.setTag("actor", str(actor))
        node.addShape(BulletBoxShape(Vec3(*half)), TransformState.makePos(Point3(0, 0, half[2])))
        node.setKinematic(True)
        np_ = self.root.attachNewNode(node)
        # The mask is set before attaching: Bullet pairs a new body with what it overlaps as it
        # enters the broadphase, and such a pair (e.g. with the ground) would never go away.
        np_.setCollideMask(MOVING_MASK | SENSED_MOVING_MASK)
        self.world.attachRigidBody(node)
        return np_

    def step(self, dt: float = FRAME_DT) -> None:
        """Advance the world by ``dt`` seconds in fixed 1/120 s substeps."""
        self.world.doPhysics(dt, 8, 1.0 / 120.0)

    def ray_hit(self, start: tuple[float, float, float], end: tuple[float, float, float]) -> str:
        """Name of the first solid body other than the player's car between ``start`` and
        ``end`` ('' if none)."""
        hit = self.world.rayTestClosest(Point3(*start), Point3(*end), RAY_MASK)
        return hit.getNode().getName() if hit.hasHit() else ""

    def new_contacts(self, body: BulletRigidBodyNode) -> tuple[CollisionEvent, ...]:
        """Contacts of ``body`` that started this frame (call once per frame).

        A car pushed against something makes and breaks contact every few frames; a contact
        counts as new only after ``CONTACT_DEBOUNCE`` frames without touching that kind of thing.
        """
        self._frame += 1
        result = self.world.contactTest(body)
        started: dict[str, int] = {}
        for contact in result.getContacts():
            other = contact.getNode1() if contact.getNode0() == body else contact.getNode0()
            name = other.getName()
            if name == "ground":
                continue
            if self._frame - self._last_touch.get(name, -CONTACT_DEBOUNCE - 1) > CONTACT_DEBOUNCE:
                started[name] = int(other.getTag("actor") or -1)
            self._last_touch[name] = self._frame
        return tuple(
            CollisionEvent(collision_category(name), name, actor=started[name])
            for name in sorted(started)
        )

    def close(self) -> None:
        """Detach every body."""
        for body in list(self.world.getRigidBodies()):
            self.world.removeRigidBody(body)
        for vehicle in list(self.world.getVehicles()):
            self.world.removeVehicle(vehicle)
        self.root.removeNode()


class Car:
    """The player's car: a Bullet raycast vehicle with four wheels and front-wheel steering."""

    def __init__(self, physics: Physics, spec: CarSpec | None = None) -> None:
        self.spec = spec or CarSpec()
        self.physics = physics
        s = self.spec
        self.body = BulletRigidBodyNode("player")
        self.body.addShape(
            BulletBoxShape(Vec3(*s.half_extents)), TransformState.makePos(Point3(0, 0, 0.75))
        )
        self.body.setMass(s.mass)
        self.body.setDeactivationEnabled(False)
        self.node = physics.root.attachNewNode(self.body)
        # Bullet collides bodies whose masks overlap: the car must share the solids' and the
        # kinematic bodies' bits.
        self.node.setCollideMask(SOLID_MASK | CAR_MASK | MOVING_MASK)
        physics.world.attachRigidBody(self.body)
        self.vehicle = BulletVehicle(physics.world, self.body)
        self.vehicle.setCoordinateSystem(ZUp)
        physics.world.attachVehicle(self.vehicle)
        half_base, half_track = s.wheel_base / 2, s.track / 2
        for front, y in ((True, half_base), (False, -half_base)):
            for x in (-half_track, half_track):
                wheel = self.vehicle.createWheel()
                wheel.setChassisConnectionPointCs(Point3(x, y, 0.45))
                wheel.setFrontWheel(front)
                wheel.setWheelDirectionCs(Vec3(0, 0, -1))
                wheel.setWheelAxleCs(Vec3(1, 0, 0))
                wheel.setWheelRadius(s.wheel_radius)
                wheel.setMaxSuspensionTravelCm(30.0)
                wheel.setSuspensionStiffness(45.0)
                wheel.setWheelsDampingRelaxation(3.0)
                wheel.setWheelsDampingCompression(4.5)
                wheel.setFrictionSlip(2.2)
                wheel.setRollInfluence(0.05)

    def place(self, x: float, y: float, heading: float) -> None:
        """Put the car at rest at ``(x, y)`` facing ``heading`` (radians)."""
        self.node.setPosHpr(x, y, 0.05, np.degrees(heading), 0, 0)
        self.body.setLinearVelocity(Vec3(0, 0, 0))
        self.body.setAngularVelocity(Vec3(0, 0, 0))
        self.body.clearForces()
        self.vehicle.resetSuspension()
        for i in range(4):
            self.vehicle.setSteeringValue(0.0, i)
            self.vehicle.applyEngineForce(0.0, i)
            self.vehicle.setBrake(0.0, i)

    def apply(self, controls: Controls) -> None:
        """Set engine, brake and steering for the next physics step."""
        s = self.spec
        v = self.speed
        force = s.engine_force * controls.throttle
        # Air drag and rolling resistance act against motion as a negative engine force.
        resist = s.drag * v * abs(v) + s.rolling * min(max(v / 0.5, -1.0), 1.0)
        steer = -controls.steering * s.max_steer_deg  # Bullet: positive = left
        for i in range(4):
            front = i < 2
            if front:
                self.vehicle.setSteeringValue(steer, i)
            self.vehicle.applyEngineForce(0.0 if front else force / 2 - resist / 4, i)
            self.vehicle.setBrake(
                s.brake_force * controls.brake
                + (0.8 if v < 0.3 and controls.throttle == 0 else 0.0),
                i,
            )

    @property
    def position(self) -> tuple[float, float]:
        """``(x, y)`` of the car's centre."""
        p = self.node.getPos()
        return float(p.x), float(p.y)

    @property
    def heading(self) -> float:
        """Heading in radians (0 = +y, counter-clockwise positive)."""
        return math.radians(self.node.getH())  # np.radians' product, without an array

    @property
    def speed(self) -> float:
        """Signed forward speed in m/s."""
        return float(self.vehicle.getCurrentSpeedKmHour()) / 3.6
