"""RL Zoo: the README's `python -m rl_zoo3.train ...` commands train with the shipped
hyperparameter files (for a few hundred steps here)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rl_zoo3") is None,
    reason='needs RL Zoo: pip install rl_zoo3 (in the dev extra: pip install -e ".[dev]")',
)

# A tiny budget on top of the documented command: a few hundred steps, no evaluation, small
# rollouts and buffers, one torch thread (the test machine has 2 shared cores).
OVERRIDES = {
    "ppo": ["-params", "n_steps:128", "batch_size:64"],
    "sac": ["-params", "learning_starts:128", "batch_size:64", "buffer_size:1000"],
}


def readme_commands() -> dict[str, list[str]]:
    """The README's zoo commands by algorithm (so the docs and this test cannot drift)."""
    commands = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("python -m rl_zoo3.train "):
            argv = shlex.split(line)
            commands[argv[argv.index("--algo") + 1]] = argv
    return commands


def test_readme_documents_both_algorithms_with_shipped_files() -> None:
    commands = readme_commands()
    assert set(commands) == {"ppo", "sac"}
    for algo, argv in commands.items():
        assert argv[argv.index("--env") + 1] == "GTA5DriveSmall-v0"
        assert "--gym-packages" in argv and argv[argv.index("--gym-packages") + 1] == "gta_env"
        conf = ROOT / argv[argv.index("--conf-file") + 1]
        assert conf.is_file() and conf.name == f"{algo}.yml"
        assert "MultiInputPolicy" in conf.read_text()


@pytest.mark.parametrize(
    "algo", ["ppo", pytest.param("sac", marks=pytest.mark.slow)]
)  # sac: ~16 s of gradient steps on 2 CPUs
def test_documented_zoo_command_trains(algo: str, tmp_path: Path) -> None:
    argv = readme_commands()[algo]
    argv = [sys.executable, *argv[1:]]
    argv += ["-n", "256", "--eval-freq", "-1", "--seed", "0", "--num-threads", "1"]
    argv += ["--log-folder", str(tmp_path / "logs"), *OVERRIDES[algo]]
    # The checkout's packages first (cwd is the repo root, as the README's command assumes).
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    saved = list((tmp_path / "logs" / algo).glob("GTA5DriveSmall-v0_*/GTA5DriveSmall-v0.zip"))
    assert len(saved) == 1, done.stdout[-2000:]
    assert "Overwriting n_timesteps with n=256" in done.stdout
