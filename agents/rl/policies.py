"""Stable-Baselines3 policies whose networks are a behaviour-cloning model's.

A :class:`~imitation.models.DrivingModel` is backbone → (purpose, speed) → common dense layer →
one head per output (three dense layers, then ``tanh``). The SB3 side reuses those pieces:

* :class:`DrivingFeaturesExtractor`: hood CNN + purpose + speed + the common dense layer, for the
  ``Dict`` observation (initialisable from a BC checkpoint's weights);
* :class:`BCHeads`: the output heads' hidden layers side by side (:class:`HeadsLatent`) and their
  last layers as one block-diagonal layer (:class:`BlockDiagonalLinear`), so an RL-trained actor
  maps back onto per-output heads exactly;
* :class:`BCActorCriticPolicy` (PPO/A2C): the Gaussian's mean is ``tanh(heads(features))``, the
  BC model's output itself, so the deterministic action *is* the BC action;
* :class:`BCSACPolicy` (SAC): the squashed Gaussian's pre-``tanh`` mean is the heads' last layer,
  so the deterministic action ``tanh(mu)`` is again the BC action.

The critics get their own copy of the BC features extractor (a value function starting from
driving features learns faster than one from random convolutions) and a fresh MLP.
:func:`bc_to_sb3` builds an algorithm from a checkpoint; :func:`export_driving_model` turns the
(fine-tuned) actor back into a ``DrivingModel`` that saves and loads like any BC checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, cast

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from imitation.checkpoint import load_checkpoint
from imitation.models import DrivingModel, ModelConfig, model_from_config, without_pretrained

try:
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.sac.policies import Actor, SACPolicy
except ImportError as exc:  # pragma: no cover - depends on the machine
    from gymnasium.error import DependencyNotInstalled

    raise DependencyNotInstalled(
        'RL fine-tuning needs Stable-Baselines3: pip install "gta5drive[rl]"'
    ) from exc

Algo = Literal["ppo", "sac"]


def check_convertible(config: ModelConfig) -> None:
    """Raise ``ValueError`` unless an RL policy can be built from a model of this config.

    The SB3 policies read the hood camera (any size, greyscale, stacked frames), purpose and
    speed, and act through ``tanh`` outputs. A dual backbone, the history LSTM and class/delta
    outputs would need recurrent or discrete-action policies; a target-speed head
    (``speed_target``) is not an action at all until the speed controller has made a pedal of it.
    """
    problems = []
    if config.cinematic_size is not None:
        problems.append("a second camera (dual backbone)")
    if config.history:
        problems.append("a history input")
    bad = [o.name for o in config.outputs if o.kind != "regression"]
    if bad:
        problems.append(f"non-regression outputs {bad}")
    if config.speed_target:
        problems.append("a target-speed output (a controller makes its pedal)")
    if problems:
        raise ValueError(
            "RL fine-tuning needs a model of hood + purpose + speed with regression (tanh) "
            f"outputs; this one has {', '.join(problems)}. Train a BC model with "
            "--outputs regression,regression and no --history/--cinematic/speed target to "
            "fine-tune it."
        )


class DrivingFeaturesExtractor(BaseFeaturesExtractor):
    """Hood CNN + purpose + speed + common dense layer of a driving model, for SB3.

    Accepts the hood channels-first (as SB3 transposes image observations) or channels-last,
    as float or uint8 pixel values in [0, 255] (policies here set ``normalize_images=False``
    and normalise with the backbone's own mean and std, exactly as the BC model does).

    Args:
        observation_space: the (possibly transposed) ``Dict`` observation space.
        model_config: the driving model's config (or its dict form).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, observation_space: gym.spaces.Dict, model_config: ModelConfig | Mapping[str, Any]
    ) -> None:
        config = _config(model_config)
        check_convertible(config)
        super().__init__(observation_space, features_dim=config.dense)
        model = model_from_config(without_pretrained(config))
        self.config = config
        self.in_chans = model.in_chans
        self.hood = model.hood
        self.measure = model.measure
        self.common = model.common
        self.register_buffer("mean", model.mean.clone(), persistent=False)
        self.register_buffer("std", model.std.clone(), persistent=False)
        shape = observation_space["hood"].shape
        assert shape is not None
        self.channels_first = shape[0] == self.in_chans and shape[-1] != self.in_chans
        want = (self.in_chans, *config.image_size)
        got = tuple(shape) if self.channels_first else (shape[-1], *shape[:2])
        if got != want:
            raise ValueError(
                f"hood observations are {tuple(shape)}, the model wants {config.image_size} with "
                f"{self.in_chans} channels; wrap the env with the checkpoint's preprocessing "
                "(BCPolicy.wrap_env / Preprocessing.wrap)"
            )

    def load_from(self, model: DrivingModel) -> None:
        """Copy the backbone, measurement encoder and common layer of a BC model."""
        self.hood.load_state_dict(model.hood.state_dict())
        if self.measure is not None and model.measure is not None:
            self.measure.load_state_dict(model.measure.state_dict())
        self.common.load_state_dict(model.common.state_dict())

    def forward(self, observations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = observations["hood"]
        if not self.channels_first:
            x = x.permute(0, 3, 1, 2)
        x = (x.to(self.mean.dtype) / 255.0 - self.mean) / self.std
        parts = [self.hood(x)]
        measured = []
        if self.config.purpose:
            measured.append(observations["purpose"].float())
        if self.config.speed:
            measured.append(observations["speed"].float().view(-1, 1) / self.config.speed_scale)
        if self.measure is not None:
            parts.append(self.measure(torch.cat(measured, dim=1)))
        else:
            parts += measured
        dtype = parts[0].dtype
        return self.common(torch.cat([p.to(dtype) for p in parts], dim=1))


class BlockDiagonalLinear(nn.Module):
    """A linear layer whose weight is block-diagonal: output ``i`` sees only input block ``i``.

    Keeps the per-output heads separable after RL, so the actor maps back onto them exactly.

    Args:
        in_sizes: width of each input block.
        out_sizes: width of each output block.
    """

    mask: torch.Tensor

    def __init__(self, in_sizes: Sequence[int], out_sizes: Sequence[int]) -> None:
        super().__init__()
        self.in_sizes, self.out_sizes = list(in_sizes), list(out_sizes)
        self.weight = nn.Parameter(torch.zeros(sum(out_sizes), sum(in_sizes)))
        self.bias = nn.Parameter(torch.zeros(sum(out_sizes)))
        mask = torch.zeros_like(self.weight)
        for (r0, r1), (c0, c1) in zip(self._rows(), self._cols(), strict=True):
            mask[r0:r1, c0:c1] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def _spans(self, sizes: Sequence[int]) -> list[tuple[int, int]]:
        out, start = [], 0
        for size in sizes:
            out.append((start, start + size))
            start += size
        return out

    def _rows(self) -> list[tuple[int, int]]:
        return self._spans(self.out_sizes)

    def _cols(self) -> list[tuple[int, int]]:
        return self._spans(self.in_sizes)

    def blocks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of each block (views)."""
        return [
            (self.weight[r0:r1, c0:c1], self.bias[r0:r1])
            for (r0, r1), (c0, c1) in zip(self._rows(), self._cols(), strict=True)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def _head_net(model: DrivingModel, name: str) -> nn.Sequential:
    return cast(nn.Sequential, model.heads[name].net)


def _last_linear(net: nn.Sequential) -> nn.Linear:
    return cast(nn.Linear, net[-1])


class HeadsLatent(nn.Module):
    """The hidden layers of every output head, run side by side and concatenated."""

    def __init__(self, model: DrivingModel) -> None:
        super().__init__()
        self.names = list(model.heads)
        self.hidden = nn.ModuleList(
            [nn.Sequential(*list(_head_net(model, n))[:-1]) for n in self.names]
        )
        self.widths = [_last_linear(_head_net(model, n)).in_features for n in self.names]

    @property
    def latent_dim(self) -> int:
        return sum(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([h(x) for h in self.hidden], dim=1)


class BCHeads(nn.Module):
    """A BC model's output heads as latent + block-diagonal output layer (pre-``tanh``).

    Args:
        config: the driving model's config.
    """

    def __init__(self, config: ModelConfig | Mapping[str, Any]) -> None:
        super().__init__()
        model = model_from_config(without_pretrained(_config(config)))
        self.latent = HeadsLatent(model)
        self.out = BlockDiagonalLinear(self.latent.widths, [1] * len(self.latent.widths))
        self.load_from(model)

    def load_from(self, model: DrivingModel) -> None:
        """Copy the heads of a BC model."""
        with torch.no_grad():
            for i, name in enumerate(self.latent.names):
                head = _head_net(model, name)
                self.latent.hidden[i].load_state_dict(nn.Sequential(*list(head)[:-1]).state_dict())
                w, b = self.out.blocks()[i]
                w.copy_(_last_linear(head).weight)
                b.copy_(_last_linear(head).bias)

    def export_to(self, model: DrivingModel) -> None:
        """Write these heads into a BC model's heads."""
        with torch.no_grad():
            for i, name in enumerate(self.latent.names):
                head = _head_net(model, name)
                nn.Sequential(*list(head)[:-1]).load_state_dict(self.latent.hidden[i].state_dict())
                w, b = self.out.blocks()[i]
                _last_linear(head).weight.copy_(w)
                _last_linear(head).bias.copy_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.latent(x))


class BCMlpExtractor(nn.Module):
    """SB3's ``mlp_extractor`` for PPO: actor latent = BC action (``tanh(heads)``); critic = MLP."""

    def __init__(
        self, config: ModelConfig, features_dim: int, value_layers: Sequence[int] = (256, 256)
    ) -> None:
        super().__init__()
        self.policy_net = BCHeads(config)
        layers: list[nn.Module] = []
        width = features_dim
        for w in value_layers:
            layers += [nn.Linear(width, w), nn.Tanh()]
            width = w
        self.value_net = nn.Sequential(*layers)
        self.latent_dim_pi = config.action_size
        self.latent_dim_vf = width

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy_net(features))

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_net(features)


def _config(config: ModelConfig | Mapping[str, Any]) -> ModelConfig:
    return config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)


class BCActorCriticPolicy(ActorCriticPolicy):
    """PPO/A2C policy whose Gaussian mean is a BC model's action (see the module docstring).

    Args:
        model_config: the driving model's config (dict form is fine: SB3 keeps kwargs).
        value_layers: hidden widths of the critic MLP on top of its features extractor.
        log_std_init: initial log standard deviation of the exploration noise (−1.6 ≈ 0.2:
            small, so that the first rollouts still drive like BC).
        *args, **kwargs: as :class:`~stable_baselines3.common.policies.ActorCriticPolicy`.
    """

    def __init__(
        self,
        *args: Any,
        model_config: ModelConfig | Mapping[str, Any],
        value_layers: Sequence[int] = (256, 256),
        log_std_init: float = -1.6,
        **kwargs: Any,
    ) -> None:
        self.model_config = _config(model_config)
        self.value_layers = tuple(value_layers)
        kwargs.setdefault("features_extractor_class", DrivingFeaturesExtractor)
        kwargs["features_extractor_kwargs"] = {"model_config": self.model_config.to_dict()}
        kwargs.setdefault("share_features_extractor", False)
        kwargs.setdefault("normalize_images", False)
        kwargs["log_std_init"] = log_std_init
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = BCMlpExtractor(  # type: ignore[assignment]
            self.model_config, self.features_dim, self.value_layers
        )

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # The mean comes out of the BC heads already; no extra linear layer on top.
        self.action_net = nn.Identity()
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(model_config=self.model_config.to_dict(), value_layers=self.value_layers)
        return data

    def actor_modules(self) -> list[nn.Module]:
        """Modules that decide the action (frozen during the critic warm-up)."""
        return [self.pi_features_extractor, self.mlp_extractor.policy_net]

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters that decide the action, exploration noise included."""
        params = [p for m in self.actor_modules() for p in m.parameters()]
        return [*params, self.log_std]

    def load_bc(self, model: DrivingModel) -> None:
        """Initialise actor and critic features from a BC model."""
        self.pi_features_extractor.load_from(model)  # type: ignore[operator]
        self.vf_features_extractor.load_from(model)  # type: ignore[operator]
        self.mlp_extractor.policy_net.load_from(model)  # type: ignore[operator]

    def export_to(self, model: DrivingModel) -> None:
        """Write the actor into a BC model (its deterministic action)."""
        _export_extractor(self.pi_features_extractor, model)
        self.mlp_extractor.policy_net.export_to(model)  # type: ignore[operator]


class BCActor(Actor):
    """SAC actor whose pre-``tanh`` mean is a BC model's heads (see the module docstring)."""

    def __init__(
        self, *args: Any, model_config: ModelConfig | Mapping[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        heads = BCHeads(model_config)
        self.heads = heads
        self.latent_pi = heads.latent  # type: ignore[assignment]
        self.mu = heads.out
        log_std = nn.Linear(heads.latent.latent_dim, len(heads.latent.widths))
        nn.init.zeros_(log_std.weight)
        nn.init.constant_(log_std.bias, float(kwargs.get("log_std_init", -1.6)))
        self.log_std = log_std  # type: ignore[assignment]


class BCSACPolicy(SACPolicy):
    """SAC policy built on a BC model (actor as :class:`BCActor`, critics on BC features).

    Args:
        model_config: the driving model's config.
        log_std_init: initial log standard deviation (before ``tanh``) of the exploration noise.
        *args, **kwargs: as :class:`~stable_baselines3.sac.policies.SACPolicy`.
    """

    def __init__(
        self,
        *args: Any,
        model_config: ModelConfig | Mapping[str, Any],
        log_std_init: float = -1.6,
        **kwargs: Any,
    ) -> None:
        self.model_config = _config(model_config)
        kwargs.setdefault("features_extractor_class", DrivingFeaturesExtractor)
        kwargs["features_extractor_kwargs"] = {"model_config": self.model_config.to_dict()}
        kwargs.setdefault("normalize_images", False)
        kwargs["log_std_init"] = log_std_init
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return BCActor(**actor_kwargs, model_config=self.model_config).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(model_config=self.model_config.to_dict())
        return data

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters that decide the action."""
        return list(self.actor.parameters())

    def load_bc(self, model: DrivingModel) -> None:
        """Initialise the actor and the critics' features from a BC model."""
        for extractor in (
            self.actor.features_extractor,
            self.critic.features_extractor,
            self.critic_target.features_extractor,
        ):
            cast(DrivingFeaturesExtractor, extractor).load_from(model)
        cast(BCHeads, self.actor.heads).load_from(model)

    def export_to(self, model: DrivingModel) -> None:
        """Write the actor into a BC model (its deterministic action)."""
        _export_extractor(self.actor.features_extractor, model)
        cast(BCHeads, self.actor.heads).export_to(model)


def _export_extractor(extractor: nn.Module, model: DrivingModel) -> None:
    assert isinstance(extractor, DrivingFeaturesExtractor)
    model.hood.load_state_dict(extractor.hood.state_dict())
    if model.measure is not None and extractor.measure is not None:
        model.measure.load_state_dict(extractor.measure.state_dict())
    model.common.load_state_dict(extractor.common.state_dict())


def export_driving_model(policy: BCActorCriticPolicy | BCSACPolicy) -> DrivingModel:
    """The policy's actor as a :class:`DrivingModel` (CPU, eval mode), for BC checkpoints."""
    model = model_from_config(replace(policy.model_config, pretrained=None))
    policy.export_to(model)
    return model.eval()


def bc_to_sb3(
    checkpoint: str | os.PathLike[str] | DrivingModel,
    env: Any,
    *,
    algo: Algo = "ppo",
    policy_kwargs: Mapping[str, Any] | None = None,
    **algo_kwargs: Any,
) -> Any:
    """An SB3 algorithm whose actor starts as a BC checkpoint.

    Args:
        checkpoint: BC checkpoint file, run folder, or a loaded model.
        env: env or vectorised env whose observations are the model's inputs (wrap with the
            checkpoint's preprocessing: ``BCPolicy.wrap_env``).
        algo: ``"ppo"`` or ``"sac"``.
        policy_kwargs: more policy arguments (``log_std_init``, ``value_layers`` for PPO, …).
        **algo_kwargs: algorithm arguments (``learning_rate``, ``n_steps``, ``device``, …).

    Returns:
        a ``PPO`` or ``SAC`` whose deterministic actions equal the BC model's.
    """
    from stable_baselines3 import PPO, SAC

    if isinstance(checkpoint, DrivingModel):
        model = checkpoint
    else:
        model = load_checkpoint(checkpoint).build_model("cpu")
    config = without_pretrained(model.config)
    check_convertible(config)
    kwargs = {"model_config": config.to_dict(), **dict(policy_kwargs or {})}
    agent: Any
    if algo == "ppo":
        agent = PPO(BCActorCriticPolicy, env, policy_kwargs=kwargs, **algo_kwargs)
    elif algo == "sac":
        agent = SAC(BCSACPolicy, env, policy_kwargs=kwargs, **algo_kwargs)
    else:
        raise ValueError(f"algo must be 'ppo' or 'sac', got {algo!r}")
    device = agent.policy.device
    agent.policy.load_bc(model.to("cpu"))
    agent.policy.to(device)
    if algo == "sac":
        # The target critics start as copies of the (BC-initialised) critics.
        agent.policy.critic_target.load_state_dict(agent.policy.critic.state_dict())
    return agent


__all__ = [
    "BCActor",
    "BCActorCriticPolicy",
    "BCHeads",
    "BCMlpExtractor",
    "BCSACPolicy",
    "BlockDiagonalLinear",
    "DrivingFeaturesExtractor",
    "HeadsLatent",
    "bc_to_sb3",
    "check_convertible",
    "export_driving_model",
]
