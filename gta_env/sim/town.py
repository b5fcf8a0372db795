"""Procedural towns: a road graph with curves and intersections, and what stands beside it.

A town is generated from a seed alone, so the same seed always gives the same town. Generation is
pure data (numpy + OpenCV rasters); meshes are built from it in :mod:`gta_env.sim.scene` and
physics bodies in :mod:`gta_env.sim.world`.

Layout: a jittered grid of intersections joined by two-way roads. Each road is a cubic Bézier
with random lateral bulges, so curve radii vary from town to town. Some grid links are dropped
(keeping every intersection at degree >= 2, so there are no dead ends and no U-turns are ever
needed). Buildings fill the blocks, set back from the kerb; poles, trees and parked cars stand
beside the road, never in a lane.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import cv2
import numpy as np

LANE_WIDTH = 3.5
"""Width of one lane in metres; roads have one lane each way."""


@dataclass(frozen=True)
class TownConfig:
    """Knobs of the town generator.

    Attributes:
        grid: intersections per side ``(columns, rows)``.
        spacing: mean distance between neighbouring intersections, metres.
        jitter: random displacement of intersections, metres.
        bulge: lateral Bézier bulge of roads as a fraction of their length (curvature).
        drop_fraction: fraction of grid links removed (never below degree 2).
        road_half_width: centre line to kerb, metres (one lane each way plus a shoulder).
        sidewalk_width: kerb to the edge of the sidewalk, metres.
        building_density: 0..1, how densely blocks are filled.
        pole_spacing: metres between street poles/trees along a road.
        parked_car_prob: probability that a road segment slot has a parked car beside it.
    """

    grid: tuple[int, int] = (4, 4)
    spacing: float = 90.0
    jitter: float = 12.0
    bulge: float = 0.12
    drop_fraction: float = 0.2
    road_half_width: float = 4.5
    sidewalk_width: float = 2.5
    building_density: float = 0.7
    pole_spacing: float = 24.0
    parked_car_prob: float = 0.25

    def __post_init__(self) -> None:
        if self.grid[0] < 2 or self.grid[1] < 2:
            raise ValueError(f"TownConfig.grid needs at least 2x2 intersections, got {self.grid}")
        if self.spacing < 40:
            raise ValueError(f"TownConfig.spacing must be >= 40 m, got {self.spacing}")
        if not 0 <= self.drop_fraction < 1:
            raise ValueError(
                f"TownConfig.drop_fraction must be in [0, 1), got {self.drop_fraction}"
            )


@dataclass(frozen=True)
class Road:
    """A two-way road between intersections ``a`` and ``b``.

    Attributes:
        a: start node index.
        b: end node index.
        points: centre line sampled about every 2 m from ``a`` to ``b``, shape (N, 2).
        length: arc length in metres.
    """

    a: int
    b: int
    points: np.ndarray
    length: float


@dataclass(frozen=True)
class Box:
    """An axis-aligned-in-its-own-frame box standing on the ground."""

    x: float
    y: float
    heading: float
    width: float
    depth: float
    height: float
    kind: str
    color: tuple[int, int, int]
    base: float = 0.0


@dataclass
class Town:
    """A generated town: graph, geometry rasters and props. Built by :func:`generate_town`."""

    seed: int
    config: TownConfig
    nodes: np.ndarray
    roads: list[Road]
    adjacency: dict[int, list[tuple[int, int]]]
    props: list[Box]
    bounds: tuple[float, float, float, float]
    mask_origin: tuple[float, float]
    mask_resolution: float
    road_mask: np.ndarray
    sky: tuple[float, float, float]
    sun: tuple[float, float, float]
    sun_color: tuple[float, float, float]
    ambient: float
    time_of_day: float
    junction_radius: float = field(default=0.0)

    def world_to_mask(self, x: float, y: float) -> tuple[int, int]:
        """Row and column of the raster cell holding world point ``(x, y)``."""
        col = int((x - self.mask_origin[0]) / self.mask_resolution)
        row = int((y - self.mask_origin[1]) / self.mask_resolution)
        return row, col

    def on_road(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` lies on the drivable road surface (roads and intersections)."""
        row, col = self.world_to_mask(x, y)
        h, w = self.road_mask.shape
        if not (0 <= row < h and 0 <= col < w):
            return False
        return bool(self.road_mask[row, col])

    def lane_polyline(self, road_index: int, forward: bool) -> np.ndarray:
        """The centre of the right-hand lane of a road when driven ``forward`` (a→b) or back."""
        pts = self.roads[road_index].points
        if not forward:
            pts = pts[::-1]
        return offset_polyline(pts, LANE_WIDTH / 2.0)

    def shortest_route(
        self, road_index: int, forward: bool, target_node: int
    ) -> list[tuple[int, bool]]:
        """Directed roads from the current one to ``target_node`` with no U-turns.

        Dijkstra over directed roads: from road ``u→v`` one may continue on any road leaving
        ``v`` except straight back to ``u``.
        """
        start = (road_index, forward)
        dist = {start: 0.0}
        prev: dict[tuple[int, bool], tuple[int, bool]] = {}
        heap: list[tuple[float, int, bool]] = [(0.0, road_index, forward)]
        while heap:
            d, ri, fw = heapq.heappop(heap)
            if d > dist.get((ri, fw), np.inf):
                continue
            road = self.roads[ri]
            head = road.b if fw else road.a
            if head == target_node and (ri, fw) != start:
                path = [(ri, fw)]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return path[::-1]
            tail = road.a if fw else road.b
            for nxt, other in self.adjacency[head]:
                if nxt == ri and other == tail:
                    continue
                nfw = self.roads[nxt].a == head
                nd = d + self.roads[nxt].length
                if nd < dist.get((nxt, nfw), np.inf):
                    dist[(nxt, nfw)] = nd
                    prev[(nxt, nfw)] = (ri, fw)
                    heapq.heappush(heap, (nd, nxt, nfw))
        raise RuntimeError(f"town {self.seed}: node {target_node} unreachable (graph is broken)")


def offset_polyline(points: np.ndarray, offset: float) -> np.ndarray:
    """Shift a polyline sideways by ``offset`` metres (positive = to the right of travel)."""
    d = np.gradient(points, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    right = np.stack([d[:, 1], -d[:, 0]], axis=1)
    return points + right * offset


def simplify_mask(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Vertices of a polyline to keep so that none dropped lies more than ``tolerance`` metres
    from the simplified line (Ramer–Douglas–Peucker); the ends are always kept."""
    n = len(points)
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    spans = [(0, n - 1)]
    while spans:
        i, j = spans.pop()
        if j <= i + 1:
            continue
        seg = points[j] - points[i]
        rel = points[i + 1 : j] - points[i]
        length = float(np.hypot(*seg))
        if length > 1e-9:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length
        else:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            m = i + 1 + k
            keep[m] = True
            spans += [(i, m), (m, j)]
    return keep


def polyline_length(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length at each vertex (starts at 0)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    s = polyline_length(points)
    n = max(int(np.ceil(s[-1] / step)), 2) + 1
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])], axis=1)


def _links(cols: int, rows: int) -> list[tuple[int, int]]:
    links = []
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            if c + 1 < cols:
                links.append((i, i + 1))
            if r + 1 < rows:
                links.append((i, i + cols))
    return links


def _connected(n: int, links: list[tuple[int, int]]) -> bool:
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in links:
        adj[a].append(b)
        adj[b].append(a)
    seen, stack = {0}, [0]
    while stack:
        for j in adj[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == n


_TIMES_OF_DAY = {
    # name: (sky rgb, sun direction, sun colour, ambient)
    "noon": ((0.53, 0.72, 0.92), (0.3, 0.4, 0.87), (1.0, 0.97, 0.9), 0.55),
    "morning": ((0.62, 0.75, 0.88), (0.8, 0.3, 0.5), (1.0, 0.9, 0.75), 0.5),
    "evening": ((0.85, 0.62, 0.45), (-0.8, -0.2, 0.35), (1.0, 0.75, 0.55), 0.45),
    "overcast": ((0.68, 0.70, 0.73), (0.2, 0.3, 0.93), (0.85, 0.85, 0.88), 0.7),
}


def generate_town(seed: int, config: TownConfig | None = None) -> Town:
    """Generate the town for ``seed``. Deterministic: same seed and config → same town."""
    cfg = config or TownConfig()
    rng = np.random.default_rng(seed)
    cols, rows = cfg.grid
    gx, gy = np.meshgrid(np.arange(cols) * cfg.spacing, np.arange(rows) * cfg.spacing)
    nodes = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    nodes += rng.uniform(-cfg.jitter, cfg.jitter, nodes.shape)

    links: list[tuple[int, int] | None] = list(_links(cols, rows))
    degree = np.zeros(len(nodes), int)
    for link in links:
        assert link is not None
        degree[list(link)] += 1
    to_drop = int(len(links) * cfg.drop_fraction)
    for k in rng.permutation(len(links)):
        if to_drop == 0:
            break
        link = links[k]
        if link is None:
            continue
        a, b = link
        if degree[a] <= 2 or degree[b] <= 2:
            continue
        trial = [link for i, link in enumerate(links) if i != k and link is not None]
        if _connected(len(nodes), trial):
            links[k] = None
            degree[a] -= 1
            degree[b] -= 1
            to_drop -= 1
    kept = [link for link in links if link is not None]

    roads: list[Road] = []
    adjacency: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(nodes))}
    for a, b in kept:
        p0, p3 = nodes[a], nodes[b]
        d = p3 - p0
        length = float(np.linalg.norm(d))
        n = np.array([d[1], -d[0]]) / length
        o1, o2 = rng.uniform(-cfg.bulge, cfg.bulge, 2) * length
        if rng.random() < 0.3:  # some roads are straight
            o1 = o2 = 0.0
        curve = _bezier(p0, p0 + d / 3 + n * o1, p0 + 2 * d / 3 + n * o2, p3, 64)
        pts = _resample(curve, 2.0)
        idx = len(roads)
        roads.append(Road(a, b, pts, float(polyline_length(pts)[-1])))
        adjacency[a].append((idx, b))
        adjacency[b].append((idx, a))

    margin = 60.0
    lo = nodes.min(axis=0) - margin
    hi = nodes.max(axis=0) + margin
    res = 0.5
    shape = (int((hi[1] - lo[1]) / res) + 1, int((hi[0] - lo[0]) / res) + 1)

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.round((p - lo) / res * 16).astype(np.int32)  # 4 fractional bits

    junction_radius = cfg.road_half_width + 3.0  # rounded corners: turns stay on asphalt
    road_mask = np.zeros(shape, np.uint8)
    kerb_mask = np.zeros(shape, np.uint8)
    for road in roads:
        line = [to_px(road.points)]
        cv2.polylines(road_mask, line, False, 1, int(2 * cfg.road_half_width / res), cv2.LINE_8, 4)
        kerb = 2 * (cfg.road_half_width + cfg.sidewalk_width)
        cv2.polylines(kerb_mask, line, False, 1, int(kerb / res), cv2.LINE_8, 4)
    for p in nodes:
        c = tuple(int(v) for v in to_px(p))
        cv2.circle(road_mask, c, int(junction_radius / res * 16), 1, -1, cv2.LINE_8, 4)
        cv2.circle(
            kerb_mask,
            c,
            int((junction_radius + cfg.sidewalk_width) / res * 16),
            1,
            -1,
            cv2.LINE_8,
            4,
        )
    # Distance (metres) from every cell to the nearest sidewalk/road cell.
    clearance = cv2.distanceTransform((1 - kerb_mask).astype(np.uint8), cv2.DIST_L2, 5) * res

    props = _place_props(rng, cfg, roads, nodes, lo, hi, res, clearance, junction_radius)
    tod_name = ["noon", "morning", "evening", "overcast"][int(rng.integers(4))]
    sky, sun, sun_color, ambient = _TIMES_OF_DAY[tod_name]
    sun_v = np.asarray(sun) / np.linalg.norm(sun)
    return Town(
        seed=seed,
        config=cfg,
        nodes=nodes,
        roads=roads,
        adjacency=adjacency,
        props=props,
        bounds=(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])),
        mask_origin=(float(lo[0]), float(lo[1])),
        mask_resolution=res,
        road_mask=road_mask.astype(bool),
        sky=sky,
        sun=(float(sun_v[0]), float(sun_v[1]), float(sun_v[2])),
        sun_color=sun_color,
        ambient=ambient,
        time_of_day=float(["morning", "noon", "evening", "overcast"].index(tod_name)),
        junction_radius=junction_radius,
    )


_BUILDING_COLORS = [
    (186, 160, 130),
    (160, 150, 140),
    (200, 190, 170),
    (140, 110, 95),
    (170, 175, 185),
    (210, 200, 160),
    (120, 125, 135),
    (190, 140, 120),
]
_CAR_COLORS = [
    (30, 60, 150),
    (200, 200, 205),
    (40, 40, 45),
    (150, 20, 25),
    (20, 110, 60),
    (220, 180, 40),
]


def _place_props(
    rng: np.random.Generator,
    cfg: TownConfig,
    roads: list[Road],
    nodes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    res: float,
    clearance: np.ndarray,
    junction_radius: float,
) -> list[Box]:
    props: list[Box] = []
    occupied = np.zeros_like(clearance, dtype=bool)

    def cell(x: float, y: float) -> tuple[int, int]:
        return int((y - lo[1]) / res), int((x - lo[0]) / res)

    def free(x: float, y: float, radius: float, min_clear: float) -> bool:
        r, c = cell(x, y)
        k = int(np.ceil(radius / res))
        if r - k < 0 or c - k < 0 or r + k >= clearance.shape[0] or c + k >= clearance.shape[1]:
            return False
        if clearance[r, c] < radius + min_clear:
            return False
        return not occupied[r - k : r + k + 1, c - k : c + k + 1].any()

    def occupy(x: float, y: float, radius: float) -> None:
        r, c = cell(x, y)
        k = int(np.ceil(radius / res))
        occupied[max(r - k, 0) : r + k + 1, max(c - k, 0) : c + k + 1] = True

    # Street furniture first, just beyond the sidewalk edge so it never stands in a lane.
    edge = cfg.road_half_width + cfg.sidewalk_width
    for road in roads:
        s = polyline_length(road.points)
        for side in (-1.0, 1.0):
            line = offset_polyline(road.points, side * (edge + 1.2))
            park = offset_polyline(road.points, side * (edge + 2.6))
            d = np.gradient(road.points, axis=0)
            hd = np.arctan2(-d[:, 0], d[:, 1])
            t = rng.uniform(6.0, cfg.pole_spacing)
            while t < s[-1] - 6.0:
                i = int(np.searchsorted(s, t))
                x, y = line[i]
                if _far_from_nodes(nodes, x, y, junction_radius + 6.0) and free(x, y, 0.3, 0.5):
                    kind = "tree" if rng.random() < 0.5 else "pole"
                    if kind == "tree":
                        props.append(Box(x, y, 0.0, 0.5, 0.5, 2.2, "tree", (90, 65, 40)))
                        props.append(
                            Box(x, y, 0.0, 2.4, 2.4, 2.0, "tree_crown", (50, 120, 45), 2.0)
                        )
                    else:
                        props.append(Box(x, y, 0.0, 0.25, 0.25, 5.0, "pole", (70, 70, 75)))
                    occupy(x, y, 1.3)
                j = min(int(np.searchsorted(s, t + cfg.pole_spacing / 2)), len(park) - 1)
                px, py = park[j]
                if (
                    rng.random() < cfg.parked_car_prob
                    and _far_from_nodes(nodes, px, py, junction_radius + 10.0)
                    and free(px, py, 1.0, 0.6)
                ):
                    color = _CAR_COLORS[int(rng.integers(len(_CAR_COLORS)))]
                    props.append(Box(px, py, float(hd[j]), 1.8, 4.2, 1.4, "parked_car", color))
                    occupy(px, py, 2.3)
                t += cfg.pole_spacing * rng.uniform(0.7, 1.3)

    # Buildings on a jittered lattice inside the blocks, set back >= 3 m from the sidewalk.
    step = 14.0
    xs = np.arange(lo[0] + 10, hi[0] - 10, step)
    ys = np.arange(lo[1] + 10, hi[1] - 10, step)
    for y0 in ys:
        for x0 in xs:
            if rng.random() > cfg.building_density:
                continue
            w, d = rng.uniform(7.0, 13.0, 2)
            x = x0 + rng.uniform(-2, 2)
            y = y0 + rng.uniform(-2, 2)
            radius = 0.5 * float(np.hypot(w, d))
            if not free(x, y, radius, 3.0):
                continue
            h = float(rng.choice([6.0, 9.0, 12.0, 18.0, 28.0], p=[0.3, 0.3, 0.2, 0.12, 0.08]))
            color = _BUILDING_COLORS[int(rng.integers(len(_BUILDING_COLORS)))]
            props.append(Box(float(x), float(y), 0.0, float(w), float(d), h, "building", color))
            occupy(x, y, radius)
    return props


def _far_from_nodes(nodes: np.ndarray, x: float, y: float, radius: float) -> bool:
    return bool(np.min(np.hypot(nodes[:, 0] - x, nodes[:, 1] - y)) > radius)
