"""Capture: regions, resizing, the FPS meter, and the missing-package errors."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

from gta_env.gta5.capture import (
    CaptureUnavailable,
    MssGrabber,
    RateMeter,
    Region,
    ScreenCapture,
    make_grabber,
    resize_frame,
)


class PatternGrabber:
    name = "pattern"

    def grab(self, region):
        y, x = np.mgrid[0 : region.height, 0 : region.width]
        return np.stack([y % 256, x % 256, (x + y) % 256], axis=-1).astype(np.uint8)

    def close(self):
        pass


def test_region_validation():
    assert Region.from_mapping({"left": 1, "top": 2, "width": 3, "height": 4}) == Region(1, 2, 3, 4)
    with pytest.raises(ValueError, match="positive"):
        Region(0, 0, 0, 10)


def test_resize_and_crop():
    capture = ScreenCapture(
        region=Region(0, 0, 64, 36), grabber=PatternGrabber(), crop=(2, 4, 0, 0)
    )
    full = capture.grab()
    assert full.shape == (30, 64, 3) and full[0, 0, 0] == 2
    small = capture.grab_resized((15, 32))
    assert small.shape == (15, 32, 3) and small.dtype == np.uint8
    same = np.zeros((9, 16, 3), np.uint8)
    assert resize_frame(same, (9, 16)) is same
    with pytest.raises(ValueError, match="leaves nothing"):
        ScreenCapture(region=Region(0, 0, 10, 10), grabber=PatternGrabber(), crop=(5, 5, 0, 0))


def test_rate_meter():
    meter = RateMeter()
    assert meter.rate == 0.0
    for _ in range(5):
        meter.tick()
    assert meter.rate > 0


def test_missing_mss_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mss", None)
    with pytest.raises(CaptureUnavailable, match="pip install"):
        MssGrabber()
    with pytest.raises(CaptureUnavailable, match="mss"):
        make_grabber("auto" if sys.platform != "win32" else "mss")
    with pytest.raises(ValueError, match="grabber must be one of"):
        make_grabber("vnc")


def test_no_display_says_what_to_do(monkeypatch):
    pytest.importorskip("mss")
    if sys.platform != "linux":
        pytest.skip("X11-only check")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CaptureUnavailable, match="xvfb"):
        MssGrabber()


@pytest.mark.skipif(
    not os.environ.get("DISPLAY") or shutil.which("xwininfo") is None, reason="needs X and xwininfo"
)
def test_find_missing_window():
    from gta_env.gta5.capture import find_window

    with pytest.raises(CaptureUnavailable, match="no X window"):
        find_window("no such window 1234")
