"""The stream layout: every tile at its documented place, MP4 frame count, run metrics."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from agents.stream import (
    CONVCAM,
    FRAME_H,
    FRAME_W,
    HOOD,
    LOSS_PLOT,
    PANEL_BG,
    PLAYER_CONSOLE,
    THIRD_PERSON,
    TILES,
    TITLE_COLOURS,
    TITLE_H,
    TRAINER_CONSOLE,
    RunMetrics,
    StreamComposer,
    StreamInputs,
    StreamWriter,
)


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def inputs() -> StreamInputs:
    return StreamInputs(
        third_person=solid(180, 320, (200, 0, 0)),
        hood=solid(90, 160, (0, 200, 0)),
        convcam=solid(40, 120, (0, 0, 200)),
        player_lines=["model pilotnet", "PPS 30.0"],
        trainer_lines=["step 100", "train/loss 0.01"],
        loss=[(i, 1.0 / (i + 1)) for i in range(50)],
        model_name="pilotnet step 100",
        created="2026-01-01T00:00:00+0000",
    )


def test_tiles_cover_the_frame_without_overlap():
    covered = np.zeros((FRAME_H, FRAME_W), np.int32)
    for rect in TILES.values():
        covered[rect.slices] += 1
    assert (covered == 1).all()


def test_every_tile_is_at_its_documented_place():
    frame = StreamComposer().compose(inputs())
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
    for name, rect in TILES.items():  # the title strip of each tile has the tile's colour
        strip = frame[rect.y + 2 : rect.y + 4, rect.x + rect.w - 20 : rect.x + rect.w - 2]
        assert (strip == TITLE_COLOURS[name]).all(), name

    # camera pictures fill the body of their tiles (16:9 pictures in 16:9-ish tiles)
    def centre(rect):
        return frame[rect.y + TITLE_H + (rect.h - TITLE_H) // 2, rect.x + rect.w // 2]

    assert tuple(frame[THIRD_PERSON.y + 100, THIRD_PERSON.x + 400]) == (200, 0, 0)
    assert tuple(centre(HOOD)) == (0, 200, 0)
    assert tuple(centre(CONVCAM)) == (0, 0, 200)
    # the model name is written in the 3rd-person corner (bottom-left), light on dark
    corner = frame[THIRD_PERSON.h - 50 : THIRD_PERSON.h, 0:300]
    assert (corner.max(axis=-1) > 200).any() and (corner.max(axis=-1) < 30).any()
    # text panels hold text; the loss plot holds its curve colour
    for rect in (PLAYER_CONSOLE, TRAINER_CONSOLE):
        body = frame[rect.y + TITLE_H : rect.y + rect.h, rect.x : rect.x + rect.w]
        assert (body != PANEL_BG).any(axis=-1).mean() > 0.005
    body = frame[
        LOSS_PLOT.y + TITLE_H : LOSS_PLOT.y + LOSS_PLOT.h, LOSS_PLOT.x : LOSS_PLOT.x + LOSS_PLOT.w
    ]
    assert (np.abs(body.astype(int) - (240, 120, 180)).sum(axis=-1) < 30).sum() > 100


def test_mp4_opens_with_the_right_frame_count(tmp_path: Path):
    writer = StreamWriter(tmp_path / "s.mp4")
    composer = StreamComposer()
    for _ in range(12):
        writer.write(composer.compose(inputs()))
    writer.close()
    frames = iio.imread(tmp_path / "s.mp4")
    assert frames.shape == (12, 720, 1280, 3)


def test_run_metrics_reads_tensorboard(tmp_path: Path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tensorboard"))
    for step in range(1, 6):
        w.add_scalar("train/loss", 1.0 / step, step)
    w.add_scalar("val/steering_mae", 0.1, 5)
    w.close()
    m = RunMetrics(tmp_path)
    m.refresh(force=True)
    assert m.step() == 5 and len(m.loss()) == 5
    lines = m.console_lines()
    assert lines[0] == "step 5" and any("val/steering_mae" in line for line in lines)
    assert RunMetrics(None).console_lines()[0] == "no training metrics yet"
