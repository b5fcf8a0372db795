"""Shared fixtures: a small random-weight BC checkpoint and one thread for torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("stable_baselines3")


@pytest.fixture(autouse=True)
def _torch_on_one_thread(one_thread: None) -> None:
    """Every test here runs torch on one thread (fixture in tests/conftest.py)."""


@pytest.fixture(scope="module")
def bc_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pilotnet BC checkpoint at 45×80 (random weights; the env's 90×160 hood is resized)."""
    from imitation.checkpoint import save_checkpoint
    from imitation.models import build_model

    torch.manual_seed(0)
    model = build_model("pilotnet", image_size=(45, 80), dense=64)
    return save_checkpoint(tmp_path_factory.mktemp("bc") / "step-00000010", model=model, step=10)
