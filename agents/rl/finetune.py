"""RL fine-tuning of a behaviour-cloning checkpoint with Stable-Baselines3 (``gta5drive finetune``).

Read top to bottom, a run is:

1. load the BC checkpoint; build ``envs`` training envs (subprocesses when more than one), each
   ``GTA5Drive-v0`` wrapped with the checkpoint's preprocessing and driving towns drawn from
   ``train_towns`` (never the evaluation towns);
2. build PPO or SAC with :func:`~agents.rl.policies.bc_to_sb3`: the actor *is* the BC model, the
   critics start from its features;
3. **critic warm-up**: for the first ``warmup_steps`` env steps the actor (backbone, heads,
   exploration noise) is frozen and only the critic learns, on rollouts of the BC policy;
4. train; every ``eval_every`` env steps, export the actor to a BC-format checkpoint
   (safetensors + JSON) and score it with the evaluation harness on held-out towns (``eval/…``
   in TensorBoard; the evaluation at step 0 is the BC model itself).

Why a critic warm-up rather than a BC/KL penalty: with a randomly initialised critic the first
policy-gradient updates follow advantages that are noise, and that is what wrecks a good initial
policy (the "unlearning" seen when fine-tuning from demonstrations); a critic fitted to the BC
policy's own returns first removes that cause without changing the objective, works the same for
PPO and SAC, and costs no tuning of a trade-off weight that would also hold the fine-tuned
policy back from improving on BC. Exploration noise starts small (``log_std_init``) and PPO
updates are kept small (``clip_range``, ``target_kl``), so the policy moves away from BC
gradually. A penalty toward the BC actor would be the next guard if long runs drift.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.rl.policies import Algo, bc_to_sb3, check_convertible, export_driving_model
from imitation.checkpoint import load_checkpoint, save_checkpoint
from imitation.policy import BCPolicy
from wrappers.preprocessing import Preprocessing

try:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
except ImportError as exc:  # pragma: no cover - depends on the machine
    from gymnasium.error import DependencyNotInstalled

    raise DependencyNotInstalled(
        'RL fine-tuning needs Stable-Baselines3: pip install "gta5drive[rl]"'
    ) from exc


DEFAULT_EVAL_SEEDS = (1000, 1001, 1002)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """One fine-tuning run.

    Attributes:
        checkpoint: BC checkpoint file or run folder.
        algo: ``"ppo"`` or ``"sac"``.
        steps: env steps in total (all envs together).
        envs: parallel training envs (subprocesses when > 1).
        out: run folder (``checkpoints/``, ``tensorboard/``, ``eval.jsonl``).
        env_kwargs: more ``GTA5Drive-v0`` settings (``backend`` defaults to ``"sim"``), for
            training and evaluation alike (reward shaping: ``reward_progress``, ``penalty_…``).
        train_towns: town seeds drawn at every training reset (disjoint from ``eval_seeds``).
        max_episode_steps: time limit of a training episode.
        warmup_steps: env steps with the actor frozen while the critic learns (see the module
            docstring); ``None`` = a fifth of ``steps``, at most 20,000.
        eval_every: env steps between evaluations (0 = only at the start and the end).
        eval_seeds: held-out town seeds for evaluation.
        eval_protocol: evaluation protocol (``town``: the living town; ``empty``: no traffic,
            walkers or lights; see :mod:`agents.evaluate`).
        eval_route_m: length of each evaluation seed's fixed route, metres (the protocol's
            own is 2,000; shorter keeps frequent evaluations cheap).
        learning_rate: optimiser learning rate (``None`` = 1e-4 for PPO, 3e-4 for SAC).
        n_steps: PPO rollout length per env.
        batch_size: minibatch size.
        n_epochs: PPO epochs per rollout.
        clip_range: PPO clip range.
        target_kl: PPO early stop of an update at this approximate KL (``None`` = off).
        buffer_size: SAC replay buffer (observations are images: keep it modest).
        log_std_init: initial log standard deviation of the exploration noise.
        gamma: discount.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        seed: seed of the algorithm and of the training towns.
        progress: show progress bars.
    """

    checkpoint: str
    algo: Algo = "ppo"
    steps: int = 100_000
    envs: int = 4
    out: str = "runs/finetune"
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    train_towns: tuple[int, ...] = tuple(range(100))
    max_episode_steps: int = 1800
    warmup_steps: int | None = None
    eval_every: int = 20_000
    eval_seeds: tuple[int, ...] = DEFAULT_EVAL_SEEDS
    eval_protocol: str = "town"
    eval_route_m: float = 600.0
    learning_rate: float | None = None
    n_steps: int = 256
    batch_size: int = 64
    n_epochs: int = 4
    clip_range: float = 0.1
    target_kl: float | None = 0.03
    buffer_size: int = 20_000
    log_std_init: float = -1.6
    gamma: float = 0.99
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_towns", tuple(int(t) for t in self.train_towns))
        object.__setattr__(self, "eval_seeds", tuple(int(t) for t in self.eval_seeds))
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"algo must be 'ppo' or 'sac', got {self.algo!r}")
        if self.steps < 1 or self.envs < 1:
            raise ValueError(f"steps and envs must be >= 1, got {self.steps} and {self.envs}")
        if not self.train_towns:
            raise ValueError("train_towns must name at least one town seed")
        overlap = set(self.train_towns) & set(self.eval_seeds)
        if overlap:
            raise ValueError(
                f"towns {sorted(overlap)} are both training and evaluation towns; evaluation "
                "must be on held-out towns"
            )
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")

    @property
    def warmup(self) -> int:
        """Critic warm-up env steps."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return min(20_000, self.steps // 5)

    @property
    def lr(self) -> float:
        """Learning rate."""
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if self.algo == "ppo" else 3e-4

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["env_kwargs"] = dict(self.env_kwargs)
        d["train_towns"] = list(self.train_towns)
        d["eval_seeds"] = list(self.eval_seeds)
        return d


class TrainTowns(gym.Wrapper):
    """Resets into a town drawn from a fixed list (unless ``options`` names one).

    Keeps training on its own towns, so that evaluation towns stay held out.

    Args:
        env: the env.
        towns: town seeds to draw from.
        seed: seed of the draw.
    """

    def __init__(self, env: gym.Env, towns: tuple[int, ...], *, seed: int) -> None:
        super().__init__(env)
        self.towns = towns
        self.rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        options = dict(options or {})
        options.setdefault("town_seed", int(self.rng.choice(self.towns)))
        return self.env.reset(seed=seed, options=options)


def make_training_env(
    preprocessing: Mapping[str, Any],
    env_kwargs: Mapping[str, Any],
    towns: tuple[int, ...],
    max_episode_steps: int,
    seed: int,
) -> gym.Env:
    """One training env: ``GTA5Drive-v0``, the model's preprocessing, training towns, Monitor.

    A module-level function of plain arguments, so subprocess envs can pickle it.
    """
    import gta_env  # noqa: F401  (registers GTA5Drive-v0)

    kwargs = {"backend": "sim", **dict(env_kwargs)}
    env = gym.make("GTA5Drive-v0", max_episode_steps=max_episode_steps, **kwargs)
    env = TrainTowns(env, towns, seed=seed)
    env = Preprocessing.from_dict(dict(preprocessing)).wrap(env)
    return Monitor(env)


def make_vec_env(config: FinetuneConfig, preprocessing: Preprocessing) -> VecEnv:
    """The training envs (``SubprocVecEnv`` for more than one)."""
    fns: list[Callable[[], gym.Env]] = [
        functools.partial(
            make_training_env,
            preprocessing.to_dict(),
            dict(config.env_kwargs),
            config.train_towns,
            config.max_episode_steps,
            config.seed * 1000 + rank,
        )
        for rank in range(config.envs)
    ]
    if config.envs == 1:
        return DummyVecEnv(fns)
    return SubprocVecEnv(fns)


def save_finetuned(
    policy: Any,
    path: str | Path,
    *,
    step: int,
    config: FinetuneConfig,
    base: Mapping[str, Any],
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Write the actor as a BC checkpoint (safetensors + JSON); the whole SB3 policy (critics,
    exploration noise) rides along as ``extra.rl_policy.*`` tensors. No pickle."""
    model = export_driving_model(policy)
    tensors = {f"rl_policy.{k}": v for k, v in policy.state_dict().items()}
    return save_checkpoint(
        path,
        model=model,
        step=step,
        train_config=config.to_dict(),
        extra_tensors=tensors,
        extra={
            "rl": {
                "algo": config.algo,
                "env_steps": step,
                "base_checkpoint": base.get("path"),
                "base_step": base.get("step"),
                "metrics": dict(metrics or {}),
            }
        },
    )


class CriticWarmup(BaseCallback):
    """Freezes the actor (``requires_grad=False``) until ``steps`` env steps have been taken."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.frozen = False

    def _set(self, frozen: bool) -> None:
        for p in self.model.policy.actor_parameters():  # type: ignore[operator]
            p.requires_grad_(not frozen)
        self.frozen = frozen

    def _on_training_start(self) -> None:
        if self.steps > 0 and self.num_timesteps < self.steps:
            self._set(True)

    def _on_step(self) -> bool:
        if self.frozen and self.num_timesteps >= self.steps:
            self._set(False)
        self.logger.record("train/actor_frozen", float(self.frozen))
        return True


class HeldOutEvaluation(BaseCallback):
    """Every ``every`` env steps: save the actor as a BC checkpoint and score it on held-out towns.

    Uses the evaluation harness (:func:`agents.evaluate.evaluate` with a
    :class:`~agents.bc.BCAgent`), so the numbers are the ones ``gta5drive eval`` reports.
    """

    def __init__(
        self, *, config: FinetuneConfig, preprocessing: Preprocessing, base: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.config = config
        self.preprocessing = preprocessing
        self.base = dict(base)
        self.out = Path(config.out)
        self.last = -1
        self.history: list[dict[str, Any]] = []
        self.checkpoints: list[Path] = []

    def evaluate_now(self) -> dict[str, float]:
        """Score the current actor; returns ``eval/…`` metrics."""
        from agents.bc import BCAgent
        from agents.evaluate import EvalConfig, evaluate

        policy = BCPolicy(
            model=export_driving_model(self.model.policy),  # type: ignore[arg-type]
            preprocessing=self.preprocessing,
            device="cpu",
        )
        route_m = self.config.eval_route_m
        cfg = EvalConfig(
            protocol=self.config.eval_protocol,
            seeds=self.config.eval_seeds,
            route_m=route_m,
            intersections=int(min(6, route_m // 300)),
            env_kwargs=dict(self.config.env_kwargs),
        )
        report = evaluate(
            {"bc+rl": lambda env, seed: BCAgent(policy, name="bc+rl")},
            config=cfg,
            progress=False,
        )
        return {f"eval/{k}": float(v) for k, v in report.total("bc+rl").items()}

    def run(self) -> None:
        """Evaluate, log, checkpoint."""
        step = int(self.num_timesteps)
        t0 = time.perf_counter()
        metrics = self.evaluate_now()
        metrics["eval/wall_s"] = time.perf_counter() - t0
        for key, value in metrics.items():
            self.logger.record(key, value)
        self.logger.dump(step)
        row = {"env_steps": step, **metrics}
        self.history.append(row)
        with open(self.out / "eval.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        path = save_finetuned(
            self.model.policy,
            self.out / "checkpoints" / f"step-{step:08d}",
            step=step,
            config=self.config,
            base=self.base,
            metrics=metrics,
        )
        self.checkpoints.append(path)
        self.last = step

    def _on_training_start(self) -> None:
        self.run()  # step 0: the BC model itself

    def _on_step(self) -> bool:
        every = self.config.eval_every
        if every and self.num_timesteps - self.last >= every:
            self.run()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self.last:
            self.run()


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced."""

    checkpoint: Path
    evaluations: list[dict[str, Any]]
    wall_s: float
    env_steps: int


def algo_kwargs(config: FinetuneConfig) -> dict[str, Any]:
    """Keyword arguments of the SB3 algorithm for a config."""
    common: dict[str, Any] = {
        "learning_rate": config.lr,
        "batch_size": config.batch_size,
        "gamma": config.gamma,
        "seed": config.seed,
        "device": config.device,
        "verbose": 0,
        "tensorboard_log": str(Path(config.out) / "tensorboard"),
    }
    if config.algo == "ppo":
        return {
            **common,
            "n_steps": config.n_steps,
            "n_epochs": config.n_epochs,
            "clip_range": config.clip_range,
            "target_kl": config.target_kl,
        }
    return {
        **common,
        "buffer_size": config.buffer_size,
        "learning_starts": min(1000, max(config.batch_size, config.steps // 10)),
    }


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Run RL fine-tuning from a BC checkpoint; see the module docstring.

    Returns:
        the final checkpoint (loadable by ``BCPolicy.load`` / ``gta5drive eval``) and the
        evaluations (the first is the BC model itself).
    """
    ckpt = load_checkpoint(config.checkpoint)
    base = {"path": str(ckpt.path), "step": ckpt.step}
    model = ckpt.build_model("cpu")
    check_convertible(model.config)
    preprocessing = Preprocessing.from_dict(ckpt.meta["preprocessing"])
    out = Path(config.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "finetune_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    venv = make_vec_env(config, preprocessing)
    t0 = time.perf_counter()
    try:
        agent = bc_to_sb3(
            model,
            venv,
            algo=config.algo,
            policy_kwargs={"log_std_init": config.log_std_init},
            **algo_kwargs(config),
        )
        evaluation = HeldOutEvaluation(config=config, preprocessing=preprocessing, base=base)
        agent.learn(
            total_timesteps=config.steps,
            callback=[CriticWarmup(config.warmup), evaluation],
            tb_log_name=config.algo,
            progress_bar=config.progress,
        )
    finally:
        venv.close()
    return FinetuneResult(
        checkpoint=evaluation.checkpoints[-1],
        evaluations=evaluation.history,
        wall_s=time.perf_counter() - t0,
        env_steps=int(agent.num_timesteps),
    )


def load_rl_policy_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The whole SB3 policy state (critics included) kept in a fine-tuned checkpoint."""
    ckpt = load_checkpoint(path)
    prefix = "rl_policy."
    return {k[len(prefix) :]: v for k, v in ckpt.extra.items() if k.startswith(prefix)}


__all__ = [
    "CriticWarmup",
    "FinetuneConfig",
    "FinetuneResult",
    "HeldOutEvaluation",
    "TrainTowns",
    "algo_kwargs",
    "finetune",
    "load_rl_policy_state",
    "make_training_env",
    "make_vec_env",
    "save_finetuned",
]
