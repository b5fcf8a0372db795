"""Any `Game` posing as GTA V: the mod's side of the bridge, written in Python.

:class:`PosingServer` is a thin :class:`~gta_env.gta5.bridge.BridgeServer` that delegates every
command to a :class:`~gta_env.game.Game` (normally the embedded world, ``gta_env.sim.SimGame``).
It shows the current camera on a *display* — a real X window (:class:`TkDisplay`, e.g. under
Xvfb) that ``mss`` captures, or an in-memory screen (:class:`MemoryDisplay`) — and reads the
car's controls from a :class:`~gta_env.gta5.control.FakePad`, as the game polls a controller.
With it the whole ``backend="gta5"`` path (bridge, capture, pad, :class:`~gta_env.gta5.GTA5Game`)
runs without Windows or the game.

Differences from the real mod, because the ``Game`` protocol has no such operations: explicit
purpose points and teleport coordinates and autopilot to an explicit coordinate are answered with
an error; GTA weather and hour are mapped onto the game's weather presets; the world is always lockstep (time advances only through ``step``); the
``extra`` camera exists only if the game renders it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from gta_env.game import CAMERA_NAMES, Controls, Game, Telemetry
from gta_env.gta5.bridge import BridgeServer, CommandError
from gta_env.gta5.capture import Region
from gta_env.gta5.control import FakePad

log = logging.getLogger("gta_env.gta5.posing")

# -- displays: where the posing world's "screen" is ----------------------------------------


def upscale(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to ``size = (height, width)``.

    With integer factors, area-averaging the result back to the original size restores the
    original pixels exactly, which is what the capture's resize does.
    """
    height, width = size
    if frame.shape[:2] == (height, width):
        return frame
    rows = (np.arange(height) * frame.shape[0]) // height
    cols = (np.arange(width) * frame.shape[1]) // width
    return frame[rows[:, None], cols[None, :]]


def screen_size_for(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The smallest ``(height, width)`` that every camera size divides (least common multiple)."""
    height = math.lcm(*(h for h, _ in sizes))
    width = math.lcm(*(w for _, w in sizes))
    if height > 2160 or width > 3840:
        raise ValueError(
            f"camera sizes {sizes} need a {height}x{width} screen to be shown without "
            "interpolation; choose sizes whose least common multiple is at most 2160x3840"
        )
    return height, width


class Display(Protocol):
    """A surface showing the game image at a fixed screen rectangle."""

    region: Region

    def show(self, frame: np.ndarray) -> None:
        """Show an RGB frame, scaled to the display's size."""

    def close(self) -> None: ...


class MemoryDisplay:
    """An in-memory screen; :class:`MemoryGrabber` reads it (no X server needed)."""

    def __init__(self, *, size: tuple[int, int]) -> None:
        self.region = Region(0, 0, size[1], size[0])
        self._lock = threading.Lock()
        self._frame = np.zeros((size[0], size[1], 3), np.uint8)
        self.shown = 0

    def show(self, frame: np.ndarray) -> None:
        image = upscale(frame, (self.region.height, self.region.width))
        with self._lock:
            self._frame = np.array(image, dtype=np.uint8, copy=True)
            self.shown += 1

    def snapshot(self, region: Region) -> np.ndarray:
        with self._lock:
            return self._frame[
                region.top : region.top + region.height, region.left : region.left + region.width
            ].copy()

    def close(self) -> None:
        pass


class MemoryGrabber:
    """A :class:`~gta_env.gta5.capture.Grabber` reading a :class:`MemoryDisplay`."""

    name = "memory"

    def __init__(self, display: MemoryDisplay) -> None:
        self.display = display

    def grab(self, region: Region) -> np.ndarray:
        return self.display.snapshot(region)

    def close(self) -> None:
        pass


class TkDisplay:
    """A real, borderless X window at the top-left of the screen, drawn with ``tkinter``.

    Must be created, used and closed on one thread (the posing server's dispatch thread).

    Raises:
        RuntimeError: when tkinter is missing or no X display is reachable (says what to do).
    """

    def __init__(self, *, size: tuple[int, int], title: str = "gta5drive posing world") -> None:
        try:
            import tkinter
        except ImportError as exc:
            raise RuntimeError(
                "TkDisplay needs tkinter (Debian: `apt-get install python3-tk`)"
            ) from exc
        try:
            self._root = tkinter.Tk()
        except tkinter.TclError as exc:
            raise RuntimeError(
                f"TkDisplay cannot open an X display ({exc}); set DISPLAY or run under "
                "`xvfb-run` (`apt-get install xvfb`)"
            ) from exc
        height, width = size
        self._root.title(title)
        self._root.overrideredirect(True)
        self._root.geometry(f"{width}x{height}+0+0")
        self._root.configure(borderwidth=0, highlightthickness=0)
        self._photo = tkinter.PhotoImage(width=width, height=height)
        self._label = tkinter.Label(
            self._root, image=self._photo, borderwidth=0, highlightthickness=0, padx=0, pady=0
        )
        self._label.place(x=0, y=0, width=width, height=height)
        self._size = size
        self._root.update()
        self.region = Region(self._root.winfo_rootx(), self._root.winfo_rooty(), width, height)

    def show(self, frame: np.ndarray) -> None:
        height, width = self._size
        image = np.ascontiguousarray(upscale(frame, self._size), dtype=np.uint8)
        ppm = b"P6 %d %d 255\n" % (width, height) + image.tobytes()
        self._photo.configure(data=ppm, format="ppm")
        self._root.update_idletasks()
        self._root.update()
        # Wait until the X server has drawn it, so a grab by another client sees this frame.
        self._root.tk.call("update")
        self._root.tk.eval("update idletasks")

    def close(self) -> None:
        # Drop every Tcl object on this (the creating) thread: Tcl aborts the process if one is
        # finalised later by another thread's garbage collection.
        import gc

        root = self._root
        del self._photo, self._label, self._root
        root.destroy()
        del root
        gc.collect()


# -- the server -----------------------------------------------------------------------------


def telemetry_to_wire(
    t: Telemetry, *, camera: str, npc: Controls | None, npc_active: bool, paused: bool, fade: float
) -> dict[str, Any]:
    """:class:`Telemetry` in the bridge's wire format (GTA conventions)."""
    return {
        "frame": int(t.frame),
        "game_time_ms": int(round(t.frame * 1000 / 30)),
        "position": [float(t.position[0]), float(t.position[1]), 0.0],
        "heading_deg": float(math.degrees(t.heading)),
        "speed": float(t.speed),
        "on_road": bool(t.on_road),
        "purpose": [float(t.purpose[0]), float(t.purpose[1])],
        "route_remaining": float(min(max(t.route_remaining, 0.0), 1e6)),
        "collisions": [
            {
                "kind": c.kind if c.kind in ("vehicle", "static") else "static",
                "other": c.other[:64],
                "impulse": float(min(max(c.impulse, 0.0), 1e9)),
            }
            for c in t.collisions[:32]
        ],
        "camera": camera,
        "npc": {
            "active": npc_active,
            "throttle": float(npc.throttle) if npc else 0.0,
            "brake": float(npc.brake) if npc else 0.0,
            "steer": float(npc.steering) if npc else 0.0,
        },
        "paused": paused,
        "fade": float(fade),
    }


class PosingServer(BridgeServer):
    """The mod's side of the bridge over any :class:`~gta_env.game.Game`.

    Args:
        token: the shared secret clients must present.
        pad: the pad whose state is read as the car's controls each frame (shared with an
            in-process :class:`~gta_env.gta5.GTA5Game`); ``controls`` messages also set it.
        game: the game to serve; or
        game_factory: builds the game on the server's dispatch thread (for thread-affine
            renderers); the server then also closes it.
        display: where the current camera is shown; or
        display_factory: builds the display on the dispatch thread (required for
            :class:`TkDisplay`). With neither, nothing is shown (telemetry-only server).
        cameras: the cameras the game renders (``"hood"``, ``"cinematic"``).
        **kwargs: passed to :class:`~gta_env.gta5.bridge.BridgeServer` (host, port, ...).
    """

    def __init__(
        self,
        *,
        token: str,
        pad: FakePad | None = None,
        game: Game | None = None,
        game_factory: Callable[[], Game] | None = None,
        display: Display | None = None,
        display_factory: Callable[[], Display] | None = None,
        cameras: tuple[str, ...] = ("hood",),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "gta5drive-posing")
        super().__init__(token=token, **kwargs)
        if (game is None) == (game_factory is None):
            raise ValueError("PosingServer needs exactly one of game= or game_factory=")
        if display is not None and display_factory is not None:
            raise ValueError("PosingServer takes display= or display_factory=, not both")
        bad = [c for c in cameras if c not in CAMERA_NAMES]
        if bad or not cameras:
            raise ValueError(f"PosingServer cameras must be from {CAMERA_NAMES}, got {cameras}")
        self.pad = pad if pad is not None else FakePad()
        self.game: Game | None = game
        self._game_factory = game_factory
        self.display: Display | None = display
        self._display_factory = display_factory
        self.cameras = cameras
        self.camera = cameras[0]
        self.cycle: tuple[str, ...] = ()
        self.autopilot = False
        self.paused = True
        self.fade = 0.0
        self.loaded = False
        self._gta_weather = "EXTRASUNNY"
        self._gta_hour = 12
        if display is not None:
            self.window = dataclasses.asdict(display.region)

    # -- lifecycle hooks (dispatch thread) -------------------------------------------------

    def on_start(self) -> None:
        if self._game_factory is not None:
            self.game = self._game_factory()
        if self._display_factory is not None:
            self.display = self._display_factory()
            self.window = dataclasses.asdict(self.display.region)

    def on_stop(self) -> None:
        if self._display_factory is not None and self.display is not None:
            self.display.close()
        if self._game_factory is not None and self.game is not None:
            self.game.close()

    # -- helpers -----------------------------------------------------------------------------

    def _game(self) -> Game:
        assert self.game is not None
        if not self.loaded:
            raise CommandError("no world loaded yet: send 'reset' first")
        return self.game

    def _wire(self, t: Telemetry | None = None) -> dict[str, Any]:
        game = self._game()
        t = t if t is not None else game.telemetry()
        npc = game.expert_action() if self.autopilot else None
        return telemetry_to_wire(
            t,
            camera=self.camera,
            npc=npc,
            npc_active=self.autopilot and npc is not None,
            paused=self.paused,
            fade=self.fade,
        )

    def _present(self) -> None:
        if self.display is not None and self.loaded:
            assert self.game is not None
            self.display.show(self.game.render((self.camera,))[self.camera])

    def _telemetry_reply(self, t: Telemetry | None = None) -> dict[str, Any]:
        return {"telemetry": self._wire(t)}

    # -- commands ----------------------------------------------------------------------------

    def handle_reset(self, seed: int, vehicle: str | None = None) -> dict[str, Any]:
        assert self.game is not None
        self.game.load(seed)
        self.loaded = True
        self.autopilot = False
        self.cycle = ()
        self.fade = 0.0
        self.game.set_fade(0.0)
        self._present()
        return self._telemetry_reply()

    def handle_telemetry(self) -> dict[str, Any]:
        return self._telemetry_reply()

    def handle_step(self, frames: int = 1) -> dict[str, Any]:
        game = self._game()
        t: Telemetry | None = None
        for _ in range(frames):
            expert = game.expert_action() if self.autopilot else None
            controls = expert if expert is not None else self.pad.read()
            t = game.step(controls)
            if self.cycle:
                self.camera = self.cycle[(t.frame) % len(self.cycle)]
            self._present()
            self.push_telemetry(self._wire(t))
        return self._telemetry_reply(t)

    def handle_new_purpose(
        self,
        seed: int,
        min_distance: float = 0.0,
        max_distance: float = 1e5,
        marker: bool = False,
    ) -> dict[str, Any]:
        x, y = self._game().new_purpose(np.random.default_rng(seed))
        return {"purpose": [float(x), float(y)]}

    def handle_set_purpose(self, **_: Any) -> None:
        raise CommandError("the posing world only picks purpose points itself (use new_purpose)")

    def handle_autopilot(
        self,
        enabled: bool,
        x: float | None = None,
        y: float | None = None,
        speed: float | None = None,
        style: int | None = None,
    ) -> None:
        if x is not None:
            raise CommandError("the posing world's autopilot drives to the purpose point only")
        if enabled:
            self._game()
        self.autopilot = enabled

    def handle_teleport(
        self, seed: int | None = None, fade_ms: int = 0, **coords: Any
    ) -> dict[str, Any]:
        if seed is None:
            raise CommandError("the posing world only teleports to random road spots (use seed)")
        game = self._game()
        if fade_ms:
            game.set_fade(1.0)
        game.teleport(np.random.default_rng(seed))
        if fade_ms:
            game.set_fade(self.fade)
        self._present()
        x, y = game.telemetry().position
        return {"position": [float(x), float(y), 0.0]}

    def handle_fade(self, level: float, ms: int = 0) -> None:
        self._game().set_fade(level)
        self.fade = level
        self._present()

    def handle_set_camera(self, camera: str) -> dict[str, Any]:
        if camera not in self.cameras:
            raise CommandError(f"camera {camera!r} is not rendered here (cameras: {self.cameras})")
        game = self._game()
        self.cycle = ()
        self.camera = camera
        self._present()  # the reply leaves once the camera is on screen, as in the mod
        return {"camera": camera, "frame": game.telemetry().frame}

    def handle_camera_cycle(self, cameras: list[str]) -> None:
        bad = [c for c in cameras if c not in self.cameras]
        if bad:
            raise CommandError(f"camera(s) {bad} are not rendered here (cameras: {self.cameras})")
        self.cycle = tuple(cameras)

    def handle_pause(self, paused: bool) -> None:
        self.paused = paused  # the posing world is always lockstep: time moves only in step

    def handle_controls(self, throttle: float, brake: float, steer: float) -> None:
        self.pad.apply(Controls(throttle, brake, steer))

    def handle_weather(self, weather: str) -> None:
        self._gta_weather = weather
        self._apply_weather()

    def handle_time(self, hour: int, minute: int = 0) -> None:
        self._gta_hour = hour
        self._apply_weather()

    def _apply_weather(self) -> None:
        """Map GTA weather and hour onto the game's presets when it has ``set_weather``."""
        set_weather = getattr(self.game, "set_weather", None)
        if set_weather is None or not self.loaded:
            log.info("posing world: weather/time ignored (this game has no set_weather)")
            return
        hour = self._gta_hour
        if hour >= 21 or hour < 5:
            preset = "night"
        elif hour >= 17:
            preset = "dusk"
        elif self._gta_weather in ("FOGGY", "SMOG"):
            preset = "fog"
        elif self._gta_weather in ("RAIN", "THUNDER"):
            preset = "rain"
        elif self._gta_weather in (
            "OVERCAST",
            "CLOUDS",
            "CLEARING",
            "SNOW",
            "BLIZZARD",
            "SNOWLIGHT",
            "XMAS",
        ):
            preset = "overcast"
        else:
            preset = "clear"
        set_weather(preset, np.random.default_rng(0))
