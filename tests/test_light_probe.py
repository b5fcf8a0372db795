"""scripts/light_probe.py end to end on a few short drives: frames near lights, a probe table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "light_probe.py"


def _module():
    spec = importlib.util.spec_from_file_location("light_probe", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the probe's main() sets one thread for itself


def test_the_probe_collects_labelled_frames_and_prints_its_table(capsys):
    probe = _module()
    data = probe.collect([100, 101], steps=500, every=5)
    assert data["frames"].shape[1:] == (90, 160, 3)
    assert len(data["frames"]) == len(data["green"]) == len(data["distance"]) > 0
    assert set(np.unique(data["green"])) <= {0.0, 1.0}
    assert np.all((data["distance"] > 0) & (data["distance"] < 30))
    assert (
        probe.main(
            ["--towns", "4", "--steps", "300", "--train-steps", "5", "--variants", "45x80,45x80/s1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Red or green?" in out and "45x80/s1" in out


def test_too_few_towns_is_one_clear_line(capsys):
    with pytest.raises(SystemExit):
        _module().main(["--towns", "2"])
    assert "--towns must be at least 4" in capsys.readouterr().err
