"""The `gta5drive` command as a user meets it: small stores, typos, defaults, quiet pipes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main
from imitation.sample import Sample
from imitation.storage import SampleStore, SampleWriter, StorageConfig

ROOT = Path(__file__).resolve().parents[2]


def write_store(root: Path, n: int = 300, towns: int = 3) -> Path:
    """``n`` random samples over ``towns`` towns (90x160 frames, the env's default hood)."""
    rng = np.random.default_rng(0)
    with SampleWriter(root, config=StorageConfig(chunk_samples=100, fsync=False)) as w:
        for i in range(n):
            w.append(
                Sample(
                    hood=rng.integers(0, 256, (90, 160, 3), dtype=np.uint8),
                    action=rng.uniform(-1, 1, 2),
                    executed_action=rng.uniform(-1, 1, 2),
                    speed=float(rng.uniform(0, 20)),
                    purpose=np.array([0.5, 0.6, 0.8]),
                    time=i / 30,
                    step=i // towns,
                    episode_id=i % towns,
                    town_id=i % towns,
                )
            )
    return root


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m agents.cli ...`` in a subprocess (stdout/stderr as a pipe: not a TTY)."""
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_on_a_small_store_with_default_flags_sizes_the_buffer(tmp_path: Path) -> None:
    """300 samples are far below the default buffer's 22,500: it trains, saying what it did."""
    store = write_store(tmp_path / "store")
    done = run_cli("train", "--data", str(store), "--out", str(tmp_path / "run"), "--steps", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "using --buffer 333" in done.stderr
    assert list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))


def test_train_with_a_buffer_the_store_cannot_fill_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_store(tmp_path / "store", n=120)
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(store), "--out", str(tmp_path / "run"), "--buffer", "1000"])
    message = str(stop.value)
    assert "\n" not in message and message.startswith("gta5drive train: ")
    assert "--buffer 120 or fewer" in message
    assert not (tmp_path / "run").exists()


def test_train_init_warm_starts_and_a_mismatched_model_stops_with_one_line(
    tmp_path: Path,
) -> None:
    store = write_store(tmp_path / "store")
    first = ["train", "--data", str(store), "--steps", "2", "--buffer", "200"]
    assert main([*first, "--out", str(tmp_path / "a")]) == 0
    assert main([*first, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a")]) == 0
    assert list((tmp_path / "b" / "checkpoints").glob("step-00000002.safetensors"))
    with pytest.raises(SystemExit, match=r"^gta5drive train: .*different model"):
        main(
            [
                *first,
                "--out",
                str(tmp_path / "c"),
                "--init",
                str(tmp_path / "a"),
                "--frame-stack",
                "2",
            ]
        )


def test_val_towns_that_match_nothing_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents.commands.train import fit_to_store, register

    store = SampleStore(write_store(tmp_path / "store", n=30))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", "x", "--val-towns", "7-8", "--batch-size", "8"])
    fit_to_store(args, store)
    err = capsys.readouterr().err
    assert "--val-towns 7,8 match no stored sample (the store has towns 0-2)" in err


def test_play_makes_the_env_with_the_cameras_a_dual_backbone_checkpoint_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --video: the env must still have the chase camera that the second backbone sees."""
    from imitation.models import ModelConfig
    from tests.agents.helpers import write_checkpoint

    dual = ModelConfig(backbone="pilotnet", image_size=(24, 48), cinematic_size=(24, 48), dense=16)
    ckpt = write_checkpoint(tmp_path / "run" / "step-00000001", step=1, config=dual)
    code = main(
        ["play", "--checkpoint", str(ckpt.parent), "--steps", "5", "--fast", "--no-console"]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("5 steps, 5 predictions")


def test_play_with_no_checkpoint_stops_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"^gta5drive play: no checkpoint \(\*\.safetensors\)"):
        main(["play", "--checkpoint", str(tmp_path), "--steps", "1"])


def test_collect_with_a_driver_that_does_not_load_stops_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    for driver, says in ((tmp_path / "missing", "neither"), (bad, "does not load")):
        with pytest.raises(SystemExit, match=rf"^gta5drive collect: --driver .*{says}"):
            main(
                [
                    "collect",
                    "--out",
                    str(tmp_path / "d"),
                    "--samples",
                    "10",
                    "--driver",
                    str(driver),
                ]
            )
    assert not (tmp_path / "d").exists()  # nothing was started


def test_dataset_info_writes_histograms_beside_the_store_not_into_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_store(tmp_path / "data" / "demos", n=20)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["dataset-info", str(store)]) == 0
    assert (tmp_path / "data" / "demos-info" / "actions.png").is_file()
    assert list(elsewhere.iterdir()) == []
    assert (
        f"histograms: {tmp_path / 'data' / 'demos-info' / 'actions.png'}" in capsys.readouterr().out
    )
    assert main(["dataset-info", str(store), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "actions.png").is_file()


def test_every_option_with_a_default_shows_it_in_help() -> None:
    from agents.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, command in sub.choices.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if (
                not action.option_strings
                or action.default in (None, argparse.SUPPRESS)
                or action.required
                or (isinstance(action, argparse._StoreTrueAction) and action.default is False)
            ):
                continue
            if "default" not in (formatter._get_help_string(action) or ""):
                missing.append(f"{name} {action.option_strings[0]}")
    assert missing == []
    text = " ".join(sub.choices["train"].format_help().split())
    assert "run folder (checkpoints, tensorboard) (default: runs/bc)" in text
    assert "(default: 25000)" in text  # --buffer, from BufferConfig


def test_version_and_misspelt_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("gta5drive ")
    assert main(["trian", "--data", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gta5drive: unknown command 'trian'; did you mean 'train'?")
    assert err.count("\n") == 1
    assert main(["xyzzy"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_collect_into_a_pipe_does_not_redraw_its_bar_per_poll(tmp_path: Path) -> None:
    """Into a pipe (CI logs, nohup) a 300-sample run wrote ~130 bar redraws (15 KB)."""
    done = run_cli(
        "collect", "--out", str(tmp_path / "store"), "--samples", "300", "--workers", "1"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "added 300 samples" in done.stdout
    redraws = done.stderr.replace("\r", "\n").count("collecting:")
    assert 1 <= redraws <= 3 and len(done.stderr) < 1000, done.stderr
