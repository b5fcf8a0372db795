"""A v2 collection folder trains end to end with one buffer per output; bad input is explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.cli import main
from imitation.balance import PerOutputStore, balance_store, make_balancer
from imitation.sample import Sample
from imitation.storage import SampleStore, SampleWriter, StorageConfig

EXPERT = Path(__file__).parents[1] / "imitation" / "data" / "expert_actions.npz"


@pytest.fixture(scope="module")
def raw_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    actions = np.load(EXPERT)["action"][:4000]
    with SampleWriter(root, config=StorageConfig(fsync=False)) as w:
        for i, a in enumerate(actions):
            w.append(
                Sample(
                    hood=np.full((36, 64, 3), i % 250, np.uint8),
                    action=a,
                    executed_action=a,
                    speed=5.0,
                    purpose=np.array([0.5, 0.0, 1.0]),
                    time=i / 30,
                    step=i,
                    episode_id=i // 1000,
                    town_id=i // 1000,
                )
            )
    return root


def test_v2_folder_trains_one_buffer_per_output(
    raw_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v2 = tmp_path / "v2"
    balancer = make_balancer("v2", rng=np.random.default_rng(0), require="seen")
    report = balance_store(SampleStore(raw_store), balancer, out_dir=v2, progress=False)
    assert set(report.outputs) == {"accel", "brake", "steering"}
    view = PerOutputStore.open(v2)
    sizes = {k: len(v) for k, v in view.output_indices.items()}
    assert sizes == {k: len(SampleStore(v2 / k)) for k in sizes} and min(sizes.values()) > 0
    batch = view.read_batch(np.array([len(view) - 1, 0]))
    assert batch["hood"].shape == (2, 36, 64, 3)

    from imitation.train import Trainer

    code = main(
        [
            "train", "--data", str(v2), "--out", str(tmp_path / "run"), "--steps", "4",
            "--batch-size", "6", "--buffer", "32", "--size", "36x64", "--val-towns", "3",
            "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "one buffer per output" in out and "checkpoint:" in out
    # The trainer built one buffer per output, each from its own store only.
    from agents.cli import build_parser
    from agents.commands.train import open_store, train_config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--data",
            str(v2),
            "--buffer",
            "32",
            "--batch-size",
            "6",
            "--size",
            "36x64",
            "--val-towns",
            "3",
        ]
    )
    trainer = Trainer(
        config=train_config_from_args(args), store=open_store(str(v2)), out_dir=tmp_path / "t"
    )
    trainer.maker.refill(0)
    assert trainer.buffers.columns == {"accel": 0, "brake": 0, "steering": 1}
    for name, buffer in trainer.buffers.buffers.items():
        held = buffer.source_indices()
        assert len(held) and np.isin(held, view.output_indices[name]).all()
    trainer.close()


def test_bad_input_is_explained(raw_store: Path, tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    balance_store(
        SampleStore(raw_store),
        make_balancer("v2", rng=np.random.default_rng(0), require="seen"),
        out_dir=v2,
        progress=False,
    )
    with pytest.raises(SystemExit, match="v2 collection folder"):
        main(["balance", "--in", str(v2), "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="every buffer would be filled from the same samples"):
        main(["train", "--data", str(raw_store), "--per-output-buffers", "--steps", "1"])
    with pytest.raises(SystemExit, match="no such store"):
        main(["train", "--data", str(tmp_path / "nothing"), "--steps", "1"])
    with pytest.raises(SystemExit):  # argparse: invalid choice 'v9' (choose from ...)
        main(["balance", "--scheme", "v9", "--in", str(raw_store), "--out", str(tmp_path / "c")])
    with pytest.raises(ValueError, match="unknown balancing scheme 'v9'"):
        make_balancer("v9", rng=np.random.default_rng(0))
