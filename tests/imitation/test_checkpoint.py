"""Checkpoints round-trip bit-exact, are written atomically, never unpickle, fail clearly."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest
import torch

from imitation.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    read_meta,
    save_checkpoint,
)
from imitation.models import DrivingModel, OutputSpec, build_model


def _model_and_optimizer() -> tuple[DrivingModel, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(
        "pilotnet",
        image_size=(24, 48),
        dense=32,
        history=3,
        outputs=(
            OutputSpec(name="throttle_brake", kind="delta"),
            OutputSpec(name="steering", kind="classification"),
        ),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs = model.dummy_inputs(4, generator=torch.Generator().manual_seed(1))
    loss, _ = model.loss(model(inputs), torch.zeros(4, 2), prev_action=inputs["prev_action"])
    loss.backward()
    opt.step()
    return model, opt


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model, opt = _model_and_optimizer()
    path = save_checkpoint(
        tmp_path / "step-00000007", model=model, step=7, optimizer=opt, train_config={"lr": 1e-3}
    )
    assert path.name == "step-00000007.safetensors"
    ckpt = load_checkpoint(path)
    assert ckpt.step == 7 and ckpt.meta["model_name"] == "pilotnet"
    assert ckpt.meta["normalisation"]["mean"] == [0.5, 0.5, 0.5]
    assert ckpt.meta["preprocessing"]["history"] == 3 and ckpt.meta["preprocessing"]["prev_action"]
    loaded = ckpt.build_model()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt.optimizer_state())
    st1, st2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert st1.keys() == st2.keys()
    for idx in st1:
        for key in st1[idx]:
            assert torch.equal(torch.as_tensor(st1[idx][key]), torch.as_tensor(st2[idx][key])), key
    # the JSON twin is readable by people and matches the header
    assert json.loads(path.with_suffix(".json").read_text())["step"] == 7 == read_meta(path)["step"]
    assert latest_checkpoint(tmp_path) == path and load_model(tmp_path).config == model.config


def test_truncated_checkpoint_gives_clear_error(tmp_path: Path) -> None:
    model, _ = _model_and_optimizer()
    path = save_checkpoint(tmp_path / "ckpt", model=model, step=1)
    data = path.read_bytes()
    for cut in (len(data) // 2, 20, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    model, _ = _model_and_optimizer()
    save_checkpoint(tmp_path / "a", model=model, step=1)
    save_checkpoint(tmp_path / "a", model=model, step=2)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.safetensors"]
    assert load_checkpoint(tmp_path / "a.safetensors").step == 2


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a gta5drive checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")


def test_loading_code_never_unpickles() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "imitation"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "torch.load(" not in text and "import pickle" not in text, path
