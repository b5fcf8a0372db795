"""Meshes for a town: numpy-built geometry with baked lighting, few draw calls.

Rendering dominates a step on a CPU, so the scene is built for the software rasteriser:

* Lighting is baked into vertex colours at build time (sun direction, colour and ambient of the
  town's time of day): no lights, no shaders, no textures.
* Static geometry is merged per 80 m tile and per layer, so a frame is a few dozen draw calls and
  Panda3D's frustum culling still drops the tiles behind the camera.
* The ground-level layers (grass, sidewalk, asphalt, markings) are flat and drawn first in a fixed
  order with depth writes off (painter's algorithm). A 16-bit depth buffer could not separate
  layers a few centimetres apart at 50 m; drawing order can, and it is cheaper.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from panda3d.core import (
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    NodePath,
)

from gta_env.sim.town import Box, Town, offset_polyline, polyline_length, simplify_mask

TILE = 80.0
ASPHALT = (62, 62, 66)
SIDEWALK = (150, 148, 140)
GRASS = (84, 118, 58)
CENTRE_LINE = (232, 196, 40)
EDGE_LINE = (236, 236, 236)
MARKER = (255, 40, 200)

# Flat layers, in drawing order.
LAYERS = ("ground", "sidewalk", "road", "markings")
RIBBON_TOLERANCE = 0.03
"""Metres a ribbon's edge may move when its straight stretches are simplified (~0.1 pixel at
3 m in the 90×160 hood camera)."""
JUNCTION_BIN = len(LAYERS) + 4
"""Drawing order of stop lines and zebras: over every flat layer of the town."""

_VERTEX_DTYPE = np.dtype([("pos", "<f4", 3), ("color", "u1", 4)])


def _vertex_format() -> GeomVertexFormat:
    array = GeomVertexArrayFormat()
    array.addColumn("vertex", 3, Geom.NTFloat32, Geom.CPoint)
    array.addColumn("color", 4, Geom.NTUint8, Geom.CColor)
    return GeomVertexFormat.registerFormat(GeomVertexFormat(array))


_FORMAT = _vertex_format()


class Lighting:
    """Baked lighting: colour of a face from its normal."""

    def __init__(self, sun: Iterable[float], sun_color: Iterable[float], ambient: float) -> None:
        self.sun = np.asarray(tuple(sun), np.float64)
        self.sun_color = np.asarray(tuple(sun_color), np.float64)
        self.ambient = ambient

    def shade(self, color: Iterable[int], normal: np.ndarray) -> np.ndarray:
        """RGBA uint8 for a base colour lit from ``normal`` (unit 3-vector)."""
        diffuse = max(float(np.dot(normal, self.sun)), 0.0)
        factor = self.ambient + (1.0 - self.ambient) * diffuse * self.sun_color
        rgb = np.clip(np.asarray(tuple(color), np.float64) * factor, 0, 255)
        return np.array([*rgb.astype(np.uint8), 255], np.uint8)


class MeshBuilder:
    """Accumulates triangles, then emits one `GeomNode`."""

    def __init__(self) -> None:
        self._verts: list[np.ndarray] = []
        self._tris: list[np.ndarray] = []
        self._count = 0

    def __bool__(self) -> bool:
        return self._count > 0

    def add(self, pos: np.ndarray, color: np.ndarray, tris: np.ndarray) -> None:
        """Add vertices ``pos`` (N, 3) with colours (N, 4) or (4,) and triangles (M, 3)."""
        v = np.empty(len(pos), _VERTEX_DTYPE)
        v["pos"] = pos
        v["color"] = color
        self._verts.append(v)
        self._tris.append(np.asarray(tris, np.uint32) + self._count)
        self._count += len(pos)

    def add_ribbon(
        self,
        left: np.ndarray,
        right: np.ndarray,
        z: float,
        color: np.ndarray,
        tolerance: float = RIBBON_TOLERANCE,
    ) -> None:
        """A flat strip between two polylines of equal length (seen from above).

        Vertex pairs are dropped where both edges stay within ``tolerance`` metres of the
        simplified edges (straight stretches), so a long straight road costs a few triangles."""
        if tolerance > 0.0 and len(left) > 2:
            keep = simplify_mask(left, tolerance) | simplify_mask(right, tolerance)
            left, right = left[keep], right[keep]
        n = len(left)
        pos = np.empty((2 * n, 3))
        pos[0::2, :2] = left
        pos[1::2, :2] = right
        pos[:, 2] = z
        i = np.arange(n - 1)[:, None] * 2
        tris = np.concatenate([i + [0, 1, 2], i + [1, 3, 2]])
        self.add(pos, color, tris)

    def add_disc(self, x: float, y: float, radius: float, z: float, color: np.ndarray) -> None:
        """A flat regular 20-gon."""
        a = np.linspace(0, 2 * np.pi, 21)[:-1]
        pos = np.zeros((21, 3))
        pos[1:, 0] = x + radius * np.cos(a)
        pos[1:, 1] = y + radius * np.sin(a)
        pos[0, :2] = (x, y)
        pos[:, 2] = z
        k = np.arange(1, 21)
        tris = np.stack([np.zeros(20, int), k, np.roll(k, -1)], axis=1)
        self.add(pos, color, tris)

    def add_box(self, box: Box, light: Lighting, color: Iterable[int] | None = None) -> None:
        """A box standing at ``box.base`` (5 faces; the bottom is never seen)."""
        c, s = np.cos(box.heading), np.sin(box.heading)
        hw, hd = box.width / 2, box.depth / 2
        local = np.array([[-hw, -hd], [hw, -hd], [hw, hd], [-hw, hd]])
        xy = local @ np.array([[c, s], [-s, c]]) + (box.x, box.y)
        z0, z1 = box.base, box.base + box.height
        base = tuple(color) if color is not None else box.color
        pos: list[tuple[float, float, float]] = []
        cols: list[np.ndarray] = []
        tris: list[tuple[int, int, int]] = []
        for k in range(4):
            a, b = xy[k], xy[(k + 1) % 4]
            edge = b - a
            normal = np.array([edge[1], -edge[0], 0.0]) / (np.linalg.norm(edge) + 1e-9)
            n0 = len(pos)
            pos += [(*a, z0), (*b, z0), (*b, z1), (*a, z1)]
            cols += [light.shade(base, normal)] * 4
            tris += [(n0, n0 + 1, n0 + 2), (n0, n0 + 2, n0 + 3)]
        n0 = len(pos)
        pos += [(*p, z1) for p in xy]
        cols += [light.shade(base, np.array([0.0, 0.0, 1.0]))] * 4
        tris += [(n0, n0 + 1, n0 + 2), (n0, n0 + 2, n0 + 3)]
        self.add(np.array(pos), np.array(cols), np.array(tris))

    def build(self, name: str) -> GeomNode:
        """One `GeomNode` holding everything added so far."""
        verts = np.concatenate(self._verts)
        tris = np.concatenate(self._tris).ravel()
        vdata = GeomVertexData(name, _FORMAT, Geom.UHStatic)
        vdata.uncleanSetNumRows(len(verts))
        memoryview(vdata.modifyArray(0)).cast("B")[:] = verts.tobytes()
        prim = GeomTriangles(Geom.UHStatic)
        prim.setIndexType(Geom.NTUint32)
        handle = prim.modifyVertices()
        handle.uncleanSetNumRows(len(tris))
        memoryview(handle).cast("B")[:] = tris.astype(np.uint32).tobytes()
        geom = Geom(vdata)
        geom.addPrimitive(prim)
        node = GeomNode(name)
        node.addGeom(geom)
        return node


def _tile(x: float, y: float) -> tuple[int, int]:
    return int(np.floor(x / TILE)), int(np.floor(y / TILE))


def _dashes(points: np.ndarray, on: float, off: float, skip: float) -> list[np.ndarray]:
    """Pieces of a polyline for a dashed line, leaving ``skip`` metres free at both ends."""
    s = polyline_length(points)
    out = []
    t = skip
    while t + on < s[-1] - skip:
        ts = np.array([t, t + on])  # a 3 m dash is straight
        out.append(np.stack([np.interp(ts, s, points[:, 0]), np.interp(ts, s, points[:, 1])], 1))
        t += on + off
    return out


def _trim(points: np.ndarray, skip: float) -> np.ndarray:
    s = polyline_length(points)
    keep = (s >= skip) & (s <= s[-1] - skip)
    return points[keep]


def build_town_scene(town: Town, root: NodePath) -> NodePath:
    """Attach the static town geometry under ``root``; returns the node holding it."""
    cfg = town.config
    light = Lighting(town.sun, town.sun_color, town.ambient)
    up = np.array([0.0, 0.0, 1.0])
    flat = {
        "ground": light.shade(GRASS, up),
        "sidewalk": light.shade(SIDEWALK, up),
        "road": light.shade(ASPHALT, up),
        "centre": light.shade(CENTRE_LINE, up),
        "edge": light.shade(EDGE_LINE, up),
    }
    layers: dict[str, dict[tuple[int, int], MeshBuilder]] = {
        name: defaultdict(MeshBuilder) for name in LAYERS
    }
    solids: dict[tuple[int, int], MeshBuilder] = defaultdict(MeshBuilder)
    hw = cfg.road_half_width
    jr = town.junction_radius

    for road in town.roads:
        pts = road.points
        # Chunks of ~40 m so each lands in one tile and can be culled.
        for start in range(0, len(pts) - 1, 20):
            chunk = pts[start : start + 21]
            if len(chunk) < 2:
                continue
            tile = _tile(*chunk[len(chunk) // 2])
            side = hw + cfg.sidewalk_width
            layers["sidewalk"][tile].add_ribbon(
                offset_polyline(chunk, -side), offset_polyline(chunk, side), 0.0, flat["sidewalk"]
            )
            layers["road"][tile].add_ribbon(
                offset_polyline(chunk, -hw), offset_polyline(chunk, hw), 0.0, flat["road"]
            )
        inner = _trim(pts, jr)
        if len(inner) < 2:
            continue
        tile = _tile(*inner[len(inner) // 2])
        for dash in _dashes(inner, 3.0, 3.0, 0.5):
            layers["markings"][_tile(*dash.mean(axis=0))].add_ribbon(
                offset_polyline(dash, -0.12), offset_polyline(dash, 0.12), 0.0, flat["centre"]
            )
        for sign in (-1.0, 1.0):
            line = offset_polyline(inner, sign * (hw - 0.35))
            for start in range(0, len(line) - 1, 20):
                chunk = line[start : start + 21]
                if len(chunk) >= 2:
                    layers["markings"][_tile(*chunk[len(chunk) // 2])].add_ribbon(
                        offset_polyline(chunk, -0.1),
                        offset_polyline(chunk, 0.1),
                        0.0,
                        flat["edge"],
                    )
    for x, y in town.nodes:
        tile = _tile(x, y)
        layers["sidewalk"][tile].add_disc(x, y, jr + cfg.sidewalk_width, 0.0, flat["sidewalk"])
        layers["road"][tile].add_disc(x, y, jr, 0.0, flat["road"])

    for box in town.props:
        solids[_tile(box.x, box.y)].add_box(box, light)

    scene = root.attachNewNode("town")
    x0, y0, x1, y1 = town.bounds
    ground = MeshBuilder()
    far = 2000.0
    ground.add(
        np.array(
            [
                [x0 - far, y0 - far, 0],
                [x1 + far, y0 - far, 0],
                [x1 + far, y1 + far, 0],
                [x0 - far, y1 + far, 0],
            ],
            float,
        ),
        flat["ground"],
        np.array([[0, 1, 2], [0, 2, 3]]),
    )
    layers["ground"][(0, 0)] = ground
    for order, name in enumerate(LAYERS):
        layer = scene.attachNewNode(name)
        layer.setBin("background", order)
        layer.setDepthWrite(False)
        layer.setDepthTest(False)
        for tile, builder in sorted(layers[name].items()):
            if builder:
                layer.attachNewNode(builder.build(f"{name}{tile}"))
    solid_root = scene.attachNewNode("solids")
    for tile, builder in sorted(solids.items()):
        if builder:
            solid_root.attachNewNode(builder.build(f"solid{tile}"))
    return scene


def car_mesh(color: tuple[int, int, int], light: Lighting, name: str = "car") -> GeomNode:
    """A low-poly car (body, cabin, wheels) centred at the origin, facing +y."""
    r, g, b = color
    body = (int(r), int(g), int(b))
    mb = MeshBuilder()
    mb.add_box(Box(0, 0, 0, 1.8, 4.3, 0.65, "car", body, 0.35), light)
    mb.add_box(Box(0, -0.3, 0, 1.6, 2.1, 0.55, "car", body, 1.0), light)
    glass = (40, 50, 60)
    mb.add_box(Box(0, 0.76, 0, 1.5, 0.05, 0.45, "car", glass, 1.05), light)
    for wx in (-0.85, 0.85):
        for wy in (-1.35, 1.35):
            mb.add_box(Box(wx, wy, 0, 0.3, 0.66, 0.66, "wheel", (20, 20, 20), 0.0), light)
    return mb.build(name)


def marker_mesh(light: Lighting) -> GeomNode:
    """The purpose marker: a tall bright column seen from far away."""
    mb = MeshBuilder()
    mb.add_box(Box(0, 0, 0, 1.2, 1.2, 12.0, "marker", MARKER), light)
    return mb.build("purpose_marker")
