"""Driving models by name: a backbone (built-in or timm), optional extra inputs, heads.

``build_model("pilotnet", image_size=(90, 160))`` returns a :class:`DrivingModel`. The name picks
the backbone: a built-in (:data:`~imitation.models.cnn.BUILTIN_BACKBONES`) or any timm model
(``xception41``, ``inception_resnet_v2``, ``regnety_032``, ``efficientnet_b0``, …) when the timm
extra is installed. Everything else is a :class:`ModelConfig` field.

Inputs (a dict of tensors, as the wrapped env observes them, batched):

* ``hood``: uint8 ``(B, H, W, C)``; C = 3 (or 1 greyscale) × stacked frames. Scaling to [0, 1]
  and the backbone's normalisation happen inside the model, so callers pass raw frames.
* ``cinematic``: same for the second camera, through a second backbone (dual backbone).
* ``purpose`` ``(B, 3)``, ``speed`` ``(B, 1)`` (m/s), ``history`` ``(B, N, A + 4)``,
  ``prev_action`` ``(B, A)`` (needed by delta outputs).

The forward pass returns raw outputs by name; :meth:`DrivingModel.decode` turns them into actions
and :meth:`DrivingModel.loss` scores them against labels.

An optional **auxiliary head** (``ModelConfig.light_head`` > 0) classifies the traffic light ahead
from the hood camera's features alone (:data:`~imitation.sample.LIGHT_CLASSES`, trained on the
samples' ``light`` label): a training signal that makes the encoder read a signal head a few
pixels wide, which the driving loss alone hardly rewards (one lamp's colour decides "wait" or
"go" in a few percent of the frames). Its logits are ``raw["aux_light"]``; nothing at inference
uses them, and the model never gets the label as an input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imitation.models.cnn import BUILTIN_BACKBONES, Backbone
from imitation.models.heads import OutputHead, OutputSpec, head_widths
from imitation.models.history import HistoryEncoder
from imitation.models.speed import SpeedControl, unscale_target
from imitation.models.timm_backbone import (
    SUGGESTED_TIMM_BACKBONES,
    TimmBackbone,
    load_local_weights,
)
from imitation.sample import LIGHT_CLASSES, LIGHT_UNKNOWN
from wrappers.preprocessing import Preprocessing

__all__ = [
    "AUX_LIGHT",
    "ModelConfig",
    "DrivingModel",
    "OutputSpec",
    "as_model_inputs",
    "build_model",
    "build_backbone",
    "list_models",
    "default_outputs",
    "head_widths",
]

ACTION_NAMES = ("throttle_brake", "steering")
AUX_LIGHT = "aux_light"
"""Key of the auxiliary light head's logits in the forward output."""


def default_outputs(kinds: Sequence[str] = ("regression", "regression")) -> tuple[OutputSpec, ...]:
    """Outputs ``throttle_brake`` and ``steering`` with the given kinds."""
    if len(kinds) != len(ACTION_NAMES):
        raise ValueError(f"give one kind per output {ACTION_NAMES}, got {list(kinds)}")
    return tuple(OutputSpec(name=n, kind=k) for n, k in zip(ACTION_NAMES, kinds, strict=True))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Everything that defines a driving model's architecture and inputs.

    Attributes:
        backbone: backbone name (built-in or timm).
        image_size: (height, width) of the hood input.
        cinematic_size: (height, width) of the second camera; ``None`` = single backbone.
        greyscale: one luma channel per frame instead of RGB.
        frame_stack: camera frames stacked on the channel axis.
        purpose: feed the purpose vector.
        speed: feed the speed.
        history: rows of (action, speed, purpose) history through dense layers + LSTM (0 = off;
            the original used 60).
        outputs: one :class:`OutputSpec` per action component, in action order.
        dense: width of the common dense layer (heads are ÷ 4 per layer).
        head_layers: dense layers per head.
        dropout: dropout in the dense layers.
        pretrained: local ``.safetensors`` file with backbone weights, or ``None``.
        speed_scale: speed (m/s) that maps to 1 at the input.
        measurements: width of a measurement encoder (two dense layers) that the purpose and
            speed pass through before they join the image features, as in conditional imitation
            learning; 0 concatenates them raw. A raw speed is one input among hundreds of image
            features and is easily ignored; encoded, it weighs as much as the picture, so the
            model can tell a standing start from a slow-down.
        light_head: weight of the auxiliary traffic-light loss (cross-entropy of a small head
            on the hood features against the samples' ``light`` label; samples without one are
            ignored); 0 = no such head.
        speed_target: > 0: the ``throttle_brake`` head predicts the speed the expert aims at
            (the samples' ``target_speed`` label, over ``[0, speed_target]`` m/s) instead of the
            pedal, and :meth:`DrivingModel.decode` turns it into the pedal with
            :class:`~imitation.models.speed.SpeedControl` and the measured speed
            (:mod:`imitation.models.speed` says why); 0 = the head predicts the pedal.
    """

    backbone: str = "pilotnet"
    image_size: tuple[int, int] = (90, 160)
    cinematic_size: tuple[int, int] | None = None
    greyscale: bool = False
    frame_stack: int = 1
    purpose: bool = True
    speed: bool = True
    history: int = 0
    outputs: tuple[OutputSpec, ...] = field(default_factory=default_outputs)
    dense: int = 256
    head_layers: int = 3
    dropout: float = 0.0
    pretrained: str | None = None
    speed_scale: float = 30.0
    measurements: int = 0
    light_head: float = 0.0
    speed_target: float = 0.0

    def __post_init__(self) -> None:
        outputs = tuple(o if isinstance(o, OutputSpec) else OutputSpec(**o) for o in self.outputs)
        if not outputs:
            raise ValueError("a model needs at least one output")
        names = [o.name for o in outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"output names must be unique, got {names}")
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))
        if self.cinematic_size is not None:
            object.__setattr__(self, "cinematic_size", tuple(int(s) for s in self.cinematic_size))
        if self.dense < 8 or self.head_layers < 1 or not 0 <= self.dropout < 1:
            raise ValueError("dense must be >= 8, head_layers >= 1 and dropout in [0, 1)")
        if self.measurements < 0 or (self.measurements and not (self.purpose or self.speed)):
            raise ValueError("measurements must be >= 0 and needs the purpose or speed input")
        if not self.light_head >= 0.0:
            raise ValueError(f"light_head must be a weight >= 0, got {self.light_head}")
        if not self.speed_target >= 0.0:
            raise ValueError(f"speed_target must be a top speed >= 0 m/s, got {self.speed_target}")
        if self.speed_target and (names[0] != ACTION_NAMES[0] or outputs[0].kind != "regression"):
            raise ValueError(
                "speed_target needs a regression output named 'throttle_brake' first (it predicts "
                f"the target speed there), got {outputs[0].kind} {names[0]!r}"
            )
        if AUX_LIGHT in names:
            raise ValueError(f"the output name {AUX_LIGHT!r} is reserved for the light head")
        # Validates sizes, frame_stack and history.
        self.preprocessing()

    @property
    def action_size(self) -> int:
        """Number of action components (one per output)."""
        return len(self.outputs)

    @property
    def needs_prev_action(self) -> bool:
        """Whether any output is a discrete delta."""
        return any(o.kind == "delta" for o in self.outputs)

    def preprocessing(self) -> Preprocessing:
        """The observation preprocessing this model expects (wrappers and trainer share it)."""
        return Preprocessing(
            hood_size=self.image_size,
            cinematic=self.cinematic_size is not None,
            cinematic_size=self.cinematic_size,
            greyscale=self.greyscale,
            frame_stack=self.frame_stack,
            history=self.history,
            prev_action=self.needs_prev_action,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :meth:`from_dict`)."""
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        d["cinematic_size"] = list(self.cinematic_size) if self.cinematic_size else None
        d["outputs"] = [{**asdict(o), "deltas": list(o.deltas)} for o in self.outputs]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if "outputs" in d:
            d["outputs"] = tuple(
                OutputSpec(**{**o, "deltas": tuple(o.get("deltas", ()))})
                if isinstance(o, Mapping)
                else o
                for o in d["outputs"]
            )
        for key in ("image_size", "cinematic_size"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in backbone."""
    return name in BUILTIN_BACKBONES


def build_backbone(name: str, *, in_chans: int = 3, pretrained: str | None = None) -> Backbone:
    """Build a backbone by name (built-in or timm), optionally with local pretrained weights."""
    backbone: Backbone
    if name in BUILTIN_BACKBONES:
        backbone = BUILTIN_BACKBONES[name](in_chans=in_chans)
    else:
        backbone = TimmBackbone(name, in_chans=in_chans)
    if pretrained is not None:
        load_local_weights(backbone, pretrained)
    return backbone


def list_models(*, include_timm: bool | None = None) -> list[str]:
    """Backbone names ``build_model`` accepts.

    Args:
        include_timm: add the suggested timm backbones; default: only when timm is installed.
    """
    names = sorted(BUILTIN_BACKBONES)
    if include_timm is None:
        try:
            import timm  # noqa: F401
        except ImportError:
            include_timm = False
        else:
            include_timm = True
    if include_timm:
        names += list(SUGGESTED_TIMM_BACKBONES)
    return names


class DrivingModel(nn.Module):
    """Backbone(s) + purpose/speed/history inputs + common dense layer + one head per output.

    Args:
        config: the architecture.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        pre = config.preprocessing()
        self.in_chans = pre.channels
        self.hood = build_backbone(
            config.backbone, in_chans=self.in_chans, pretrained=config.pretrained
        )
        self.cinematic: Backbone | None = None
        width = self.hood.num_features
        if config.cinematic_size is not None:
            self.cinematic = build_backbone(
                config.backbone, in_chans=self.in_chans, pretrained=config.pretrained
            )
            width += self.cinematic.num_features
        self.history_encoder: HistoryEncoder | None = None
        if config.history:
            self.history_encoder = HistoryEncoder(
                features=config.action_size + 4,
                speed_column=config.action_size,
                speed_scale=config.speed_scale,
            )
            width += self.history_encoder.num_features
        n_measured = 3 * config.purpose + 1 * config.speed
        self.measure: nn.Module | None = None
        if config.measurements:
            m = config.measurements
            self.measure = nn.Sequential(
                nn.Linear(n_measured, m),
                nn.ELU(inplace=True),
                nn.Linear(m, m),
                nn.ELU(inplace=True),
            )
            width += m
        else:
            width += n_measured
        width += config.action_size * config.needs_prev_action
        self.common = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(width, config.dense), nn.ELU(inplace=True)
        )
        self.light: nn.Module | None = None
        if config.light_head:
            self.light = nn.Sequential(
                nn.Linear(self.hood.num_features, 64),
                nn.ELU(inplace=True),
                nn.Linear(64, len(LIGHT_CLASSES)),
            )
        self.heads = nn.ModuleDict(
            {
                o.name: OutputHead(
                    dense=config.dense, spec=o, layers=config.head_layers, dropout=config.dropout
                )
                for o in config.outputs
            }
        )
        frames = config.frame_stack
        mean, std = self.hood.norm_mean, self.hood.norm_std
        if config.greyscale:
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)  # type: ignore[assignment]
        self.register_buffer(
            "mean", torch.tensor(mean * frames).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std * frames).view(1, -1, 1, 1), persistent=False)
        self.channels_last = False
        self.speed_control = SpeedControl()

    @property
    def normalisation(self) -> dict[str, list[float]]:
        """Per-channel mean and std applied after scaling uint8 frames to [0, 1]."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def set_channels_last(self, enabled: bool = True) -> DrivingModel:
        """Use channels-last memory format for convolutions (faster on CUDA)."""
        self.channels_last = enabled
        return self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)  # type: ignore[call-overload]

    def image(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, H, W, C)`` → normalised float ``(B, C, H, W)``."""
        if frames.ndim != 4 or frames.shape[-1] != self.in_chans:
            raise ValueError(
                f"camera input must be (B, H, W, {self.in_chans}) (channels last, as the wrapped env "
                f"observes it), got {tuple(frames.shape)}"
            )
        x = frames.permute(0, 3, 1, 2)  # already channels-last in memory
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=self.mean.dtype).contiguous(memory_format=fmt)
        return (x / 255.0 - self.mean) / self.std

    def features(self, inputs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Last-conv activations of each backbone (hood first), ``(B, C, h, w)`` each."""
        maps = [self.hood.forward_features(self.image(inputs["hood"]))]
        if self.cinematic is not None:
            maps.append(self.cinematic.forward_features(self.image(inputs["cinematic"])))
        return maps

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw outputs by name: ``(B, 1)`` tanh values or ``(B, classes)`` logits (and the light
        head's logits as ``aux_light``)."""
        parts = [self.hood(self.image(inputs["hood"]))]
        aux = {} if self.light is None else {AUX_LIGHT: self.light(parts[0])}
        if self.cinematic is not None:
            if "cinematic" not in inputs:
                raise KeyError("this is a dual-backbone model: inputs need a 'cinematic' camera")
            parts.append(self.cinematic(self.image(inputs["cinematic"])))
        if self.history_encoder is not None:
            parts.append(self.history_encoder(inputs["history"]))
        measured = []
        if self.config.purpose:
            measured.append(inputs["purpose"].float())
        if self.config.speed:
            measured.append(inputs["speed"].float().view(-1, 1) / self.config.speed_scale)
        if self.measure is not None:
            parts.append(self.measure(torch.cat(measured, dim=1)))
        else:
            parts += measured
        if self.config.needs_prev_action:
            parts.append(inputs["prev_action"].float())
        dtype = parts[0].dtype
        x = self.common(torch.cat([p.to(dtype) for p in parts], dim=1))
        return {**{name: head(x) for name, head in self.heads.items()}, **aux}

    def _prev(self, prev_action: torch.Tensor | None, i: int) -> torch.Tensor | None:
        return None if prev_action is None else prev_action[:, i]

    def decode(
        self,
        raw: Mapping[str, torch.Tensor],
        prev_action: torch.Tensor | None = None,
        *,
        speed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Raw outputs → values ``(B, A)`` in [-1, 1], in the labels' terms.

        For a target-speed model (``speed_target``) column 0 is the scaled target speed, as its
        training labels are; pass the measured ``speed`` ``(B, 1)`` m/s to get actions instead
        (column 0 becomes the controller's pedal). Other models ignore ``speed``.
        """
        cols = [
            o.decode(raw[o.name], self._prev(prev_action, i))
            for i, o in enumerate(self.config.outputs)
        ]
        top = self.config.speed_target
        if top and speed is not None:
            target = unscale_target(cols[0], top)
            cols[0] = self.speed_control.pedal(target, speed.reshape(-1).to(target.device))
        return torch.stack(cols, dim=1)

    def loss(
        self,
        raw: Mapping[str, torch.Tensor],
        target: torch.Tensor,
        *,
        prev_action: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        light: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted loss and per-output losses.

        Args:
            raw: forward output.
            target: labels ``(B, A)``.
            prev_action: previous executed actions ``(B, A)`` (delta outputs).
            mask: ``(B, A)`` 0/1: which outputs each sample trains (per-output buffers).
            light: the samples' ``light`` labels ``(B,)`` for the light head (``-1``: none);
                without them the head adds nothing.

        Returns:
            (total loss, {output name (and ``aux_light``): mean loss}).
        """
        total = torch.zeros((), device=target.device)
        parts: dict[str, torch.Tensor] = {}
        for i, o in enumerate(self.config.outputs):
            per = o.loss_fn(raw[o.name], target[:, i], self._prev(prev_action, i))
            if mask is not None:
                m = mask[:, i].float()
                value = (per * m).sum() / m.sum().clamp(min=1.0)
            else:
                value = per.mean()
            parts[o.name] = value
            total = total + o.weight * value
        if self.light is not None and light is not None:
            per = F.cross_entropy(
                raw[AUX_LIGHT].float(), light.long(), ignore_index=LIGHT_UNKNOWN, reduction="sum"
            )
            value = per / (light != LIGHT_UNKNOWN).sum().clamp(min=1)
            parts[AUX_LIGHT] = value
            total = total + self.config.light_head * value
        return total, parts

    def dummy_inputs(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Random inputs with the right shapes and dtypes (tests and benchmarks)."""
        c = self.config
        g = generator

        def frames(size: tuple[int, int]) -> torch.Tensor:
            return torch.randint(
                0, 256, (batch_size, *size, self.in_chans), dtype=torch.uint8, generator=g
            )

        inputs = {
            "hood": frames(c.image_size),
            "purpose": torch.rand(batch_size, 3, generator=g) * 2 - 1,
            "speed": torch.rand(batch_size, 1, generator=g) * 20,
        }
        if c.cinematic_size is not None:
            inputs["cinematic"] = frames(c.cinematic_size)
        if c.history:
            inputs["history"] = torch.rand(batch_size, c.history, c.action_size + 4, generator=g)
        if c.needs_prev_action:
            inputs["prev_action"] = torch.rand(batch_size, c.action_size, generator=g) * 2 - 1
        return inputs


UNBATCHED_NDIM = {"hood": 3, "cinematic": 3, "history": 2}
"""Rank of one (unbatched) observation per key; other keys are vectors (rank 1)."""


def as_model_inputs(
    obs: Mapping[str, Any], *, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], bool]:
    """Observation dict (numpy, one or a batch) → model input tensors with a batch axis.

    Returns:
        (inputs, batched): ``batched`` is False when a single observation was given.
    """
    hood = obs.get("hood")
    if hood is None:
        raise KeyError(f"observation needs a 'hood' camera, got keys {sorted(obs)}")
    batched = np.ndim(hood) == 4
    inputs = {}
    for key, value in obs.items():
        t = torch.as_tensor(np.asarray(value))
        if not batched and t.ndim == UNBATCHED_NDIM.get(key, 1):
            t = t[None]
        inputs[key] = t.to(device)
    return inputs, batched


def build_model(name: str, **cfg: Any) -> DrivingModel:
    """Build a driving model by backbone name.

    Args:
        name: backbone: ``"pilotnet"``, ``"resnet_small"``, or a timm name (``"xception41"``,
            ``"inception_resnet_v2"``, ``"regnety_032"``, …; needs ``pip install "gta5drive[timm]"``).
        **cfg: other :class:`ModelConfig` fields (``image_size``, ``cinematic_size``,
            ``frame_stack``, ``history``, ``outputs`` as :class:`OutputSpec` or dicts, …).

    Returns:
        a freshly initialised :class:`DrivingModel`.
    """
    known = {f.name for f in fields(ModelConfig)} - {"backbone"}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}; known: {sorted(known)}")
    return DrivingModel(ModelConfig(backbone=name, **cfg))


def model_from_config(config: ModelConfig | Mapping[str, Any]) -> DrivingModel:
    """Build a model from a :class:`ModelConfig` or its dict form."""
    if not isinstance(config, ModelConfig):
        config = ModelConfig.from_dict(config)
    return DrivingModel(config)


def without_pretrained(config: ModelConfig) -> ModelConfig:
    """The same config with ``pretrained=None`` (weights come from a checkpoint instead)."""
    return replace(config, pretrained=None)
