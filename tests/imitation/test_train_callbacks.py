"""The training loop's hooks: built-in schedules as callbacks, and user callbacks after them."""

from __future__ import annotations

from pathlib import Path

import pytest

from imitation.train import StepInfo, TrainCallback, Trainer
from imitation.train.callbacks import Checkpointing, ImageLogging, ScalarLogging, Validation
from tests.imitation.test_train import ColumnStore, small_config

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(TrainCallback):
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_train_start(self, trainer: Trainer, start: int, end: int) -> None:
        self.events.append(("start", start))

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        assert trainer.step == info.step
        assert set(info.losses) >= {"train/loss"}
        self.events.append(("step", info.step))

    def on_train_end(self, trainer: Trainer) -> None:
        self.events.append(("end", trainer.step))


def test_callbacks_see_every_step_after_the_built_in_ones(tmp_path: Path) -> None:
    recorder = Recorder()
    config = small_config(steps=4, log_every=2, image_every=0, val_towns=())
    trainer = Trainer(config=config, store=ColumnStore(400), out_dir=tmp_path, callbacks=[recorder])
    kinds = [type(c) for c in trainer.callbacks]
    assert kinds == [ScalarLogging, ImageLogging, Validation, Checkpointing, Recorder]
    trainer.train(steps=3)
    trainer.train()
    trainer.close()
    assert recorder.events == [
        ("start", 0),
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("end", 3),
        ("start", 3),
        ("step", 4),
        ("end", 4),
    ]
    # The end of each call logs and checkpoints, as the inline schedules did.
    assert [h["step"] for h in trainer.history] == [2.0, 3.0, 4.0]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.safetensors")) == [
        "step-00000003.safetensors",
        "step-00000004.safetensors",
    ]
