"""Lights after dark: street lamps, their pools of light, car head and tail lamps, headlight beams.

The software rasteriser has no lights, so light is faked in two cheap ways that it composes
correctly (checked on ``p3tinydisplay``, Panda3D 1.10):

* **Glow**: a lamp's own surface ignores the weather's darkening colour scale
  (``ColorScaleAttrib.makeOff()``, with a scale of its own), so at night it shows its full
  vertex colour while the rest of the town is tinted dark.
* **Light on the ground**: flat meshes whose vertex colours are the light's intensity (bright at
  the centre, black at the rim), drawn with additive blending (``dst + src``) in the ground
  layers' painter's order, right after the road markings. Anything standing (cars, buildings, the
  bonnet) is drawn later and covers them, so a pool never shines through a wall. Because the
  beam is a mesh on the car it follows curves and shows in every camera (hood and chase).

By day (``level`` 0) the lamp fittings, car lamps and light meshes are hidden: a hidden node
costs nothing, so daytime frames are exactly what they were before lamps existed, at the same
speed (drawn, the fittings cost ~0.1 ms per 90×160 frame: more vertices than all other props).
Weather is fixed for an episode, so nothing ever appears in view.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from panda3d.core import (
    ColorBlendAttrib,
    ColorScaleAttrib,
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexData,
    GeomVertexFormat,
    LVecBase4f,
    NodePath,
    RenderState,
    SamplerState,
    Texture,
    TextureAttrib,
)

from gta_env.sim.scene import LAYERS, TILE, Lighting, MeshBuilder
from gta_env.sim.town import Box, Town

LAMP_GLASS = (255, 236, 190)
HEAD_LAMP = (250, 246, 225)
TAIL_LAMP = (215, 20, 24)
LIGHT_BIN = len(LAYERS)
"""Draw order of the light meshes in the ``background`` bin: after every flat layer."""

_POOL = np.array([200.0, 168.0, 110.0])  # additive colour at the centre of a lamp's pool
_BEAM = np.array([135.0, 128.0, 105.0])  # additive colour of the headlights at their brightest


def set_glow(node: NodePath, level: float) -> None:
    """Make ``node`` glow (``level`` > 0: ignore the weather's tint, scaled by ``1 + level/3``)
    or look like any other surface (``level`` <= 0: lit and tinted with the scene)."""
    if level > 0.0:
        gain = 1.0 + level / 3.0
        node.setAttrib(ColorScaleAttrib.makeOff().setScale(LVecBase4f(gain, gain, gain, 1.0)), 1)
    else:
        node.clearColorScale()


def _light_layer(node: NodePath) -> None:
    """Additive, unlit, drawn after the road markings, never written to depth."""
    node.setBin("background", LIGHT_BIN)
    node.setDepthWrite(False)
    node.setDepthTest(False)
    node.setAttrib(
        ColorBlendAttrib.make(ColorBlendAttrib.MAdd, ColorBlendAttrib.OOne, ColorBlendAttrib.OOne)
    )
    node.hide()


def _set_light_level(node: NodePath, level: float) -> None:
    if level > 0.0:
        node.setAttrib(ColorScaleAttrib.makeOff().setScale(LVecBase4f(level, level, level, 1.0)))
        node.show()
    else:
        node.hide()


_UV_FORMAT = GeomVertexFormat.getV3t2()


def _falloff_texture(name: str, image: np.ndarray) -> Texture:
    """An RGB texture from a float image (rows from the bottom, values 0–255), edges black."""
    img = np.clip(image, 0, 255).astype(np.uint8)
    img[[0, -1]] = 0
    img[:, [0, -1]] = 0
    tex = Texture(name)
    tex.setup2dTexture(img.shape[1], img.shape[0], Texture.TUnsignedByte, Texture.FRgb)
    # Panda3D keeps RGB textures as BGR in RAM.
    tex.setRamImage(np.ascontiguousarray(img[..., ::-1]).tobytes())
    tex.setWrapU(SamplerState.WMClamp)
    tex.setWrapV(SamplerState.WMClamp)
    tex.setMagfilter(SamplerState.FTLinear)
    tex.setMinfilter(SamplerState.FTLinear)
    return tex


def _textured_triangles(name: str, pos: np.ndarray, uv: np.ndarray, tex: Texture) -> GeomNode:
    """Triangles ``pos`` (3k, 3) with texture coordinates ``uv`` (3k, 2), one texture."""
    vdata = GeomVertexData(name, _UV_FORMAT, Geom.UHStatic)
    vdata.uncleanSetNumRows(len(pos))
    verts = np.concatenate([pos, uv], 1).astype(np.float32)
    memoryview(vdata.modifyArray(0)).cast("B")[:] = verts.tobytes()
    prim = GeomTriangles(Geom.UHStatic)
    prim.addConsecutiveVertices(0, len(pos))
    geom = Geom(vdata)
    geom.addPrimitive(prim)
    node = GeomNode(name)
    node.addGeom(geom, RenderState.make(TextureAttrib.make(tex)))
    return node


def pool_texture(size: int = 32) -> Texture:
    """A round pool of light: lamp colour at the centre falling smoothly to black at the rim."""
    r = np.hypot(*np.meshgrid(*(np.linspace(-1, 1, size),) * 2))
    fall = np.clip(1.0 - r**2, 0.0, 1.0) ** 2
    return _falloff_texture("lamp_pool", fall[..., None] * _POOL)


def _pool_triangles(centres: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One upward-facing triangle per centre enclosing its disc; uv maps the disc's square."""
    a = np.radians([270.0, 30.0, 150.0])  # counter-clockwise seen from above
    corner = 2.0 * radius * np.stack([np.cos(a), np.sin(a)], 1)  # circumradius of the disc
    pos = np.zeros((len(centres) * 3, 3))
    pos[:, :2] = (centres[:, None, :] + corner[None]).reshape(-1, 2)
    uv = np.tile(corner / (2 * radius) + 0.5, (len(centres), 1))
    return pos, uv


class StreetLights:
    """A lamp head on every street pole of a town, and a pool of light on the road under it;
    all hidden until :meth:`set_level` turns them on.

    Attributes:
        node: parent of everything built (remove it to remove the lights).
        heads: the glowing lamp heads.
        pools: the pools of light on the ground (hidden by day).
        positions: ``(N, 2)`` ground positions of the lamp heads.
    """

    HEIGHT = 5.0
    POOL_RADIUS = 6.5

    def __init__(self, town: Town, parent: NodePath, light: Lighting) -> None:
        poles = [b for b in town.props if b.kind == "pole"]
        self.node = parent.attachNewNode("street_lights")
        road_points = np.concatenate([r.points for r in town.roads])
        arms: dict[tuple[int, int], MeshBuilder] = defaultdict(MeshBuilder)
        heads: dict[tuple[int, int], MeshBuilder] = defaultdict(MeshBuilder)
        pools: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
        positions = []
        for pole in poles:
            xy = np.array([pole.x, pole.y])
            d = road_points[np.argmin(((road_points - xy) ** 2).sum(1))] - xy
            d = d / (np.linalg.norm(d) + 1e-9)  # towards the road
            heading = float(np.arctan2(-d[0], d[1]))
            tile = (int(np.floor(pole.x / TILE)), int(np.floor(pole.y / TILE)))
            arm = xy + 0.6 * d
            arms[tile].add_box(
                Box(
                    arm[0],
                    arm[1],
                    heading,
                    0.12,
                    1.2,
                    0.12,
                    "lamp_arm",
                    (70, 70, 75),
                    self.HEIGHT - 0.12,
                ),
                light,
            )
            head = xy + 1.25 * d
            heads[tile].add_box(
                Box(
                    head[0],
                    head[1],
                    heading,
                    0.55,
                    0.9,
                    0.25,
                    "lamp",
                    LAMP_GLASS,
                    self.HEIGHT - 0.3,
                ),
                Lighting(light.sun, light.sun_color, 0.85),
            )
            pools[tile].append(xy + 3.0 * d)
            positions.append(head)
        self.positions = np.array(positions, float).reshape(-1, 2)
        self.heads = self.node.attachNewNode("lamp_heads")
        self.pools = self.node.attachNewNode("lamp_pools")
        arm_root = self.node.attachNewNode("lamp_arms")
        for builders, into in ((arms, arm_root), (heads, self.heads)):
            for tile, mb in sorted(builders.items()):
                into.attachNewNode(mb.build(f"{into.getName()}{tile}"))
        tex = pool_texture()
        for tile, centres in sorted(pools.items()):
            pos, uv = _pool_triangles(np.array(centres), self.POOL_RADIUS)
            self.pools.attachNewNode(_textured_triangles(f"lamp_pools{tile}", pos, uv, tex))
        _light_layer(self.pools)
        self.set_level(0.0)

    def set_level(self, level: float) -> None:
        """0: daytime (nothing drawn); 1: full night; in between: dusk."""
        if level > 0.0:
            self.node.show()
        else:
            self.node.hide()
        set_glow(self.heads, level)
        _set_light_level(self.pools, level)


def car_lamps_mesh(light: Lighting) -> GeomNode:
    """Head lamps (front, white-yellow) and tail lamps (back, red) of :func:`~scene.car_mesh`.

    For a car facing +y centred at the origin; the lamps stand 2 cm proud of the body's front
    and back faces (y = ±2.15) so they never fight it for depth. Make them glow with
    :func:`set_glow`.
    """
    mb = MeshBuilder()
    bright = Lighting(light.sun, light.sun_color, 0.85)
    for x in (-0.62, 0.62):
        mb.add_box(Box(x, 2.16, 0.0, 0.36, 0.06, 0.14, "head_lamp", HEAD_LAMP, 0.72), bright)
        mb.add_box(Box(x, -2.16, 0.0, 0.34, 0.06, 0.12, "tail_lamp", TAIL_LAMP, 0.76), bright)
    return mb.build("car_lamps")


def headlight_beam_mesh(
    reach: float = 32.0, spread_deg: float = 24.0, front: float = 2.2
) -> GeomNode:
    """The light of a car's headlights on the ground ahead, for a car facing +y at the origin.

    A fan from the bumper (``front``) to ``reach`` metres, brightest a few metres ahead and on
    the axis, fading with distance and towards ``±spread_deg``: one triangle carrying a falloff
    texture (draw it additively, see :class:`CarLights`). It fans out from 1.5 m behind the
    bumper, so it starts as wide as the car's two lamps.
    """
    apex = front - 1.5
    far = front + reach
    half = np.tan(np.radians(spread_deg)) * (far - apex) * 1.02
    w, h = 128, 128  # tinydisplay wants power-of-two textures
    x, y = np.meshgrid(np.linspace(-half, half, w), np.linspace(apex, far, h))
    rel = y - front
    angle = np.arctan2(np.abs(x), y - apex)
    along = np.clip(rel / 4.0, 0.0, 1.0) ** 0.7 * np.exp(-np.maximum(rel, 0.0) / 16.0)
    across = np.clip(1.0 - (angle / np.radians(spread_deg)) ** 2, 0.0, 1.0)
    gain = along * across / (along * across).max()
    tex = _falloff_texture("headlight_beam", gain[..., None] * _BEAM)
    pos = np.array([[0.0, apex, 0.02], [half, far, 0.02], [-half, far, 0.02]])
    uv = np.array([[0.5, 0.0], [1.0, 1.0], [0.0, 1.0]])
    return _textured_triangles("headlight_beam", pos, uv, tex)


class CarLights:
    """A car's head and tail lamps, and optionally its headlight beam, under ``parent``.

    ``parent`` is the car's visual node (origin on the ground, facing +y). Attributes ``lamps``
    and ``beam`` (None without one) are the NodePaths made.
    """

    def __init__(self, parent: NodePath, light: Lighting, *, beam: bool = True) -> None:
        self.lamps = parent.attachNewNode(car_lamps_mesh(light))
        self.beam: NodePath | None = None
        if beam:
            self.beam = parent.attachNewNode(headlight_beam_mesh())
            _light_layer(self.beam)
        self.set_level(0.0)

    def set_level(self, level: float) -> None:
        """0: daytime (lamps not drawn, the car looks and costs as before); > 0: the lamps glow
        and the beam lights the road, scaled."""
        if level > 0.0:
            self.lamps.show()
        else:
            self.lamps.hide()
        set_glow(self.lamps, level)
        if self.beam is not None:
            _set_light_level(self.beam, level)
