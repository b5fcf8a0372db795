"""Headless cameras: a Panda3D graphics engine per world, or one engine for a batch of worlds.

No `ShowBase` (a process-wide singleton): each :class:`Renderer` owns its own `GraphicsEngine`
and one offscreen buffer per camera, so two environments in one process render independently.
A :class:`TiledRenderer` instead renders the cameras of many worlds with one engine into one
offscreen buffer: each world's camera draws into its own display region (a tile) over its own
scene graph, so one render pass and one readback serve the whole batch (the design of
PyBatchRender and Madrona's batch renderer). A world sees its tiles through a
:class:`TileSlot`, which offers the same calls as a `Renderer` (:class:`CameraHost`).

The software rasteriser (``p3tinydisplay``) needs no display, GPU or system package;
``renderer="gl"`` uses EGL (``p3headlessgl``, loaded as an aux display module).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from panda3d.core import (
    Camera,
    CullBinEnums,
    CullBinManager,
    DisplayRegion,
    FrameBufferProperties,
    GraphicsEngine,
    GraphicsOutput,
    GraphicsPipe,
    GraphicsPipeSelection,
    NodePath,
    PerspectiveLens,
    Texture,
    WindowProperties,
    loadPrcFileData,
)

# Process-wide Panda3D settings, identical for every world: offscreen, silent, no audio.
loadPrcFileData(
    "gta5drive",
    "\n".join(
        [
            "window-type offscreen",
            "load-display p3tinydisplay",
            "aux-display p3headlessgl",
            "audio-library-name null",
            "notify-level error",
            "default-directnotify-level error",
            "sync-video false",
            "framebuffer-multisample false",
        ]
    ),
)

# Opaque geometry is drawn in scene-graph order. Panda3D's default sorts it by render state,
# which orders by where the states sit in memory: where two surfaces tie in depth, which one
# shows then depended on what the process had allocated before, and a second env in one process
# drew a pixel differently from the first (same seed, same scene). Scene-graph order is the same
# in every process and is as fast here (a few dozen draws a frame).
_bins = CullBinManager.getGlobalPtr()
_bins.setBinType(_bins.findBin("opaque"), CullBinEnums.BT_unsorted)

_PIPE_TYPES = {"software": "TinyOffscreenGraphicsPipe", "gl": "eglGraphicsPipe"}
_TO_RGB = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
"""OpenCV conversions from a Panda3D RAM image's byte order, by its number of channels."""
_pipes: dict[str, GraphicsPipe] = {}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ layer's stderr (harmless x11 complaints when no display exists)."""
    try:
        fd = os.dup(2)
    except OSError:  # pragma: no cover - no stderr at all
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def get_pipe(renderer: str) -> GraphicsPipe:
    """The graphics pipe for ``renderer`` (``"software"`` or ``"gl"``), created once.

    A pipe is a stateless handle on a rendering API; engines, buffers and scenes are per world.
    """
    if renderer not in _PIPE_TYPES:
        raise ValueError(f"renderer must be one of {sorted(_PIPE_TYPES)}, got {renderer!r}")
    if renderer not in _pipes:
        with _quiet_stderr():
            selection = GraphicsPipeSelection.getGlobalPtr()
            # p3headlessgl is an *aux* display (prc above): its pipe type exists only once the
            # aux modules are loaded. Loading them is harmless where EGL is missing.
            selection.loadAuxModules()
            wanted = _PIPE_TYPES[renderer]
            pipe_type = next((t for t in selection.getPipeTypes() if t.getName() == wanted), None)
            pipe = selection.makePipe(pipe_type) if pipe_type is not None else None
        if pipe is None or not pipe.isValid():
            raise RuntimeError(
                f"Panda3D could not open its {renderer!r} renderer ({wanted}"
                + ("" if pipe_type is not None else ": no such pipe type; is libEGL installed?")
                + "). Use renderer='software', which needs no GPU or display."
            )
        _pipes[renderer] = pipe
    return _pipes[renderer]


@dataclass
class View:
    """A camera of one world: its name, image size and node (under the car's mount)."""

    name: str
    width: int
    height: int
    node: NodePath


class CameraHost(Protocol):
    """What a world needs from whatever renders its cameras (`Renderer` or `TileSlot`)."""

    @property
    def cameras(self) -> dict[str, View]: ...

    def add_camera(
        self,
        name: str,
        *,
        scene: NodePath,
        parent: NodePath,
        size: tuple[int, int],
        fov: float,
        near: float = 0.3,
        far: float = 400.0,
        clear_color: tuple[float, float, float] = (0.5, 0.7, 0.9),
    ) -> View: ...

    def set_clear_color(self, color: tuple[float, float, float]) -> None: ...

    def render(self, names: tuple[str, ...]) -> dict[str, np.ndarray]: ...

    def remove_cameras(self) -> None: ...

    def close(self) -> None: ...


def _camera_node(
    name: str,
    *,
    scene: NodePath,
    parent: NodePath,
    size: tuple[int, int],
    fov: float,
    near: float,
    far: float,
) -> NodePath:
    """A camera over ``scene`` looking along +y of ``parent``; ``size = (height, width)``."""
    height, width = size
    lens = PerspectiveLens()
    lens.setFov(fov, np.degrees(2 * np.arctan(np.tan(np.radians(fov) / 2) * height / width)))
    lens.setNearFar(near, far)
    cam = Camera(name)
    cam.setLens(lens)
    cam.setScene(scene)
    return parent.attachNewNode(cam)


def _frame_buffer_properties() -> FrameBufferProperties:
    fb = FrameBufferProperties()
    fb.setRgbColor(True)
    fb.setRgbaBits(8, 8, 8, 0)
    fb.setDepthBits(16)
    return fb


@dataclass
class CameraView(View):
    """One camera rendering into its own offscreen buffer."""

    buffer: GraphicsOutput
    texture: Texture

    def read(self) -> np.ndarray:
        """The last rendered frame, uint8 H×W×3, top row first.

        Panda3D keeps the image bottom row first, as B, G, R (and A) bytes. Where it is 8-bit,
        OpenCV reorders the channels and flips the rows of the image as it lies (half the time
        of ``getRamImageAs("RGB")``, which converts in a per-pixel loop, and a numpy flip).
        """
        texture = self.texture
        channels = texture.getNumComponents()
        if texture.getComponentType() != Texture.T_unsigned_byte or channels not in _TO_RGB:
            data = texture.getRamImageAs("RGB")
            img = np.frombuffer(memoryview(data), np.uint8).reshape(self.height, self.width, 3)
            return np.ascontiguousarray(img[::-1])
        raw = np.frombuffer(memoryview(texture.getRamImage()), np.uint8)
        rgb = cv2.cvtColor(raw.reshape(self.height, self.width, channels), _TO_RGB[channels])
        return cv2.flip(rgb, 0)


class Renderer:
    """A graphics engine with named cameras over one scene graph."""

    def __init__(self, *, renderer: str = "software") -> None:
        self.pipe = get_pipe(renderer)
        self.engine = GraphicsEngine(self.pipe)
        self._views: dict[str, CameraView] = {}

    @property
    def cameras(self) -> dict[str, View]:
        """The cameras by name."""
        return dict(self._views)

    def add_camera(
        self,
        name: str,
        *,
        scene: NodePath,
        parent: NodePath,
        size: tuple[int, int],
        fov: float,
        near: float = 0.3,
        far: float = 400.0,
        clear_color: tuple[float, float, float] = (0.5, 0.7, 0.9),
    ) -> CameraView:
        """Create camera ``name`` with ``size = (height, width)`` looking along +y of ``parent``."""
        height, width = size
        with _quiet_stderr():
            buffer = self.engine.makeOutput(
                self.pipe,
                f"{name}-buffer",
                len(self._views),
                _frame_buffer_properties(),
                WindowProperties.size(width, height),
                GraphicsPipe.BFRefuseWindow,
            )
        if buffer is None:
            raise RuntimeError(f"could not create a {width}x{height} offscreen buffer for {name!r}")
        texture = Texture(name)
        buffer.addRenderTexture(texture, GraphicsOutput.RTMCopyRam)
        buffer.setClearColor((*clear_color, 1.0))
        node = _camera_node(
            name, scene=scene, parent=parent, size=size, fov=fov, near=near, far=far
        )
        region = buffer.makeDisplayRegion()
        region.setCamera(node)
        view = CameraView(name, width, height, node, buffer, texture)
        self._views[name] = view
        return view

    def set_clear_color(self, color: tuple[float, float, float]) -> None:
        """Sky colour of every camera."""
        for view in self._views.values():
            view.buffer.setClearColor((*color, 1.0))

    def render(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Render the named cameras (others stay idle) and read them back."""
        for name, view in self._views.items():
            view.buffer.setActive(name in names)
        self.engine.renderFrame()
        return {name: self._views[name].read() for name in names}

    def remove_cameras(self) -> None:
        """Release every camera's buffer (the engine stays)."""
        for view in self._views.values():
            self.engine.removeWindow(view.buffer)
        self._views.clear()

    def close(self) -> None:
        """Release all buffers."""
        self.engine.removeAllWindows()
        self._views.clear()


@dataclass
class TileView(View):
    """One world's camera drawing into a tile of a :class:`TiledRenderer`'s buffer."""

    region: DisplayRegion


class TiledRenderer:
    """One graphics engine and one offscreen buffer for the cameras of ``slots`` worlds.

    The buffer is cut into tiles: for each camera name a grid section of ``slots`` tiles of that
    camera's size, the sections stacked top to bottom. Every tile is a display region whose
    camera (set by the world through :meth:`slot`) looks at that world's own scene graph and
    clears to that world's sky, so :meth:`render` draws every world in one pass of the engine
    and reads the whole buffer back once.

    Args:
        renderer: ``"software"`` or ``"gl"``.
        slots: how many worlds share the buffer.
        cameras: ``{name: (height, width)}`` of the cameras each world has.
    """

    def __init__(
        self, *, renderer: str = "software", slots: int, cameras: dict[str, tuple[int, int]]
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        if not cameras:
            raise ValueError("a tiled renderer needs at least one camera")
        self.pipe = get_pipe(renderer)
        self.engine = GraphicsEngine(self.pipe)
        self.sizes = dict(cameras)
        self.slots = slots
        self.origins, self.width, self.height = _tile_layout(slots, self.sizes)
        with _quiet_stderr():
            buffer = self.engine.makeOutput(
                self.pipe,
                "tiles-buffer",
                0,
                _frame_buffer_properties(),
                WindowProperties.size(self.width, self.height),
                GraphicsPipe.BFRefuseWindow,
            )
        if buffer is None:
            raise RuntimeError(
                f"could not create a {self.width}x{self.height} offscreen buffer for "
                f"{slots} worlds; use fewer per process"
            )
        self.buffer = buffer
        self.texture = Texture("tiles")
        buffer.addRenderTexture(self.texture, GraphicsOutput.RTMCopyRam)
        # Each tile clears itself (to its own world's sky); the space between tiles stays black.
        buffer.setClearColor((0.0, 0.0, 0.0, 1.0))
        self.regions: dict[tuple[int, str], DisplayRegion] = {}
        for (slot, name), (x, y) in self.origins.items():
            h, w = self.sizes[name]
            region = buffer.makeDisplayRegion(
                x / self.width,
                (x + w) / self.width,
                (self.height - y - h) / self.height,
                (self.height - y) / self.height,
            )
            region.setClearColorActive(True)
            region.setClearDepthActive(True)
            region.setActive(False)
            self.regions[slot, name] = region
        self._slots = [TileSlot(self, i) for i in range(slots)]
        self._image: np.ndarray | None = None
        self.passes = 0
        """How many times :meth:`render` drew the batch (one engine pass and one readback)."""

    def slot(self, index: int) -> TileSlot:
        """The tiles of world ``index``: pass it to that world as its renderer."""
        return self._slots[index]

    def render(self) -> None:
        """Draw every active tile in one engine pass and read the buffer back once."""
        self.engine.renderFrame()
        data = self.texture.getRamImageAs("RGB")
        # Texture rows run bottom to top; tiles are cut and flipped when read (`tile`).
        self._image = np.frombuffer(memoryview(data), np.uint8).reshape(self.height, self.width, 3)
        self.passes += 1
        for slot in self._slots:
            slot.fresh = True

    def tile(self, slot: int, name: str) -> np.ndarray:
        """Camera ``name`` of world ``slot`` from the last :meth:`render`: uint8 H×W×3, a copy."""
        if self._image is None:
            raise RuntimeError("TiledRenderer: render() before reading a tile")
        h, w = self.sizes[name]
        x, y = self.origins[slot, name]
        bottom = self.height - y - h
        return np.ascontiguousarray(self._image[bottom : bottom + h, x : x + w][::-1])

    def close(self) -> None:
        """Release the buffer and the engine's windows."""
        self.engine.removeAllWindows()
        self.regions.clear()
        self._image = None


def _tile_layout(
    slots: int, sizes: dict[str, tuple[int, int]]
) -> tuple[dict[tuple[int, str], tuple[int, int]], int, int]:
    """Top-left pixel of every ``(slot, camera)`` tile and the buffer's width and height.

    The camera with the largest image sets a roughly square grid; the others fill rows of the
    same width below it.
    """
    order = sorted(sizes, key=lambda n: -sizes[n][0] * sizes[n][1])
    h0, w0 = sizes[order[0]]
    cols = max(1, min(slots, int(np.ceil(np.sqrt(slots * h0 / w0)))))
    width = cols * w0
    origins: dict[tuple[int, str], tuple[int, int]] = {}
    top = 0
    for name in order:
        h, w = sizes[name]
        per_row = max(1, width // w)
        width = max(width, w)
        for i in range(slots):
            row, col = divmod(i, per_row)
            origins[i, name] = (col * w, top + row * h)
        top += int(np.ceil(slots / per_row)) * h
    return origins, width, top


class TileSlot:
    """One world's view of a :class:`TiledRenderer`: the same calls as a `Renderer`.

    :meth:`render` returns this world's tiles from the batch's last pass; when this world has
    already read that pass, it first draws a new one (for every world), so a lone world
    always sees its current state. A batch that calls `TiledRenderer.render` once and then
    reads every world renders exactly once.
    """

    def __init__(self, tiles: TiledRenderer, index: int) -> None:
        self.tiles = tiles
        self.index = index
        self.fresh = False
        self._views: dict[str, TileView] = {}

    @property
    def cameras(self) -> dict[str, View]:
        """The cameras by name."""
        return dict(self._views)

    def add_camera(
        self,
        name: str,
        *,
        scene: NodePath,
        parent: NodePath,
        size: tuple[int, int],
        fov: float,
        near: float = 0.3,
        far: float = 400.0,
        clear_color: tuple[float, float, float] = (0.5, 0.7, 0.9),
    ) -> View:
        """Put camera ``name`` (of the size the tiles were made for) into this world's tile."""
        if self.tiles.sizes.get(name) != tuple(size):
            raise ValueError(
                f"camera {name!r} of size {tuple(size)}: the tiled renderer was made for "
                f"{self.tiles.sizes}"
            )
        height, width = size
        node = _camera_node(
            name, scene=scene, parent=parent, size=size, fov=fov, near=near, far=far
        )
        region = self.tiles.regions[self.index, name]
        region.setCamera(node)
        region.setClearColor((*clear_color, 1.0))
        region.setActive(True)
        view = TileView(name, width, height, node, region)
        self._views[name] = view
        return view

    def set_clear_color(self, color: tuple[float, float, float]) -> None:
        """Sky colour of every camera of this world."""
        for view in self._views.values():
            view.region.setClearColor((*color, 1.0))

    def render(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """This world's named tiles from the batch's current pass (see the class)."""
        if not self.fresh:
            self.tiles.render()
        self.fresh = False
        return {name: self.tiles.tile(self.index, name) for name in names}

    def remove_cameras(self) -> None:
        """Empty this world's tiles (they are skipped until cameras are added again)."""
        for view in self._views.values():
            view.region.setActive(False)
            view.region.setCamera(NodePath())
        self._views.clear()

    def close(self) -> None:
        """Release this world's tiles (the tiled renderer belongs to whoever made it)."""
        self.remove_cameras()
