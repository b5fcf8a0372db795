"""The original's stream layout, composed per frame at 1280×720 and written to MP4.

::

    +------------------------------+------------------+
    |                              |  hood camera     |
    |  3rd-person camera           |  (model input)   |
    |  (model name + date corner)  +------------------+
    |                              |  Convcam         |
    +----------+---------+---------+------------------+
    | loss     | trainer | (3rd-   |  Player Console  |
    | curve    | console |  person)|                  |
    +----------+---------+---------+------------------+

The tiles are the rectangles below (x, y, width, height in pixels of the 1280×720 frame); each
has a title strip of its own colour (``TITLE_COLOURS``) so a test, or a viewer, can find it.
Text is OpenCV's Hershey font at 0.5 scale (≈ 12 px capitals, 18 px lines): readable at 720p.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 1280, 720
"""Size of a composed frame."""


@dataclass(frozen=True)
class Rect:
    """A tile: top-left corner and size in pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``frame[rect.slices]`` is the tile."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


THIRD_PERSON = Rect(0, 0, 800, 450)
"""Top-left: the 3rd-person (cinematic chase) camera, model name and creation date in a corner."""
HOOD = Rect(800, 0, 480, 270)
"""Top-right: the hood camera, what the model sees."""
CONVCAM = Rect(800, 270, 480, 180)
"""Middle-right: the Convcam of the current frame."""
PLAYER_CONSOLE = Rect(800, 450, 480, 270)
"""Bottom-right: the Player Console."""
TRAINER_CONSOLE = Rect(400, 450, 400, 270)
"""Bottom-middle: the trainer console (latest metrics of the run folder)."""
LOSS_PLOT = Rect(0, 450, 400, 270)
"""Bottom-left: the training loss curve."""

TILES: dict[str, Rect] = {
    "third_person": THIRD_PERSON,
    "hood": HOOD,
    "convcam": CONVCAM,
    "player_console": PLAYER_CONSOLE,
    "trainer_console": TRAINER_CONSOLE,
    "loss_plot": LOSS_PLOT,
}
"""Every tile by name."""

TITLE_H = 20
"""Height of each tile's title strip."""
TITLE_COLOURS: dict[str, tuple[int, int, int]] = {
    "third_person": (230, 80, 60),
    "hood": (60, 170, 230),
    "convcam": (240, 190, 50),
    "player_console": (80, 200, 100),
    "trainer_console": (170, 110, 230),
    "loss_plot": (240, 120, 180),
}
"""RGB colour of each tile's title strip."""
TITLES = {
    "third_person": "3rd-person camera",
    "hood": "hood camera (model input)",
    "convcam": "Convcam",
    "player_console": "Player Console",
    "trainer_console": "Trainer",
    "loss_plot": "train/loss",
}
PANEL_BG = (18, 18, 24)
TEXT = (235, 235, 235)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
LINE_H = 18


def fit_image(image: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize ``image`` to fit ``w×h`` keeping its aspect ratio, centred on black."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., -3:]  # newest frame of a stack
    ih, iw = img.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = max(1, int(round(iw * s))), max(1, int(round(ih * s)))
    interp = cv2.INTER_AREA if s < 1 else (cv2.INTER_NEAREST if s >= 3 else cv2.INTER_LINEAR)
    small = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    if (nw, nh) == (w, h):
        return small
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    return out


def _text(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int] = TEXT) -> None:
    cv2.putText(img, text, (x, y), FONT, FONT_SCALE, colour, 1, cv2.LINE_AA)


def _label(img: np.ndarray, text: str, x: int, y: int) -> None:
    """Text on a dark box (for overlays on camera pictures)."""
    (tw, th), base = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    cv2.rectangle(img, (x - 4, y - th - 5), (x + tw + 4, y + base + 3), (0, 0, 0), -1)
    _text(img, text, x, y)


def _lines(img: np.ndarray, lines: Sequence[str], *, top: int = TITLE_H + 18) -> None:
    max_lines = (img.shape[0] - top) // LINE_H + 1
    max_chars = max(8, (img.shape[1] - 12) // 9)
    for i, line in enumerate(lines[:max_lines]):
        _text(img, line[:max_chars], 8, top + i * LINE_H)


def loss_curve_image(
    series: Sequence[tuple[float, float]], w: int, h: int, *, log: bool = True
) -> np.ndarray:
    """A loss curve drawn with OpenCV (fast enough for every frame)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.asarray(PANEL_BG, np.uint8)
    pad_l, pad_r, pad_t, pad_b = 48, 10, 10, 22
    cv2.rectangle(img, (pad_l, pad_t), (w - pad_r, h - pad_b), (70, 70, 80), 1)
    pts = [(s, v) for s, v in series if np.isfinite(v) and (v > 0 or not log)]
    if len(pts) < 2:
        _text(img, "waiting for training metrics", pad_l + 6, h // 2)
        return img
    steps = np.array([p[0] for p in pts], np.float64)
    vals = np.array([p[1] for p in pts], np.float64)
    ys = np.log10(vals) if log else vals
    lo, hi = float(ys.min()), float(ys.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    s0, s1 = float(steps.min()), float(steps.max())
    px = pad_l + (steps - s0) / max(s1 - s0, 1e-9) * (w - pad_l - pad_r)
    py = pad_t + (hi - ys) / (hi - lo) * (h - pad_t - pad_b)
    poly = np.stack([px, py], axis=1).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [poly], False, (240, 120, 180), 2, cv2.LINE_AA)
    top = 10**hi if log else hi
    bottom = 10**lo if log else lo
    cv2.putText(img, f"{top:.3g}", (2, pad_t + 10), FONT, 0.4, TEXT, 1, cv2.LINE_AA)
    cv2.putText(img, f"{bottom:.3g}", (2, h - pad_b), FONT, 0.4, TEXT, 1, cv2.LINE_AA)
    cv2.putText(img, f"step {int(s1)}", (w - 110, h - 6), FONT, 0.4, TEXT, 1, cv2.LINE_AA)
    return img


class RunMetrics:
    """Latest training metrics of a run folder, read from its TensorBoard event files.

    Reading is throttled to once every ``refresh_s`` seconds (the trainer writes as it goes).

    Args:
        run_dir: the trainer's output folder (``tensorboard/`` inside), or ``None``.
        refresh_s: minimum seconds between reads.
    """

    def __init__(self, run_dir: str | Path | None, *, refresh_s: float = 5.0) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.refresh_s = refresh_s
        self._read_at = -np.inf
        self.scalars: dict[str, list[tuple[float, float]]] = {}

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the event files if ``refresh_s`` has passed."""
        now = time.monotonic()
        if self.run_dir is None or (not force and now - self._read_at < self.refresh_s):
            return
        self._read_at = now
        folder = self.run_dir / "tensorboard"
        if not folder.is_dir():
            return
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        try:
            acc.Reload()
        except Exception:  # a file being written; keep the last good read
            return
        self.scalars = {
            tag: [(float(e.step), float(e.value)) for e in acc.Scalars(tag)]
            for tag in acc.Tags().get("scalars", [])
        }

    def latest(self) -> dict[str, float]:
        """The newest value of every scalar."""
        return {tag: s[-1][1] for tag, s in self.scalars.items() if s}

    def step(self) -> int:
        """Newest logged step."""
        return int(max((s[-1][0] for s in self.scalars.values() if s), default=0))

    def loss(self) -> list[tuple[float, float]]:
        """``(step, train/loss)`` pairs."""
        return self.scalars.get("train/loss", [])

    def console_lines(self) -> list[str]:
        """The trainer console text."""
        if not self.scalars:
            return ["no training metrics yet", f"run: {self.run_dir}" if self.run_dir else ""]
        latest = self.latest()
        lines = [f"step {self.step()}"]
        order = (
            "train/loss",
            "train/loss_throttle_brake",
            "train/loss_steering",
            "train/lr",
            "train/samples_per_s",
            "train/buffer/shared/fill",
            "val/loss",
            "val/steering_mae",
            "val/throttle_brake_mae",
            "val/steering_mse",
            "val/steering_mse_mean_baseline",
        )
        for key in order:
            if key in latest:
                lines.append(f"{key:<28s} {latest[key]:.4g}")
        return lines


@dataclass(frozen=True, kw_only=True)
class StreamInputs:
    """What one composed frame shows.

    Attributes:
        third_person: the cinematic chase camera frame.
        hood: the hood frame (raw, or what the model sees).
        convcam: the Convcam image, or ``None``.
        player_lines: Player Console text.
        trainer_lines: trainer console text.
        loss: ``(step, loss)`` pairs.
        model_name: shown in the 3rd-person corner.
        created: checkpoint creation date, shown under the model name.
    """

    third_person: np.ndarray
    hood: np.ndarray
    convcam: np.ndarray | None = None
    player_lines: Sequence[str] = ()
    trainer_lines: Sequence[str] = ()
    loss: Sequence[tuple[float, float]] = ()
    model_name: str = ""
    created: str = ""


class StreamComposer:
    """Renders :class:`StreamInputs` into a 1280×720 RGB frame (see the module docstring)."""

    def __init__(self) -> None:
        self._frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
        self._templates: dict[str, np.ndarray] = {}

    def _template(self, name: str) -> np.ndarray:
        """Empty tile with its title strip (made once: filling arrays per frame is slow)."""
        if name not in self._templates:
            r = TILES[name]
            tile = np.empty((r.h, r.w, 3), np.uint8)
            tile[:] = np.asarray(PANEL_BG, np.uint8)
            tile[:TITLE_H] = np.asarray(TITLE_COLOURS[name], np.uint8)
            cv2.putText(tile, TITLES[name], (6, TITLE_H - 6), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            self._templates[name] = tile
        return self._templates[name]

    def _tile(self, name: str, content: np.ndarray | None) -> np.ndarray:
        r = TILES[name]
        tile = self._template(name).copy()
        if content is not None:
            tile[TITLE_H:] = fit_image(content, r.w, r.h - TITLE_H)
        return tile

    def compose(self, inputs: StreamInputs) -> np.ndarray:
        """One frame, uint8 ``(720, 1280, 3)``."""
        f = self._frame
        third = self._tile("third_person", inputs.third_person)
        if inputs.model_name:
            _label(third, f"model: {inputs.model_name}", 10, THIRD_PERSON.h - 32)
            _label(third, f"created: {inputs.created}", 10, THIRD_PERSON.h - 10)
        f[THIRD_PERSON.slices] = third
        f[HOOD.slices] = self._tile("hood", inputs.hood)
        f[CONVCAM.slices] = self._tile("convcam", inputs.convcam)
        console = self._tile("player_console", None)
        _lines(console, list(inputs.player_lines))
        f[PLAYER_CONSOLE.slices] = console
        trainer = self._tile("trainer_console", None)
        _lines(trainer, list(inputs.trainer_lines))
        f[TRAINER_CONSOLE.slices] = trainer
        loss = self._tile("loss_plot", None)
        loss[TITLE_H:] = loss_curve_image(list(inputs.loss), LOSS_PLOT.w, LOSS_PLOT.h - TITLE_H)
        f[LOSS_PLOT.slices] = loss
        return f.copy()


class StreamWriter:
    """Writes composed frames to an MP4 (H.264, 30 fps) and, optionally, a window.

    Args:
        path: the MP4 file.
        fps: frames per second of the video.
        window: also show frames in an OpenCV window (needs a display and a GUI-enabled OpenCV;
            ignored with a warning otherwise).
    """

    def __init__(self, path: str | Path, *, fps: int = 30, window: bool = False) -> None:
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = imageio.get_writer(
            str(self.path), fps=fps, codec="libx264", quality=6, macro_block_size=16
        )
        self.window = window
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""
        self._writer.append_data(frame)
        self.frames += 1
        if self.window:
            try:
                cv2.imshow("gta5drive", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                cv2.waitKey(1)
            except cv2.error:
                import warnings

                warnings.warn(
                    "no display for the stream window; writing the MP4 only", stacklevel=2
                )
                self.window = False

    def close(self) -> None:
        """Finish the file."""
        self._writer.close()
