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


# ------------------------------------------------------------------------ damaged checkpoints


def _with_header(path: Path, out: Path, change: object) -> Path:
    """A copy of ``path`` whose JSON header is replaced by ``change(meta)`` (or a raw string)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads((f.metadata() or {})["gta5drive"])
    header = change(meta) if callable(change) else change
    save_file(tensors, str(out), metadata={"gta5drive": header})
    return out


def _drop(key: str):
    def change(meta: dict) -> str:
        meta.pop(key)
        return json.dumps(meta)

    return change


def _set(key: str, value: object):
    def change(meta: dict) -> str:
        meta[key] = value
        return json.dumps(meta)

    return change


def _unknown_backbone(meta: dict) -> str:
    meta["model_config"]["backbone"] = "no-such-net"
    return json.dumps(meta)


def _bigger_dense(meta: dict) -> str:
    meta["model_config"]["dense"] = 64  # weights were trained with dense=32
    return json.dumps(meta)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("{not json", "invalid JSON header"),
        ("[1, 2, 3]", "not a JSON object"),
        (_drop("preprocessing"), "no 'preprocessing'"),
        (_drop("model_config"), "no 'model_config'"),
        (_set("step", "seven"), "'step' must be a int"),
        (_unknown_backbone, "cannot build"),
        (_bigger_dense, "do not fit"),
        (_set("model_config", {"backbone": "pilotnet", "bogus": 1}), "invalid model_config"),
        (_set("preprocessing", {"bogus": 1}), "invalid preprocessing"),
    ],
)
def test_bad_metadata_is_one_checkpoint_error(tmp_path: Path, change: object, message: str) -> None:
    from imitation.policy import BCPolicy

    model, _ = _model_and_optimizer()
    good = save_checkpoint(tmp_path / "good", model=model, step=1)
    bad = _with_header(good, tmp_path / "bad.safetensors", change)
    with pytest.raises(CheckpointError, match=message) as info:
        BCPolicy.load(bad)
    assert "truncated" not in str(info.value)


def test_flipped_weight_byte_fails_the_digest(tmp_path: Path) -> None:
    model, _ = _model_and_optimizer()
    path = save_checkpoint(tmp_path / "ckpt", model=model, step=1)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # the end of the file is tensor data (an exponent bit of the last weight)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="digest"):
        load_checkpoint(path)


def test_run_folder_falls_back_to_the_newest_good_checkpoint(tmp_path: Path) -> None:
    from imitation.checkpoint import CheckpointWarning
    from imitation.policy import BCPolicy

    model, _ = _model_and_optimizer()
    save_checkpoint(tmp_path / "checkpoints" / "step-00000010", model=model, step=10)
    (tmp_path / "checkpoints" / "step-00000020.safetensors").write_bytes(b"junk" * 10)
    with pytest.warns(CheckpointWarning, match="step-00000020"):
        policy = BCPolicy.load(tmp_path)
    assert policy.meta["step"] == 10
    with pytest.warns(CheckpointWarning):
        assert load_checkpoint(tmp_path).step == 10
    (tmp_path / "checkpoints" / "step-00000010.safetensors").write_bytes(b"junk")
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError, match="no checkpoint"):
        BCPolicy.load(tmp_path)
