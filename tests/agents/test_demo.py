"""End to end: ``gta5drive demo --quick``, and issue 5's learning test (both slow); bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    totals = summary["totals"]
    bc = next(n for n in totals if n.startswith("bc:"))
    assert totals[bc]["driving_score"] > totals["random"]["driving_score"]
    assert totals[bc]["covered_m"] > totals["random"]["covered_m"] + 20
    assert totals["expert"]["driving_score"] > 0.9
    report = json.loads((out / "eval" / "report.json").read_text())
    assert report["protocol"] == "town" and report["settings"]["traffic"] == 8
    assert set(summary["timings"]) >= {"collect_s", "train_s", "eval_s", "video_s", "total_s"}
    for name in (
        "eval/report.json",
        "eval/report.md",
        "eval/totals.png",
        "eval/infractions.png",
        "stream.mp4",
    ):
        assert (out / name).stat().st_size > 0, name
    import imageio.v3 as iio

    frames = iio.imread(out / "stream.mp4")
    assert frames.shape[1:] == (720, 1280, 3)
    printed = capsys.readouterr().out
    assert "driving_score" in printed and "BC / random" in printed


@pytest.mark.slow
def test_learning_small_model_drives_held_out_towns_better_than_untrained(tmp_path: Path):
    """The learning test: a few minutes of CPU training on living-town expert data (traffic,
    pedestrians, lights, random weather) beats the untrained model on held-out towns under the
    town protocol, and beats predicting the mean steering."""
    import torch

    from agents.demo import DemoConfig, SubsetStore, demo_model_config, episode_order
    from agents.evaluate import EvalConfig, agent_factory, evaluate
    from imitation.buffer import BufferConfig
    from imitation.checkpoint import save_checkpoint
    from imitation.collect import CollectConfig, collect
    from imitation.models import model_from_config
    from imitation.noise import NoiseConfig
    from imitation.storage import SampleStore, StorageConfig
    from imitation.train import AugmentConfig, TrainConfig, Trainer

    # The thread count changes a CPU training's float sums (and what ran before in this process
    # may have set it): fix it, so the margin below is the same in any order.
    torch.set_num_threads(1)
    data = tmp_path / "data"
    collect(
        CollectConfig(
            out=data,
            samples=7 * 900,
            workers=2,
            noise=NoiseConfig.recovery(),
            seed=200,
            traffic=8,
            weather="random",
            episode_steps=900,
            storage=StorageConfig(fsync=False),
            env_kwargs=(("pedestrians", 24), ("route_length", 2000.0)),
        ),
        progress=False,
    )
    raw = SampleStore(data)
    store = SubsetStore(raw, episode_order(raw))  # independent of which worker saved first
    # The demo's model: it predicts the expert's target speed, without the speed input.
    model = demo_model_config(DemoConfig())
    assert model.speed_target > 0 and not model.speed
    config = TrainConfig(
        model=model,
        steps=800,
        batch_size=64,
        lr=1e-3,
        warmup_steps=50,
        buffer=BufferConfig(capacity=int(0.8 * len(store)), start_fill=0.9),
        augment=AugmentConfig(flip=0.0),
        val_towns=(206,),
        val_samples=900,
        val_every=0,
        checkpoint_every=0,
        image_every=0,
        device="cpu",
        progress=False,
    )
    trainer = Trainer(config=config, store=store, out_dir=tmp_path / "run")
    val = trainer.train()
    trainer.close()
    trained = trainer.checkpoint_path(trainer.step)
    untrained = save_checkpoint(
        tmp_path / "untrained" / "step-00000000.safetensors",
        model=model_from_config(model),
        step=0,
    )
    # validation steering error beats always predicting the mean steering
    print("validation", val)
    assert val["val/steering_mse"] < 0.8 * val["val/steering_mse_mean_baseline"], val

    report = evaluate(
        dict([agent_factory(str(untrained)), agent_factory(str(trained))]),
        # The town protocol's living town and rules, on shorter routes to fit in CI.
        config=EvalConfig(seeds=(1000, 1001), route_m=400.0, intersections=1, blocked_s=30.0),
        progress=False,
    )
    before = report.total(f"bc:{untrained.name}")
    after = report.total(f"bc:{trained.name}")
    print("untrained", before, "\ntrained", after)
    assert after["covered_m"] > before["covered_m"] + 50.0  # the margin: 50 m more of route
    assert after["driving_score"] > before["driving_score"]
    assert np.isfinite(after["driving_score"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--frame-stack", "0"], "frame_stack"),
        (["--light-head", "-1"], "light_head"),
        (["--backbone", "pilotnett"], "pilotnett"),
        (["--towns", "0"], "towns"),
    ],
)
def test_bad_demo_settings_stop_before_any_work(tmp_path: Path, flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--quick", "--out", str(tmp_path / "demo"), *flags])
    assert message in str(exc.value) and str(exc.value).startswith("gta5drive demo:")
    assert not (tmp_path / "demo").exists()  # nothing was collected
