"""Gymnasium wrappers for GTA5Drive observations and actions, one transform each."""

from wrappers.camera import GreyscaleCameras, ResizeCameras, greyscale_frames, resize_frames
from wrappers.dead_zone import DeadZoneAction, dead_zone_translate
from wrappers.frame_stack import FrameStackCameras, stack_channels
from wrappers.history import HistoryObservation, PreviousAction, history_row
from wrappers.preprocessing import Preprocessing

__all__ = [
    "DeadZoneAction",
    "FrameStackCameras",
    "GreyscaleCameras",
    "HistoryObservation",
    "Preprocessing",
    "PreviousAction",
    "ResizeCameras",
    "dead_zone_translate",
    "greyscale_frames",
    "history_row",
    "resize_frames",
    "stack_channels",
]
