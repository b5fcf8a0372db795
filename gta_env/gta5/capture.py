"""Screen capture of the game image: find the window, grab, crop and resize, measure FPS.

``mss`` is the default grabber (Windows, Linux/X11, macOS); on Windows ``dxcam`` or ``bettercam``
(Desktop Duplication, several times faster) are used when installed. All three are imported when
a capture is built, never at module import. Frames come out RGB, uint8, H×W×3.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class CaptureUnavailable(RuntimeError):
    """The grabber's package is missing or the window cannot be found; says what to do."""


@dataclass(frozen=True)
class Region:
    """A screen rectangle in pixels."""

    left: int
    top: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Region width and height must be positive, got {self}")

    @classmethod
    def from_mapping(cls, window: dict[str, int]) -> Region:
        return cls(window["left"], window["top"], window["width"], window["height"])

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


GTA5_WINDOW_TITLE = "Grand Theft Auto V"


def find_window(title: str = GTA5_WINDOW_TITLE) -> Region:
    """The client area (the image, without borders) of the top-level window named ``title``.

    Windows uses ``user32``; X11 uses ``python-xlib`` when installed, else ``xwininfo``
    (Debian package ``x11-utils``).

    Raises:
        CaptureUnavailable: when no such window exists or it cannot be looked up here.
    """
    if sys.platform == "win32":
        return _find_window_win32(title)
    return _find_window_x11(title)


def _find_window_win32(title: str) -> Region:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    user32.SetProcessDPIAware()
    hwnd = user32.FindWindowW(None, title)
    if not hwnd:
        raise CaptureUnavailable(
            f"no window titled {title!r}: start the game (windowed or borderless) or pass region="
        )
    rect = wintypes.RECT()
    user32.GetClientRect(hwnd, ctypes.byref(rect))
    origin = wintypes.POINT(0, 0)
    user32.ClientToScreen(hwnd, ctypes.byref(origin))
    return Region(origin.x, origin.y, rect.right - rect.left, rect.bottom - rect.top)


def _find_window_x11(title: str) -> Region:
    try:
        from Xlib import display as xdisplay
    except ImportError:
        xdisplay = None
    if xdisplay is not None:
        disp = xdisplay.Display()
        try:
            stack = [disp.screen().root]
            while stack:
                window = stack.pop()
                if window.get_wm_name() == title:
                    geometry = window.get_geometry()
                    origin = window.translate_coords(disp.screen().root, 0, 0)
                    return Region(-origin.x, -origin.y, geometry.width, geometry.height)
                stack.extend(window.query_tree().children)
        finally:
            disp.close()
        raise CaptureUnavailable(f"no X window titled {title!r}; start it or pass region=")
    if shutil.which("xwininfo") is None:
        raise CaptureUnavailable(
            "finding a window by title on X11 needs python-xlib (`pip install python-xlib`) or "
            "xwininfo (`apt-get install x11-utils`); or pass region= explicitly"
        )
    result = subprocess.run(
        ["xwininfo", "-name", title], capture_output=True, text=True, timeout=5, check=False
    )
    if result.returncode != 0:
        raise CaptureUnavailable(f"no X window titled {title!r} ({result.stderr.strip()})")
    fields = dict(line.strip().split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return Region(
        int(fields["Absolute upper-left X"]),
        int(fields["Absolute upper-left Y"]),
        int(fields["Width"]),
        int(fields["Height"]),
    )


class Grabber(Protocol):
    """Grabs one screen rectangle as RGB uint8."""

    name: str

    def grab(self, region: Region) -> np.ndarray: ...

    def close(self) -> None: ...


class MssGrabber:
    """Portable grabber through ``mss`` (one instance per thread, as mss requires)."""

    name = "mss"

    def __init__(self) -> None:
        try:
            import mss
        except ImportError as exc:
            raise CaptureUnavailable(
                "screen capture needs the 'mss' package: `pip install \"gta5drive[gta5]\"` "
                "(or `pip install mss`)"
            ) from exc
        try:
            factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10 renamed the class
            self._mss: Any = factory()
        except Exception as exc:  # noqa: BLE001 - mss raises ScreenShotError without a display
            raise CaptureUnavailable(
                f"mss cannot open the screen ({exc}); on Linux set DISPLAY to a running X server "
                "(for headless machines: `apt-get install xvfb` and run under `xvfb-run`)"
            ) from exc

    def _bgra(self, region: Region) -> np.ndarray:
        shot = self._mss.grab(region.as_mss())
        # ``raw`` is the grab's own buffer (``bgra`` would copy it once more).
        return np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)

    def grab(self, region: Region) -> np.ndarray:
        import cv2

        # cvtColor is ~10x faster than numpy's strided channel reversal at 1280x720.
        return cv2.cvtColor(self._bgra(region), cv2.COLOR_BGRA2RGB)

    def grab_resized(self, region: Region, size: tuple[int, int]) -> np.ndarray:
        """Grab and resize to ``size = (height, width)``: resized first, converted to RGB
        after, so the colour conversion touches the small image only."""
        import cv2

        small = resize_frame(self._bgra(region), size)
        return cv2.cvtColor(small, cv2.COLOR_BGRA2RGB)

    def close(self) -> None:
        self._mss.close()


class DesktopDuplicationGrabber:  # pragma: no cover - Windows only
    """``dxcam`` / ``bettercam`` (Windows Desktop Duplication API)."""

    def __init__(self, package: str) -> None:
        try:
            module: Any = __import__(package)
        except ImportError as exc:
            raise CaptureUnavailable(
                f"the {package!r} grabber is not installed: `pip install {package}` (Windows only)"
            ) from exc
        self.name = package
        self._camera = module.create(output_color="RGB")
        self._last: np.ndarray | None = None

    def grab(self, region: Region) -> np.ndarray:
        box = (region.left, region.top, region.left + region.width, region.top + region.height)
        frame = self._camera.grab(region=box)
        if frame is None:  # no new frame since the last grab: the screen did not change
            if self._last is None or self._last.shape[:2] != (region.height, region.width):
                frame = np.zeros((region.height, region.width, 3), np.uint8)
            else:
                frame = self._last
        self._last = frame
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        self._camera.release()


GRABBERS = ("auto", "mss", "dxcam", "bettercam")


def make_grabber(name: str = "auto") -> Grabber:
    """Build a grabber: ``auto`` = dxcam, then bettercam on Windows when installed, else mss.

    Raises:
        ValueError: for an unknown name.
        CaptureUnavailable: when the chosen package is missing.
    """
    if name not in GRABBERS:
        raise ValueError(f"grabber must be one of {GRABBERS}, got {name!r}")
    if name == "auto":
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import importlib.util

            for package in ("dxcam", "bettercam"):
                if importlib.util.find_spec(package) is not None:
                    return DesktopDuplicationGrabber(package)
        return MssGrabber()
    if name == "mss":
        return MssGrabber()
    return DesktopDuplicationGrabber(name)  # pragma: no cover - Windows only


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H×W×3 frame to ``size = (height, width)`` (area filter; no-op when equal)."""
    height, width = size
    if frame.shape[:2] == (height, width):
        return frame
    import cv2

    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


class RateMeter:
    """Events per second over the last ``window`` events."""

    def __init__(self, window: int = 60) -> None:
        self._times: collections.deque[float] = collections.deque(maxlen=window)

    def tick(self) -> None:
        self._times.append(time.perf_counter())

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class ScreenCapture:
    """Grabs the game image and turns it into camera frames.

    Args:
        region: the screen rectangle of the game image; ``None`` finds ``window_title``.
        window_title: the window to find when ``region`` is None.
        grabber: a grabber name (see :data:`GRABBERS`) or a ready :class:`Grabber`.
        crop: optional ``(top, bottom, left, right)`` pixels to drop from the grabbed image (e.g.
            a HUD strip) before resizing.

    Raises:
        CaptureUnavailable: when the grabber or the window is missing.
    """

    def __init__(
        self,
        *,
        region: Region | None = None,
        window_title: str = GTA5_WINDOW_TITLE,
        grabber: str | Grabber = "auto",
        crop: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> None:
        if any(c < 0 for c in crop):
            raise ValueError(f"crop margins must be >= 0, got {crop}")
        self.region = region if region is not None else find_window(window_title)
        if crop[0] + crop[1] >= self.region.height or crop[2] + crop[3] >= self.region.width:
            raise ValueError(f"crop {crop} leaves nothing of the {self.region} image")
        self.crop = crop
        self.grabber: Grabber = make_grabber(grabber) if isinstance(grabber, str) else grabber
        self.meter = RateMeter()

    @property
    def fps(self) -> float:
        """Grabs per second over the last 60 grabs."""
        return self.meter.rate

    def grab(self) -> np.ndarray:
        """The full (cropped) game image, RGB uint8."""
        frame = self.grabber.grab(self.region)
        self.meter.tick()
        top, bottom, left, right = self.crop
        if any(self.crop):
            frame = frame[top : frame.shape[0] - bottom, left : frame.shape[1] - right]
        return frame

    def grab_resized(self, size: tuple[int, int]) -> np.ndarray:
        """The game image resized to ``size = (height, width)``."""
        if not any(self.crop) and isinstance(self.grabber, MssGrabber):
            frame = self.grabber.grab_resized(self.region, size)
            self.meter.tick()
            return frame
        return resize_frame(self.grab(), size)

    def close(self) -> None:
        self.grabber.close()


__all__ = [
    "GRABBERS",
    "CaptureUnavailable",
    "Grabber",
    "MssGrabber",
    "RateMeter",
    "Region",
    "ScreenCapture",
    "find_window",
    "make_grabber",
    "resize_frame",
]
