"""The trainer learns a simple image→label function, resumes exactly, and logs what it should."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from imitation.buffer import BufferConfig
from imitation.checkpoint import load_checkpoint
from imitation.models import ModelConfig, OutputSpec
from imitation.models.speed import SpeedControl
from imitation.train import (
    AugmentConfig,
    TrainConfig,
    Trainer,
    augment_batch,
    augment_frames,
    draw_augment_params,
    flip_labels,
)

H, W = 24, 48


class ColumnStore:
    """Synthetic storage: a bright column at a random x; steering = its position in [-1, 1].

    Episodes of 40 consecutive steps; towns 0–4 (town = episode % 5).
    """

    def __init__(self, n: int = 2000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.col = rng.integers(0, W, n)
        hood = rng.integers(0, 60, (n, H, W, 3), dtype=np.uint8)
        hood[np.arange(n), :, self.col] = 255
        steering = (2 * self.col / (W - 1) - 1).astype(np.float32)
        speed = rng.uniform(0, 20, (n, 1)).astype(np.float32)
        throttle = np.clip(1 - speed[:, 0] / 10, -1, 1).astype(np.float32)
        angle = rng.uniform(-np.pi, np.pi, n)
        episode = np.arange(n) // 40
        self.data: dict[str, np.ndarray] = {
            "hood": hood,
            "action": np.stack([throttle, steering], axis=1),
            "executed_action": np.stack([throttle, steering], axis=1),
            "speed": speed,
            "purpose": np.stack([rng.uniform(0, 1, n), np.sin(angle), np.cos(angle)], 1).astype(
                np.float32
            ),
            "time": np.arange(n) / 30.0,
            "step": (np.arange(n) % 40).astype(np.int64),
            "episode_id": episode.astype(np.int64),
            "town_id": (episode % 5).astype(np.int64),
        }

    def __len__(self) -> int:
        return len(self.col)

    def read_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[np.asarray(indices)] for k, v in self.data.items()}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def store() -> ColumnStore:
    return ColumnStore()


def small_config(**changes: object) -> TrainConfig:
    base = {
        "model": ModelConfig(backbone="pilotnet", image_size=(H, W), dense=256),
        "steps": 200,
        "batch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 10,
        "buffer": BufferConfig(capacity=400, start_fill=0.9),
        "augment": AugmentConfig(brightness=0.1, contrast=0.1, saturation=0.1, flip=0.5),
        "val_towns": (4,),
        "val_samples": 400,
        "val_every": 0,
        "checkpoint_every": 0,
        "log_every": 50,
        "image_every": 100,
        "progress": False,
        "device": "cpu",
    }
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_learns_steering_from_pixels(store: ColumnStore, tmp_path: Path) -> None:
    trainer = Trainer(config=small_config(), store=store, out_dir=tmp_path)
    val = trainer.train()
    trainer.close()
    baseline = val["val/steering_mse_mean_baseline"]
    assert val["val/steering_mse"] < 0.35 * baseline, val
    # validation came only from the held-out town
    assert trainer.val_indices is not None and set(store.data["town_id"][trainer.val_indices]) == {
        4
    }
    assert trainer.train_indices is not None and 4 not in set(
        store.data["town_id"][trainer.train_indices]
    )
    # TensorBoard event file, checkpoint and its JSON twin exist
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    final = tmp_path / "checkpoints" / "step-00000200.safetensors"
    assert final.exists() and final.with_suffix(".json").exists()
    logged = {k for h in trainer.history for k in h}
    assert {"train/loss", "train/samples_per_s", "train/buffer/shared/fill", "val/loss"} <= logged


def _train(store: ColumnStore, out: Path, steps: int | None, resume: Path | None = None) -> Trainer:
    cfg = small_config(
        steps=12,
        model=ModelConfig(
            backbone="pilotnet",
            image_size=(H, W),
            dense=32,
            dropout=0.1,
            frame_stack=2,
            history=4,
            outputs=(OutputSpec(name="throttle_brake", kind="delta"), OutputSpec(name="steering")),
        ),
        buffer=BufferConfig(capacity=100, start_fill=0.9, per_output=True),
        image_every=0,
        val_towns=(),
    )
    trainer = Trainer(config=cfg, store=store, out_dir=out, resume=resume)
    trainer.train(steps)
    trainer.close()
    return trainer


def test_resume_is_exact(store: ColumnStore, tmp_path: Path) -> None:
    straight = _train(store, tmp_path / "a", None)
    _train(store, tmp_path / "b", 5)
    resumed = _train(
        store,
        tmp_path / "b",
        None,
        resume=tmp_path / "b" / "checkpoints" / "step-00000005.safetensors",
    )
    assert resumed.step == straight.step == 12
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    ca = load_checkpoint(tmp_path / "a" / "checkpoints")
    cb = load_checkpoint(tmp_path / "b" / "checkpoints")
    assert ca.step == cb.step == 12
    for key in ca.optimizer:
        assert torch.equal(ca.optimizer[key], cb.optimizer[key]), key


def test_init_warm_starts_from_weights_only(store: ColumnStore, tmp_path: Path) -> None:
    """``init=``: the weights of a checkpoint, a new optimiser, schedule and step count (a DAgger
    round's retraining); a run folder works too; giving both init and resume is an error."""
    first = _train(store, tmp_path / "a", None)
    cfg = first.config
    warm = Trainer(config=cfg, store=store, out_dir=tmp_path / "c", init=tmp_path / "a")
    assert warm.step == 0 and not warm.optimizer.state
    for (name, a), b in zip(
        first.model.state_dict().items(), warm.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    cold = Trainer(config=cfg, store=store, out_dir=tmp_path / "d")
    assert any(
        not torch.equal(a, b)
        for a, b in zip(first.model.parameters(), cold.model.parameters(), strict=True)
    )
    warm.train(3)
    warm.close()
    assert warm.step == 3
    with pytest.raises(ValueError, match="not both"):
        Trainer(
            config=cfg,
            store=store,
            out_dir=tmp_path / "e",
            init=tmp_path / "a",
            resume=tmp_path / "a",
        )
    other = replace(cfg, model=replace(cfg.model, dense=64))
    with pytest.raises(ValueError, match="different model"):
        Trainer(config=other, store=store, out_dir=tmp_path / "f", init=tmp_path / "a")


def test_flip_negates_steering_and_purpose_sine() -> None:
    rng = np.random.default_rng(0)
    hood = rng.integers(0, 255, (4, 5, 6, 3), dtype=np.uint8)
    batch: dict[str, np.ndarray] = {
        "hood": hood.copy(),
        "action": np.array([[0.5, 0.3]] * 4, np.float32),
        "purpose": np.array([[0.2, 0.6, 0.8]] * 4, np.float32),
        "history": np.ones((4, 3, 6), np.float32),
    }
    out = augment_batch(
        batch, AugmentConfig(brightness=0, contrast=0, saturation=0, flip=1.0), rng, steering=1
    )
    np.testing.assert_array_equal(out["hood"], hood[:, :, ::-1])
    np.testing.assert_allclose(out["action"][:, 1], [-0.3] * 4, rtol=1e-6)
    np.testing.assert_allclose(out["action"][:, 0], [0.5] * 4, rtol=1e-6)
    np.testing.assert_allclose(out["purpose"][:, 1], [-0.6] * 4, rtol=1e-6)
    np.testing.assert_array_equal(out["history"][0, 0], [1, -1, 1, 1, -1, 1])


@pytest.mark.parametrize("channels", [3, 9, 1])
def test_device_augmentation_matches_the_loaders(channels: int) -> None:
    """augment_frames (torch, for the GPU) applies the same draws and arithmetic as the numpy
    loader path: frames within one grey level, labels flipped identically."""
    rng = np.random.default_rng(3)
    n = 16
    batch: dict[str, np.ndarray] = {
        "hood": rng.integers(0, 256, (n, 12, 20, channels), dtype=np.uint8),
        "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        "purpose": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
    }
    cfg = AugmentConfig(brightness=0.3, contrast=0.3, saturation=0.3, flip=0.5)
    ref = augment_batch(
        {k: v.copy() for k, v in batch.items()}, cfg, np.random.default_rng(7), steering=1
    )
    params = draw_augment_params(n, cfg, np.random.default_rng(7), steering=1)
    assert params["flip"].any() and not params["flip"].all()
    labels = {k: v.copy() for k, v in batch.items()}
    flip_labels(labels, params["flip"], 1)
    frames = augment_frames(
        torch.from_numpy(batch["hood"]), {k: torch.from_numpy(v) for k, v in params.items()}
    )
    diff = np.abs(frames.numpy().astype(int) - ref["hood"].astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01
    np.testing.assert_array_equal(labels["action"], ref["action"])
    np.testing.assert_array_equal(labels["purpose"], ref["purpose"])


def test_trainer_augments_on_device_when_asked(store: ColumnStore, tmp_path: Path) -> None:
    """augment_on="device": the loader leaves frames alone and hands the factors over; the
    batch the model sees equals the loader-augmented one (within a grey level)."""
    cfg = small_config(augment_on="device")
    trainer = Trainer(config=cfg, store=store, out_dir=tmp_path / "dev")
    assert trainer.augment_on_device
    dev = trainer.maker.make(0, trainer.device, augment_on_device=True)
    assert dev.augment is not None and set(dev.augment) == {
        "brightness",
        "contrast",
        "saturation",
        "flip",
    }
    other = Trainer(config=small_config(augment_on="loader"), store=store, out_dir=tmp_path / "cpu")
    assert not other.augment_on_device
    loader = other.maker.make(0, other.device)
    assert loader.augment is None
    seen = dev.model_inputs()["hood"].numpy().astype(int)
    assert np.abs(seen - loader.inputs["hood"].numpy().astype(int)).max() <= 1
    torch.testing.assert_close(dev.target, loader.target)
    torch.testing.assert_close(dev.inputs["purpose"], loader.inputs["purpose"])
    trainer.train(steps=3)
    assert trainer.step == 3
    trainer.close()
    other.close()


def test_config_round_trip_and_errors() -> None:
    cfg = small_config()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="start threshold"):
        small_config(batch_size=1000)
    with pytest.raises(ValueError, match="exactly one data source"):
        Trainer(config=cfg)


@pytest.mark.timm
@pytest.mark.skipif(
    importlib.util.find_spec("timm") is None, reason="needs the timm extra (GPU machine)"
)
@pytest.mark.parametrize("name", ["xception41", "inception_resnet_v2"])
def test_timm_backbone_trains_through_the_trainer(
    name: str, store: ColumnStore, tmp_path: Path
) -> None:
    """A timm backbone trains end to end (CUDA when present: bf16, channels-last, device
    augmentation) and its checkpoint loads into a policy."""
    from imitation.policy import BCPolicy

    cfg = small_config(
        model=ModelConfig(backbone=name, image_size=(96, 128), dense=64),
        steps=6,
        batch_size=8,
        device="auto",
        image_every=0,
    )
    trainer = Trainer(config=cfg, store=store, out_dir=tmp_path)
    trainer.train()
    trainer.close()
    assert trainer.step == 6
    assert all(np.isfinite(h["train/loss"]) for h in trainer.history if "train/loss" in h)
    policy = BCPolicy.load(tmp_path / "checkpoints")
    one = store.read_batch(np.arange(1))
    obs = {k: one[k][0] for k in ("purpose", "speed")}
    obs["hood"] = policy.preprocessing.frames(one["hood"])[0]  # resized as the wrappers would
    action = policy.predict(obs)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)


class LampStore(ColumnStore):
    """ColumnStore's frames with a 2×2 lamp somewhere in the top half: red, green or none (the
    ``light`` label; a tenth of the samples unlabelled). Steering still follows the column."""

    def __init__(self, n: int = 2000, seed: int = 1) -> None:
        super().__init__(n, seed)
        rng = np.random.default_rng(seed)
        light = rng.choice([0, 2, 3], n).astype(np.int8)
        y, x = rng.integers(0, H // 2 - 2, n), rng.integers(0, W - 2, n)
        hood = self.data["hood"]
        for i in np.flatnonzero(light != 3):
            hood[i, y[i] : y[i] + 2, x[i] : x[i] + 2] = (
                (40, 255, 110)
                if light[i] == 0
                else (
                    255,
                    38,
                    24,
                )
            )
        light[rng.random(n) < 0.1] = -1
        self.data["light"] = light


def test_light_head_learns_to_read_a_lamp(tmp_path: Path) -> None:
    model = ModelConfig(backbone="pilotnet", image_size=(H, W), dense=64, light_head=1.0)
    cfg = small_config(model=model, steps=250, augment=AugmentConfig(flip=0.0))
    trainer = Trainer(config=cfg, store=LampStore(), out_dir=tmp_path)
    before = trainer.validate()
    val = trainer.train()
    trainer.close()
    assert before["val/light_balanced_accuracy"] < 0.6  # untrained: about a third
    assert val["val/light_balanced_accuracy"] > 0.9, val
    assert {"val/light_recall_red", "val/light_recall_green", "val/light_recall_none"} <= set(val)
    assert any("train/loss_aux_light" in h for h in trainer.history)


class StopStore(LampStore):
    """LampStore's frames, labelled as the living town labels them: a red lamp means "stop"
    (``target_speed`` 0), anything else "drive at 10 m/s". As in the town, a car at rest is
    nearly always waiting at a red lamp, so for a pedal model the speed alone predicts "brake"."""

    def __init__(self, n: int = 2000, seed: int = 2) -> None:
        super().__init__(n, seed)
        rng = np.random.default_rng(seed)
        red = self.data["light"] == 2
        target = np.where(red, 0.0, 10.0).astype(np.float32)
        speed = np.where(red, rng.uniform(0, 0.3, n), rng.uniform(0.5, 14, n)).astype(np.float32)
        standing = np.flatnonzero(~red)[: n // 50]  # a few starts from rest
        speed[standing] = 0.0
        pedal = SpeedControl().pedal(torch.from_numpy(target), torch.from_numpy(speed)).numpy()
        self.data["speed"] = speed.reshape(-1, 1)
        self.data["target_speed"] = target
        self.data["action"][:, 0] = pedal
        self.data["executed_action"][:, 0] = pedal


def test_a_target_speed_model_starts_from_rest_where_the_scene_says_go(tmp_path: Path) -> None:
    model = ModelConfig(
        backbone="pilotnet", image_size=(H, W), dense=64, speed=False, speed_target=15.0
    )
    cfg = small_config(model=model, steps=250, augment=AugmentConfig(flip=0.0))
    store = StopStore()
    trainer = Trainer(config=cfg, store=store, out_dir=tmp_path)
    trainer.train()
    trainer.close()
    from imitation.policy import BCPolicy

    policy = BCPolicy.load(tmp_path / "checkpoints")
    held = np.flatnonzero(store.data["town_id"] == 4)
    red = held[store.data["light"][held] == 2][:20]
    clear = held[store.data["light"][held] == 3][:20]

    def pedals(idx: np.ndarray, speed: float) -> np.ndarray:
        obs = {
            "hood": store.data["hood"][idx],
            "purpose": store.data["purpose"][idx],
            "speed": np.full((len(idx), 1), speed, np.float32),
        }
        return policy.predict(obs)[:, 0]

    # At rest on a clear road it drives off, although standing cars in its data were braking.
    assert np.mean(pedals(clear, 0.0) > 0.1) > 0.9
    # Before a red lamp it brakes, at speed and at rest.
    assert np.mean(pedals(red, 8.0) < -0.5) > 0.9
    assert np.all(pedals(red, 0.0) < 0)


def test_a_target_speed_model_needs_the_label(store: ColumnStore, tmp_path: Path) -> None:
    model = ModelConfig(backbone="pilotnet", image_size=(H, W), dense=64, speed_target=15.0)
    trainer = Trainer(config=small_config(model=model, steps=2), store=store, out_dir=tmp_path)
    with pytest.raises(ValueError, match="no target_speed label"):
        trainer.train()
    trainer.close()
