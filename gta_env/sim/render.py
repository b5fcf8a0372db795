"""Headless cameras: one Panda3D graphics engine per world, one offscreen buffer per camera.

No `ShowBase` (a process-wide singleton): each :class:`Renderer` owns its own `GraphicsEngine`,
so two environments in one process render independently. The software rasteriser
(``p3tinydisplay``) needs no display, GPU or system package; ``renderer="gl"`` uses EGL.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from panda3d.core import (
    Camera,
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

_PIPE_TYPES = {"software": "TinyOffscreenGraphicsPipe", "gl": "eglGraphicsPipe"}
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
            wanted = _PIPE_TYPES[renderer]
            pipe_type = next((t for t in selection.getPipeTypes() if t.getName() == wanted), None)
            pipe = selection.makePipe(pipe_type) if pipe_type is not None else None
        if pipe is None or not pipe.isValid():
            raise RuntimeError(
                f"Panda3D could not open its {renderer!r} renderer ({wanted}). "
                "Use renderer='software', which needs no GPU or display."
            )
        _pipes[renderer] = pipe
    return _pipes[renderer]


@dataclass
class CameraView:
    """One camera rendering into its own offscreen buffer."""

    name: str
    width: int
    height: int
    buffer: GraphicsOutput
    texture: Texture
    node: NodePath

    def read(self) -> np.ndarray:
        """The last rendered frame, uint8 H×W×3, top row first."""
        data = self.texture.getRamImageAs("RGB")
        img = np.frombuffer(memoryview(data), np.uint8).reshape(self.height, self.width, 3)
        return np.ascontiguousarray(img[::-1])


class Renderer:
    """A graphics engine with named cameras over one scene graph."""

    def __init__(self, *, renderer: str = "software") -> None:
        self.pipe = get_pipe(renderer)
        self.engine = GraphicsEngine(self.pipe)
        self.cameras: dict[str, CameraView] = {}

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
        fb = FrameBufferProperties()
        fb.setRgbColor(True)
        fb.setRgbaBits(8, 8, 8, 0)
        fb.setDepthBits(16)
        with _quiet_stderr():
            buffer = self.engine.makeOutput(
                self.pipe,
                f"{name}-buffer",
                len(self.cameras),
                fb,
                WindowProperties.size(width, height),
                GraphicsPipe.BFRefuseWindow,
            )
        if buffer is None:
            raise RuntimeError(f"could not create a {width}x{height} offscreen buffer for {name!r}")
        texture = Texture(name)
        buffer.addRenderTexture(texture, GraphicsOutput.RTMCopyRam)
        buffer.setClearColor((*clear_color, 1.0))
        lens = PerspectiveLens()
        lens.setFov(fov, np.degrees(2 * np.arctan(np.tan(np.radians(fov) / 2) * height / width)))
        lens.setNearFar(near, far)
        cam = Camera(name)
        cam.setLens(lens)
        cam.setScene(scene)
        node = parent.attachNewNode(cam)
        region = buffer.makeDisplayRegion()
        region.setCamera(node)
        view = CameraView(name, width, height, buffer, texture, node)
        self.cameras[name] = view
        return view

    def set_clear_color(self, color: tuple[float, float, float]) -> None:
        """Sky colour of every camera."""
        for view in self.cameras.values():
            view.buffer.setClearColor((*color, 1.0))

    def render(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Render the named cameras (others stay idle) and read them back."""
        for name, view in self.cameras.items():
            view.buffer.setActive(name in names)
        self.engine.renderFrame()
        return {name: self.cameras[name].read() for name in names}

    def close(self) -> None:
        """Release all buffers."""
        self.engine.removeAllWindows()
        self.cameras.clear()
