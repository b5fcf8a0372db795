"""PPO on `GTA5Drive-v0` in one file, CleanRL style (no Stable-Baselines3).

Shows that the env's Gymnasium contract holds outside SB3: the env is made by its string id,
vectorised with Gymnasium's own ``SyncVectorEnv``, and trained by a loop readable top to
bottom (after CleanRL's ``ppo_continuous_action.py``). Metrics are ``charts/…`` and
``losses/…`` in TensorBoard::

    python -m agents.rl.cleanrl_ppo --total-timesteps 100000 --num-envs 2
    python -m agents.rl.cleanrl_ppo --batched --num-envs 64   # one batched env of 64 towns
    tensorboard --logdir runs/cleanrl

The agent is a small CNN over the hood camera plus the purpose vector and speed, with a
Gaussian policy head (state-independent log std) and a value head.

Episode boundaries follow CleanRL's Gymnasium 1.x port: the vector env resets an env in the
same step that ends its episode (``autoreset_mode=SAME_STEP``), so every stored transition is
a real one (Gymnasium's default, NEXT_STEP, would spend the next step on the reset: a stored
transition with reward 0 and an ignored action, bootstrapped across the boundary by this GAE);
a truncated episode's return is bootstrapped from the value of ``infos["final_obs"]``.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from agents.flags import add_config_flags, config_from_args

ENV_ID = "gta_env:GTA5Drive-v0"


@dataclass
class Args:
    """Everything the run needs (each field is a ``--flag``, see :mod:`agents.flags`).

    Attributes:
        seed: seed of the envs and of torch.
        total_timesteps: env steps in total, all envs together.
        num_envs: parallel envs.
        num_steps: rollout length per env.
        learning_rate: Adam learning rate (annealed linearly to 0).
        gamma: discount.
        gae_lambda: GAE lambda.
        num_minibatches: minibatches per update epoch.
        update_epochs: epochs per rollout.
        clip_coef: PPO clip range.
        ent_coef: entropy bonus.
        vf_coef: value loss weight.
        max_grad_norm: gradient-norm clip.
        hood_size: hood camera HEIGHTxWIDTH (small for speed).
        max_episode_steps: time limit of an episode.
        out: run folder (TensorBoard).
        cuda: train on CUDA when available.
        batched: all ``num_envs`` towns in this process as one batched
            `gta_env.vector.GTA5DriveVectorEnv` (one render pass per step) instead of a
            ``SyncVectorEnv`` of single envs; the same observations, faster.
    """

    seed: int = 1
    total_timesteps: int = 100_000
    num_envs: int = 2
    num_steps: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hood_size: tuple[int, int] = (45, 80)
    max_episode_steps: int = 1000
    out: str = "runs/cleanrl"
    cuda: bool = False
    batched: bool = False


def make_env(args: Args, idx: int) -> gym.Env:
    """One env by string id (importing ``gta_env`` through the id), smaller hood for speed."""
    env = gym.make(
        ENV_ID, backend="sim", hood_size=args.hood_size, max_episode_steps=args.max_episode_steps
    )
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env.action_space.seed(args.seed + idx)
    return env


def layer_init(layer: nn.Module, std: float = float(np.sqrt(2)), bias: float = 0.0) -> nn.Module:
    nn.init.orthogonal_(layer.weight, std)  # type: ignore[arg-type]
    nn.init.constant_(layer.bias, bias)  # type: ignore[arg-type]
    return layer


class Agent(nn.Module):
    """CNN over the hood + purpose + speed; actor mean, log std, critic."""

    def __init__(self, obs_space: gym.spaces.Dict, action_dim: int) -> None:
        super().__init__()
        h, w, c = obs_space["hood"].shape  # type: ignore[misc]
        self.cnn = nn.Sequential(
            layer_init(nn.Conv2d(c, 16, 5, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(16, 32, 3, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 32, 3, stride=2)),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((2, 4)),
            nn.Flatten(),
        )
        width = 32 * 8 + 3 + 1
        self.critic = nn.Sequential(
            layer_init(nn.Linear(width, 128)), nn.Tanh(), layer_init(nn.Linear(128, 1), std=1.0)
        )
        self.actor_mean = nn.Sequential(
            layer_init(nn.Linear(width, 128)),
            nn.Tanh(),
            layer_init(nn.Linear(128, action_dim), std=0.01),
        )
        self.actor_logstd = nn.Parameter(torch.full((1, action_dim), -0.5))

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        hood = obs["hood"].permute(0, 3, 1, 2).float() / 255.0
        speed = obs["speed"].float().view(-1, 1) / 30.0
        return torch.cat([self.cnn(hood), obs["purpose"].float(), speed], dim=1)

    def get_value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.features(obs))

    def get_action_and_value(
        self, obs: dict[str, torch.Tensor], action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.features(obs)
        mean = self.actor_mean(x)
        dist = Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(1), dist.entropy().sum(1), self.critic(x)


def to_tensors(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in obs.items()}


def make_envs(
    args: Args, env_fns: Sequence[Callable[[], gym.Env]] | None = None
) -> gym.vector.VectorEnv:
    """``num_envs`` envs (default :func:`make_env`; with ``args.batched`` one batched env of
    ``num_envs`` towns) that reset in the step that ends an episode."""
    if args.batched and env_fns is None:
        envs = gym.make_vec(
            ENV_ID,
            num_envs=args.num_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode="same_step",
            backend="sim",
            hood_size=args.hood_size,
            max_episode_steps=args.max_episode_steps,
        )
        envs.action_space.seed(args.seed)
        return gym.wrappers.vector.RecordEpisodeStatistics(envs)
    fns = (
        list(env_fns)
        if env_fns is not None
        else [functools.partial(make_env, args, i) for i in range(args.num_envs)]
    )
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


@dataclass
class Rollout:
    """``num_steps`` steps of every env: what one PPO update trains on.

    Step ``t`` of env ``i`` is one real transition: ``obs[k][t, i]`` was seen, ``actions[t, i]``
    taken, ``rewards[t, i]`` earned (plus ``gamma * V(final obs)`` when that step truncated the
    episode). ``dones[t, i]`` is 1 when ``obs[t, i]`` is the first observation of an episode
    (the step before ended one), so GAE never carries a value across it.
    """

    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    values: torch.Tensor

    @classmethod
    def zeros(cls, num_steps: int, envs: gym.vector.VectorEnv, device: torch.device) -> Rollout:
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        assert isinstance(obs_space, gym.spaces.Dict) and isinstance(act_space, gym.spaces.Box)
        n = envs.num_envs
        return cls(
            obs={
                k: torch.zeros((num_steps, n, *s.shape), dtype=torch.float32, device=device)  # type: ignore[misc]
                for k, s in obs_space.spaces.items()
            },
            actions=torch.zeros((num_steps, n, *act_space.shape), device=device),
            logprobs=torch.zeros((num_steps, n), device=device),
            rewards=torch.zeros((num_steps, n), device=device),
            dones=torch.zeros((num_steps, n), device=device),
            values=torch.zeros((num_steps, n), device=device),
        )


def _final_values(
    agent: Agent, infos: dict, truncated: np.ndarray, device: torch.device
) -> dict[int, float]:
    """V(final obs) of the envs whose episode was truncated this step (to bootstrap from)."""
    final_obs = infos.get("final_obs")
    if final_obs is None or not truncated.any():
        return {}
    idx = [int(i) for i in np.flatnonzero(truncated)]
    batch = {k: np.stack([final_obs[i][k] for i in idx]) for k in final_obs[idx[0]]}
    with torch.no_grad():
        values = agent.get_value(to_tensors(batch, device)).view(-1)
    return dict(zip(idx, values.tolist(), strict=True))


def train(
    args: Args,
    *,
    env_fns: Sequence[Callable[[], gym.Env]] | None = None,
    on_rollout: Callable[[Rollout], None] | None = None,
) -> dict[str, float]:
    """Run PPO; returns the last logged charts/losses.

    Args:
        args: The run's settings.
        env_fns: Env factories (default: ``num_envs`` of :func:`make_env`).
        on_rollout: Called with each rollout before the update trains on it (for tests and
            inspection).
    """
    from torch.utils.tensorboard import SummaryWriter

    envs = make_envs(args, env_fns)
    num_envs = envs.num_envs
    batch_size = num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = max(1, args.total_timesteps // batch_size)
    writer = SummaryWriter(str(Path(args.out) / f"ppo_s{args.seed}_{int(time.time())}"))
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

    obs_space = envs.single_observation_space
    act_space = envs.single_action_space
    assert isinstance(obs_space, gym.spaces.Dict) and isinstance(act_space, gym.spaces.Box)
    agent = Agent(obs_space, int(np.prod(act_space.shape))).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    ro = Rollout.zeros(args.num_steps, envs, device)

    global_step, start = 0, time.time()
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = to_tensors(next_obs_np, device)
    next_done = torch.zeros(num_envs).to(device)
    logged: dict[str, float] = {}
    v_loss = pg_loss = entropy_loss = approx_kl = torch.zeros(())
    low, high = act_space.low, act_space.high

    for iteration in range(1, num_iterations + 1):
        optimizer.param_groups[0]["lr"] = args.learning_rate * (
            1.0 - (iteration - 1.0) / num_iterations
        )
        for step in range(args.num_steps):
            global_step += num_envs
            for k in ro.obs:
                ro.obs[k][step] = next_obs[k].float()
            ro.dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                ro.values[step] = value.flatten()
            ro.actions[step], ro.logprobs[step] = action, logprob
            next_obs_np, reward, term, trunc, infos = envs.step(
                np.clip(action.cpu().numpy(), low, high)
            )
            reward = np.asarray(reward, np.float64).copy()
            # A time limit is not a terminal state: bootstrap the cut-off return from V(final).
            for i, v in _final_values(agent, infos, trunc & ~term, device).items():
                reward[i] += args.gamma * v
            next_done = torch.as_tensor(np.logical_or(term, trunc), dtype=torch.float32).to(device)
            ro.rewards[step] = torch.as_tensor(reward, dtype=torch.float32).to(device).view(-1)
            next_obs = to_tensors(next_obs_np, device)
            # Single envs' RecordEpisodeStatistics reports in final_info, the vector one in info.
            final_info = infos.get("final_info", {})
            stats = final_info if "episode" in final_info else infos
            if "episode" in stats:
                for j in np.flatnonzero(stats.get("_episode", [])):
                    r, length = stats["episode"]["r"][j], stats["episode"]["l"][j]
                    logged["charts/episodic_return"] = float(r)
                    logged["charts/episodic_length"] = float(length)
                    writer.add_scalar("charts/episodic_return", r, global_step)
                    writer.add_scalar("charts/episodic_length", length, global_step)
        if on_rollout is not None:
            on_rollout(ro)

        with torch.no_grad():  # generalised advantage estimation
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(ro.rewards).to(device)
            lastgaelam = torch.zeros(num_envs).to(device)
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal, nextvalues = 1.0 - next_done, next_value
                else:
                    nextnonterminal, nextvalues = 1.0 - ro.dones[t + 1], ro.values[t + 1]
                delta = ro.rewards[t] + args.gamma * nextvalues * nextnonterminal - ro.values[t]
                lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                advantages[t] = lastgaelam
            returns = advantages + ro.values

        b_obs = {k: v.reshape((-1, *v.shape[2:])) for k, v in ro.obs.items()}
        b_logprobs, b_actions = ro.logprobs.reshape(-1), ro.actions.reshape((-1, *act_space.shape))
        b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)
        b_values = ro.values.reshape(-1)
        b_inds = np.arange(batch_size)
        clipfracs = []
        for _epoch in range(args.update_epochs):
            rng.shuffle(b_inds)
            for begin in range(0, batch_size, minibatch_size):
                mb = b_inds[begin : begin + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    {k: v[mb] for k, v in b_obs.items()}, b_actions[mb]
                )
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
                mb_adv = b_advantages[mb]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio,
                    -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef),
                ).mean()
                v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb]) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        var_y = float(b_returns.var())
        explained = float("nan") if var_y == 0 else 1 - float((b_returns - b_values).var()) / var_y
        sps = int(global_step / (time.time() - start))
        logged.update(
            {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "losses/value_loss": v_loss.item(),
                "losses/policy_loss": pg_loss.item(),
                "losses/entropy": entropy_loss.item(),
                "losses/approx_kl": approx_kl.item(),
                "losses/clipfrac": float(np.mean(clipfracs)),
                "losses/explained_variance": explained,
                "charts/SPS": float(sps),
            }
        )
        for key, scalar in logged.items():
            writer.add_scalar(key, scalar, global_step)
        print(f"step {global_step}  SPS {sps}  value loss {v_loss.item():.3f}", flush=True)
    envs.close()
    writer.close()
    return logged


def parse_args(argv: list[str] | None = None) -> Args:
    """:class:`Args` from the command line (one ``--flag`` per field)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_flags(parser, Args)
    return config_from_args(parser.parse_args(argv), Args)


if __name__ == "__main__":
    train(parse_args())
