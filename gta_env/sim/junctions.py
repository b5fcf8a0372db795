"""Junctions of the living town: stop lines, zebra crossings and traffic lights.

Every approach of an intersection with three or more roads gets a stop line across its inbound
lane and a zebra crossing just beyond it. All four-way intersections and a seeded share of the
three-way ones are **signalised**: a signal head on a pole at the stop line (seen on the way in)
and one on the far side of the intersection (seen while waiting at the line). The other
intersections are uncontrolled: cars take turns (:class:`~gta_env.sim.traffic.IntersectionTurns`)
and yield to pedestrians.

A signalised intersection runs a fixed cycle with a seeded offset: the approaches of one axis
green, amber, all red; then the other axis; then a pedestrian phase in which every vehicle light
is red and walkers cross every zebra of the intersection. Light states for all approaches of a
town are one numpy array, recomputed from the game time each frame.

Distances along an approach are measured from the intersection's centre along the road's centre
line: the route's turn starts at ``junction_radius + 1.5`` (:func:`gta_env.sim.route.build_route`),
the zebra spans ``junction_radius + 0.5 .. + 3.5`` and the stop line is at ``+ 4.5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from panda3d.core import Geom, GeomNode, NodePath

from gta_env.sim.route import Route
from gta_env.sim.scene import Lighting, MeshBuilder
from gta_env.sim.town import LANE_WIDTH, Box, Town, polyline_length

GREEN, AMBER, RED = 0, 1, 2
LIGHT_NAMES = ("green", "amber", "red")
"""Names of the light states, indexed by state code."""

ZEBRA_OFFSET = 2.0
"""Centre of the zebra, metres beyond the junction radius."""
ZEBRA_HALF = 1.5
"""Half of the zebra's extent along the road, metres."""
STOP_OFFSET = 4.5
"""The stop line, metres beyond the junction radius."""
AMBER_S = 3.0
ALL_RED_S = 1.5
WALK_S = 11.0
"""Length of the pedestrian phase (every vehicle light red), seconds."""
SIGNAL_SHARE_3WAY = 0.5
"""Share of three-way intersections that get traffic lights."""

_HEAD_BASE = 2.7
_HEAD_SIZE = (0.95, 0.5, 2.25)  # width, depth, height of a signal head, metres
_LAMP = 0.62  # side of a lamp's square, metres
_LAMP_Z = (4.45, 3.82, 3.19)  # lamp centres (red, amber, green), metres above the road
LIT = {RED: (255, 38, 24), AMBER: (255, 176, 0), GREEN: (40, 255, 110)}
UNLIT = (34, 34, 36)
_STOP_KIND, _ZEBRA_KIND = 0, 1


@dataclass(frozen=True)
class Approach:
    """One road entering an intersection.

    Attributes:
        node: the intersection.
        road: the road index.
        centre: centre-line point of the stop line.
        travel: unit direction of inbound travel (toward the intersection).
        zebra: centre-line point of the zebra crossing.
        group: signal group (0 or 1), or -1 when the intersection has no lights.
    """

    node: int
    road: int
    centre: tuple[float, float]
    travel: tuple[float, float]
    zebra: tuple[float, float]
    group: int

    @property
    def right(self) -> tuple[float, float]:
        """Unit vector to the right of inbound travel (across the road)."""
        return self.travel[1], -self.travel[0]


def _along(town: Town, road: int, node: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre-line point ``d`` metres from ``node`` along ``road`` and the unit direction
    pointing away from the node there."""
    r = town.roads[road]
    s = polyline_length(r.points)
    at = d if r.a == node else s[-1] - d
    at = float(np.clip(at, 0.0, s[-1]))
    p = np.array([np.interp(at, s, r.points[:, 0]), np.interp(at, s, r.points[:, 1])])
    q_at = float(np.clip(at + (1.0 if r.a == node else -1.0), 0.0, s[-1]))
    q = np.array([np.interp(q_at, s, r.points[:, 0]), np.interp(q_at, s, r.points[:, 1])])
    u = q - p
    return p, u / (np.linalg.norm(u) + 1e-9)


class JunctionLayout:
    """Stop lines, zebras and signal groups of a town (pure data, from the town and a seed).

    Args:
        town: the town.
        rng: decides which three-way intersections get lights and the cycle timings.
        signals: False makes every intersection uncontrolled (stop lines and zebras stay).
    """

    def __init__(self, town: Town, rng: np.random.Generator, *, signals: bool = True) -> None:
        self.town = town
        jr = town.junction_radius
        approaches: list[Approach] = []
        signalised: list[int] = []
        for node in range(len(town.nodes)):
            roads = [r for r, _ in town.adjacency[node]]
            if len(roads) < 3:
                continue
            lit = signals and (len(roads) >= 4 or rng.random() < SIGNAL_SHARE_3WAY)
            lines = [_along(town, road, node, jr + STOP_OFFSET) for road in roads]
            outward = [u for _, u in lines]
            groups = _axis_groups(np.array(outward)) if lit else [-1] * len(roads)
            if lit:
                signalised.append(node)
            for road, (centre, u), group in zip(roads, lines, groups, strict=True):
                zebra, _ = _along(town, road, node, jr + ZEBRA_OFFSET)
                approaches.append(
                    Approach(
                        node=node,
                        road=road,
                        centre=(float(centre[0]), float(centre[1])),
                        travel=(float(-u[0]), float(-u[1])),
                        zebra=(float(zebra[0]), float(zebra[1])),
                        group=int(group),
                    )
                )
        self.approaches = approaches
        self.index = {(a.node, a.road): k for k, a in enumerate(approaches)}
        n = len(approaches)
        self.node = np.array([a.node for a in approaches], np.int64).reshape(n)
        self.group = np.array([a.group for a in approaches], np.int64).reshape(n)
        self.centre = np.array([a.centre for a in approaches], np.float64).reshape(n, 2)
        self.travel = np.array([a.travel for a in approaches], np.float64).reshape(n, 2)
        self.right = np.stack([self.travel[:, 1], -self.travel[:, 0]], axis=1)
        self.zebra = np.array([a.zebra for a in approaches], np.float64).reshape(n, 2)
        self.signalised = self.group >= 0
        # Cycle per signalised node: green A, amber, all red, green B, amber, all red, walk.
        nodes = sorted(set(signalised))
        self.signal_nodes = np.array(nodes, np.int64)
        green = rng.uniform(8.0, 12.0, (len(nodes), 2))
        self.green = green
        self.cycle = green.sum(axis=1) + 2 * (AMBER_S + ALL_RED_S) + WALK_S
        self.offset = rng.uniform(0.0, 1.0, len(nodes)) * self.cycle
        slot = {node: i for i, node in enumerate(nodes)}
        self._slot = np.array([slot.get(int(a), -1) for a in self.node], np.int64).reshape(n)
        half = town.config.road_half_width
        # Stop line: across the inbound lane, from the centre line to the kerb.
        self.stop_a = self.centre + self.right * 0.1
        self.stop_b = self.centre + self.right * (half - 0.3)
        # What `states` and `crossed_stop_lines` ask every frame, worked out once.
        lit_k = self._slot >= 0
        lit_slot = self._slot[lit_k]
        g0, g1 = self.green[lit_slot, 0], self.green[lit_slot, 1]
        start1 = g0 + AMBER_S + ALL_RED_S
        self._lit = lit_k
        self._lit_any = bool(lit_k.any()) and len(self.signal_nodes) > 0
        self._lit_offset = self.offset[lit_slot]
        self._lit_cycle = self.cycle[lit_slot]
        self._lit_end1 = start1 + g1 + AMBER_S + ALL_RED_S
        self._lit_start = np.where(self.group[lit_k] == 0, 0.0, start1)
        self._lit_green = np.where(self.group[lit_k] == 0, g0, g1)
        self._lit_amber_end = self._lit_green + AMBER_S
        self._ax, self._ay = self.stop_a[:, 0].copy(), self.stop_a[:, 1].copy()
        self._bx, self._by = self.stop_b[:, 0].copy(), self.stop_b[:, 1].copy()
        self._abx, self._aby = self._bx - self._ax, self._by - self._ay
        self._tx, self._ty = self.travel[:, 0].copy(), self.travel[:, 1].copy()

    def __len__(self) -> int:
        return len(self.approaches)

    # -- signal phases ------------------------------------------------------------------------
    def states(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The lights at game time ``t`` seconds.

        Returns:
            ``(state, walk)`` per approach: GREEN/AMBER/RED (GREEN where unsignalised), and
            seconds since its intersection's pedestrian phase began (``inf`` outside it and
            where unsignalised).
        """
        n = len(self.approaches)
        states = np.full(n, GREEN, np.int64)
        walk = np.full(n, np.inf)
        if not self._lit_any:
            return states, walk
        p = (t + self._lit_offset) % self._lit_cycle
        q = p - self._lit_start
        green = self._lit_green
        state = np.where(
            (q >= 0) & (q < green),
            GREEN,
            np.where((q >= green) & (q < self._lit_amber_end), AMBER, RED),
        )
        states[self._lit] = state
        walk[self._lit] = np.where(p >= self._lit_end1, p - self._lit_end1, np.inf)
        return states, walk

    # -- routes -------------------------------------------------------------------------------
    def route_stops(self, route: Route) -> tuple[np.ndarray, np.ndarray]:
        """Where a route meets stop lines and zebras.

        Returns:
            ``(s, ref)``: arc lengths along ``route`` sorted ascending, and for each, the
            approach index ``k`` for a stop line or ``-1 - k`` for the zebra of approach ``k``.
        """
        town = self.town
        lane_offset = LANE_WIDTH / 2
        out_s: list[float] = []
        out_ref: list[int] = []
        directed = route.directed
        # A random walk can pass the same approach twice: look for each directed road's lines
        # only on its own stretch of the route (and the turn after it).
        bounds = np.searchsorted(route.edges, np.arange(len(directed) + 2))
        for i, (road, forward) in enumerate(directed):
            head = town.roads[road].b if forward else town.roads[road].a
            span = (int(bounds[i]), int(bounds[min(i + 2, len(bounds) - 1)]))
            k = self.index.get((head, road))
            if k is not None:
                stop = self.centre[k] + self.right[k] * lane_offset
                zebra_in = self.zebra[k] + self.right[k] * lane_offset
                for point, ref in ((stop, k), (zebra_in, -1 - k)):
                    s = _locate(route, point, span)
                    if s is not None:
                        out_s.append(s)
                        out_ref.append(ref)
            if i + 1 < len(directed):
                exit_road = directed[i + 1][0]
                k_out = self.index.get((head, exit_road))
                if k_out is not None:
                    # Outbound lane: the left of the exit road's inbound travel.
                    point = self.zebra[k_out] - self.right[k_out] * lane_offset
                    s = _locate(route, point, span)
                    if s is not None:
                        out_s.append(s)
                        out_ref.append(-1 - k_out)
        order = np.argsort(out_s, kind="stable")
        return np.asarray(out_s, np.float64)[order], np.asarray(out_ref, np.int64)[order]

    def crossed_stop_lines(self, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        """Approach indices whose stop line the segment ``p0 → p1`` crosses moving inbound."""
        if len(self.approaches) == 0:
            return np.zeros(0, np.int64)
        # Per-coordinate arrays and plain floats: the same arithmetic as the orientation test
        # on (K, 2) arrays, without its indexing overhead (this runs every frame).
        x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
        dx, dy = x1 - x0, y1 - y0
        moving_in = self._tx * dx + self._ty * dy > 0.0
        ax, ay, bx, by = self._ax, self._ay, self._bx, self._by
        abx, aby = self._abx, self._aby
        o1 = abx * (y0 - ay) - aby * (x0 - ax)
        o2 = abx * (y1 - ay) - aby * (x1 - ax)
        o3 = dx * (ay - y0) - dy * (ax - x0)
        o4 = dx * (by - y0) - dy * (bx - x0)
        hit = (o1 * o2 < 0) & (o3 * o4 < 0) & moving_in
        return hit.nonzero()[0]

    # -- meshes -------------------------------------------------------------------------------
    def solids(self) -> list[Box]:
        """Signal poles and heads (solid: the car can hit them), in world coordinates."""
        boxes: list[Box] = []
        for pos, heading in self.signal_heads():
            x, y = pos
            boxes.append(Box(x, y, 0.0, 0.22, 0.22, _HEAD_BASE, "signal_pole", (60, 62, 66)))
            w, d, h = _HEAD_SIZE
            boxes.append(Box(x, y, heading, w, d, h, "signal_pole", (28, 30, 32), _HEAD_BASE))
        return boxes

    def signal_heads(self) -> list[tuple[tuple[float, float], float]]:
        """``((x, y), heading)`` of every signal head; heads face the approaching traffic.

        Two per signalised approach, in approach order: at the stop line on the right kerb,
        and beyond the intersection on the far right corner.
        """
        heads = []
        half = self.town.config.road_half_width
        jr = self.town.junction_radius
        for k in np.flatnonzero(self.signalised):
            face = -self.travel[k]  # toward the approaching cars
            heading = float(np.arctan2(-face[0], face[1]))
            near = self.centre[k] + self.right[k] * (half + 1.1) - self.travel[k] * 0.3
            node = self.town.nodes[self.node[k]]
            far = None
            for extra in np.arange(0.0, 4.01, 0.5):
                p = (
                    node
                    + self.travel[k] * (jr + STOP_OFFSET)
                    + self.right[k] * (half + 1.1 + extra)
                )
                if not self.town.on_road(float(p[0]), float(p[1])):
                    far = p
                    break
            heads.append(((float(near[0]), float(near[1])), heading))
            if far is not None:
                heads.append(((float(far[0]), float(far[1])), heading))
            else:  # keep two per approach: a second head on the near pole's face
                heads.append(((float(near[0]), float(near[1])), heading))
        return heads

    def lamps(self, k: int) -> list[tuple[np.ndarray, dict[int, tuple[float, float, float]]]]:
        """The lamps of approach ``k``'s signal heads: per head, the unit direction its face
        looks in and the world centre of its RED, AMBER and GREEN lamp."""
        if not self.signalised[k]:
            return []
        j = int(np.searchsorted(np.flatnonzero(self.signalised), k))
        out = []
        for pos, heading in self.signal_heads()[2 * j : 2 * j + 2]:
            face = np.array([-np.sin(heading), np.cos(heading)])
            centre = np.asarray(pos) + face * (_HEAD_SIZE[1] / 2 + 0.03)
            lamps = {
                state: (float(centre[0]), float(centre[1]), z)
                for state, z in zip((RED, AMBER, GREEN), _LAMP_Z, strict=True)
            }
            out.append((face, lamps))
        return out

    def markings(self, light: Lighting) -> MeshBuilder:
        """Stop lines and zebra stripes (flat, drawn over the road markings)."""
        mb = MeshBuilder()
        white = light.shade((238, 238, 238), np.array([0.0, 0.0, 1.0]))
        half = self.town.config.road_half_width
        for k in range(len(self.approaches)):
            t, r = self.travel[k], self.right[k]
            c = self.centre[k]
            _quad(mb, c + r * 0.1, c + r * (half - 0.3), t, 0.45, white)
            z = self.zebra[k]
            for lat in np.arange(-half + 0.55, half - 0.3, 1.0):
                p = z + r * lat
                _quad(mb, p - t * ZEBRA_HALF, p + t * ZEBRA_HALF, r, 0.5, white)
        return mb


def _quad(
    mb: MeshBuilder, a: np.ndarray, b: np.ndarray, across: np.ndarray, width: float, color: Any
) -> None:
    """A flat strip from ``a`` to ``b``, ``width`` wide in direction ``across``."""
    h = across * width / 2
    pos = np.array([[*(a - h), 0.0], [*(a + h), 0.0], [*(b + h), 0.0], [*(b - h), 0.0]])
    mb.add(pos, color, np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]]))


def _axis_groups(outward: np.ndarray) -> list[int]:
    """Split an intersection's approaches into two signal groups by axis: the most opposed
    pair of roads (and anything within 45° of its axis) is group 0, the rest group 1."""
    n = len(outward)
    best, pair = 2.0, (0, 1)
    for i in range(n):
        for j in range(i + 1, n):
            c = float(outward[i] @ outward[j])
            if c < best:
                best, pair = c, (i, j)
    axis = outward[pair[0]]
    return [0 if abs(float(u @ axis)) > np.cos(np.radians(45.0)) else 1 for u in outward]


def _locate(
    route: Route, point: np.ndarray, span: tuple[int, int], tolerance: float = 3.0
) -> float | None:
    """Arc length of the point nearest ``point`` on the route's vertices ``span[0]..span[1]``
    (None if the route passes further away than ``tolerance`` metres there)."""
    lo, hi = max(span[0] - 1, 0), min(span[1] + 1, len(route.points))
    if hi - lo < 2:
        return None
    a, b = route.points[lo : hi - 1], route.points[lo + 1 : hi]
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0.0, 1.0)
    closest = a + t[:, None] * ab
    d = np.hypot(*(closest - point).T)
    k = int(np.argmin(d))
    if d[k] > tolerance:
        return None
    return float(route.s[lo + k] + t[k] * np.linalg.norm(ab[k]))


class SignalLamps:
    """All lamps of a town's signal heads in one mesh whose colours follow the light states.

    The lamps ignore the weather's tint (they glow at night); colours are rewritten only when
    a state changes.
    """

    def __init__(self, layout: JunctionLayout, root: NodePath) -> None:
        self.layout = layout
        mb = MeshBuilder()
        unlit = np.array([*UNLIT, 255], np.uint8)
        self._lamp_state: list[int] = []
        self._lamp_approach: list[int] = []
        for k in np.flatnonzero(layout.signalised):
            for face, lamps in layout.lamps(int(k)):
                side = np.array([face[1], -face[0], 0.0]) * _LAMP / 2
                up = np.array([0.0, 0.0, _LAMP / 2])
                for state, centre in lamps.items():
                    c = np.asarray(centre)
                    quad = np.array([c - side - up, c + side - up, c + side + up, c - side + up])
                    mb.add(quad, unlit, np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]]))
                    self._lamp_state.append(state)
                    self._lamp_approach.append(int(k))
        self.node: NodePath | None = None
        self._states = np.full(len(layout), -1, np.int64)
        if not mb:
            return
        self._geom_node: GeomNode = mb.build("signal_lamps")
        self.node = root.attachNewNode(self._geom_node)
        self.node.setColorScaleOff(10)  # lamps glow: the weather's tint does not dim them
        self._verts = np.concatenate(mb._verts)
        self._lamp_state_arr = np.repeat(np.array(self._lamp_state), 4)
        self._lamp_approach_arr = np.repeat(np.array(self._lamp_approach), 4)

    def update(self, states: np.ndarray) -> None:
        """Light the lamps that ``states`` (per approach) calls for."""
        if self.node is None or np.array_equal(states, self._states):
            return
        self._states = states.copy()
        lit = states[self._lamp_approach_arr] == self._lamp_state_arr
        colours = np.empty((len(lit), 4), np.uint8)
        colours[:] = (*UNLIT, 255)
        for state, rgb in LIT.items():
            colours[lit & (self._lamp_state_arr == state)] = (*rgb, 255)
        self._verts["color"] = colours
        geom: Geom = self._geom_node.modifyGeom(0)
        vdata = geom.modifyVertexData()
        memoryview(vdata.modifyArray(0)).cast("B")[:] = self._verts.tobytes()


FRONT = 2.15
"""Metres from a car's centre to its front bumper."""
STOP_MARGIN = 1.0
"""A car stopping for a line stops with its front this far before it."""
AMBER_DECEL = 6.0
"""Amber: a car that can still stop before the line at this deceleration stops, one that
cannot goes on (it crosses well within the amber time)."""
LOOK_AHEAD = 60.0
"""Stop lines and zebras further ahead than this are ignored."""


class StopTable:
    """The stop lines and zebras along N cars' routes, ready for :meth:`rules`.

    Every car asks every frame where it must stop; what depends only on the routes (which
    approach each entry refers to, whether it is a signalised line, the stop points before
    each line and zebra) is worked out once here, when the routes change.

    Args:
        stop_s: (N, K) arc lengths of each car's stop lines and zebras (``inf`` padding), as
            :meth:`JunctionLayout.route_stops` gives them.
        stop_ref: (N, K) their references (approach ``k`` or ``-1 - k`` for a zebra).
        signalised: per approach, whether it has lights (:attr:`JunctionLayout.signalised`).
    """

    def __init__(self, stop_s: np.ndarray, stop_ref: np.ndarray, signalised: np.ndarray) -> None:
        self.stop_s = stop_s
        self.empty = len(signalised) == 0 or stop_s.shape[1] == 0
        self.rows = np.arange(len(stop_s))
        self.is_line = stop_ref >= 0
        self.is_zebra = ~self.is_line
        k = np.where(self.is_line, stop_ref, -1 - stop_ref)
        self.k = np.minimum(np.maximum(k, 0), max(len(signalised) - 1, 0))
        self.signalised_line = (
            self.is_line & signalised[self.k] if not self.empty else np.zeros_like(self.is_line)
        )
        self.line_point = stop_s - FRONT - STOP_MARGIN
        self.zebra_point = stop_s - ZEBRA_HALF - FRONT - STOP_MARGIN

    def stop_at(
        self, s: np.ndarray, speed: np.ndarray, states: np.ndarray, occupied: np.ndarray
    ) -> np.ndarray:
        """(N,) arc length where each car's centre must stop (``inf``: nowhere).

        Args:
            s: (N,) where each car is on its route.
            speed: (N,) m/s.
            states: light state per approach.
            occupied: per zebra, whether a walker is on it.
        """
        return self._rules(s, speed, states, occupied)[0]

    def rules(
        self, s: np.ndarray, speed: np.ndarray, states: np.ndarray, occupied: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(stop_at, light, line_s, approach)`` per car: as :meth:`stop_at`, and the state
        of the next signalised stop line ahead (-1: none), that line's arc length (``inf``:
        none) and its approach index (-1: none)."""
        stop_at, state, line_ahead = self._rules(s, speed, states, occupied)
        n = len(s)
        if self.empty or len(states) == 0:
            none = np.full(n, -1, np.int64)
            return stop_at, none, np.full(n, np.inf), none
        # The governing light: the first signalised line ahead.
        signalised_line = line_ahead & self.signalised_line
        first = signalised_line.argmax(axis=1)
        rows = self.rows
        found = signalised_line[rows, first]
        light = np.where(found, state[rows, first], -1)
        line_s = np.where(found, self.stop_s[rows, first], np.inf)
        approach = np.where(found, self.k[rows, first], -1)
        return stop_at, light, line_s, approach

    def _rules(
        self, s: np.ndarray, speed: np.ndarray, states: np.ndarray, occupied: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.empty or len(states) == 0:
            return np.full(len(s), np.inf), np.zeros(0), np.zeros(0)
        ahead = self.stop_s - s[:, None]
        # Padding is inf, and inf is never within the look-ahead.
        valid = ahead < LOOK_AHEAD
        k = self.k
        state = states[k]
        # A stop line binds until the car's front is a little past it.
        line_ahead = valid & self.is_line & (ahead > FRONT - 0.5)
        signal = line_ahead & (state != GREEN)
        # Measured to the line itself, not to the margin before it: a car already braking to a
        # halt just short of its stop point must not turn "cannot stop" and run on into the red.
        can_stop = ahead - FRONT > speed[:, None] ** 2 / (2 * AMBER_DECEL) + 0.2
        red_stop = signal & ((state == RED) | can_stop)
        zebra_stop = valid & self.is_zebra & occupied[k] & (ahead - ZEBRA_HALF > FRONT + 0.3)
        stop_point = np.where(
            red_stop, self.line_point, np.where(zebra_stop, self.zebra_point, np.inf)
        )
        return stop_point.min(axis=1), state, line_ahead


def rule_stops(
    stop_s: np.ndarray,
    stop_ref: np.ndarray,
    s: np.ndarray,
    speed: np.ndarray,
    states: np.ndarray,
    occupied: np.ndarray,
    signalised: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where cars must stop for lights and walkers, vectorised over cars.

    A one-off :class:`StopTable`; a caller asking every frame keeps the table instead.

    Args:
        stop_s: (N, K) arc lengths of each car's stop lines and zebras (``inf`` padding), as
            :meth:`JunctionLayout.route_stops` gives them.
        stop_ref: (N, K) their references (approach ``k`` or ``-1 - k`` for a zebra).
        s: (N,) where each car is on its route.
        speed: (N,) m/s.
        states: light state per approach.
        occupied: per zebra, whether a walker is on it.
        signalised: per approach, whether it has lights (:attr:`JunctionLayout.signalised`).

    Returns:
        ``(stop_at, light, line_s, approach)`` per car: the arc length where its centre must
        stop (``inf``: nowhere), the state of the next signalised stop line ahead (-1: none),
        that line's arc length (``inf``: none) and its approach index (-1: none).
    """
    return StopTable(stop_s, stop_ref, signalised).rules(s, speed, states, occupied)
