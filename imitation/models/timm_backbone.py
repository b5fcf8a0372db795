"""Backbones from ``timm`` (Xception, InceptionResNetV2, RegNet, EfficientNet, …).

``timm`` is an optional extra (``pip install "gta5drive[timm]"``) and is imported only when a timm
backbone is built. Nothing is ever downloaded: models are created with ``pretrained=False`` and
pretrained weights come only from a local ``.safetensors`` file (:func:`load_local_weights`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from gymnasium.error import DependencyNotInstalled
from torch import nn

from imitation.models.cnn import BUILTIN_BACKBONES, Backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SUGGESTED_TIMM_BACKBONES = (
    "xception41",
    "xception65",
    "inception_resnet_v2",
    "regnety_008",
    "regnety_032",
    "efficientnet_b0",
    "efficientnet_b3",
)
"""timm backbones this project was designed around (any timm CNN name works)."""


class MissingExtraError(DependencyNotInstalled, ImportError):
    """An optional extra needed for what was asked is not installed."""


def import_timm(name: str) -> Any:
    """Import timm or raise an error naming the extra to install."""
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise MissingExtraError(
            f"backbone {name!r} comes from timm, which is not installed; "
            'install it with: pip install "gta5drive[timm]" '
            f"(or pick a built-in backbone: {', '.join(BUILTIN_BACKBONES)})"
        ) from exc
    return timm


class TimmBackbone(Backbone):
    """A timm model used as a feature extractor (classifier removed, global pooling kept).

    Args:
        name: timm model name, e.g. ``"xception41"`` or ``"inception_resnet_v2"``.
        in_chans: input channels (timm adapts the first convolution).
    """

    def __init__(self, name: str, *, in_chans: int = 3) -> None:
        super().__init__()
        timm = import_timm(name)
        if not timm.list_models(name) and not timm.is_model(name):
            raise ValueError(
                f"timm has no model named {name!r}; see timm.list_models() for names "
                f"(this project was designed around {', '.join(SUGGESTED_TIMM_BACKBONES)})"
            )
        self.name = name
        self.in_chans = in_chans
        # pretrained=False: nothing may be downloaded at run time.
        self.model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
        self.num_features = int(self.model.num_features)
        cfg = getattr(self.model, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
        self.norm_mean = tuple(float(m) for m in mean)[:3]  # type: ignore[assignment]
        self.norm_std = tuple(float(s) for s in std)[:3]  # type: ignore[assignment]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(features, pre_logits=True)


def load_local_weights(module: nn.Module, path: str | os.PathLike[str]) -> list[str]:
    """Load pretrained weights into ``module`` from a local ``.safetensors`` file.

    Classifier weights the module does not have are ignored; a first convolution trained on RGB
    is adapted to another channel count (repeated over channels and rescaled, as timm does).

    Args:
        module: the backbone (for timm backbones, keys may be with or without ``model.``).
        path: local ``.safetensors`` file.

    Returns:
        the names of module parameters that were *not* found in the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not safetensors, or no tensor matched the module.
    """
    from safetensors.torch import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights file {path!r} does not exist")
    if not path.endswith(".safetensors"):
        raise ValueError(
            f"pretrained weights must be a local .safetensors file, got {path!r}; convert a "
            "PyTorch file once with safetensors.torch.save_file(state_dict, 'weights.safetensors')"
        )
    loaded = load_file(path)
    own = module.state_dict()
    prefix = "model." if any(k.startswith("model.") for k in own) else ""
    matched: dict[str, torch.Tensor] = {}
    for key, tensor in loaded.items():
        target = key if key in own else prefix + key
        if target not in own:
            continue
        want = own[target]
        if tensor.shape != want.shape and tensor.ndim == 4 and tensor.shape[1] == 3:
            reps = math.ceil(want.shape[1] / 3)
            tensor = tensor.repeat(1, reps, 1, 1)[:, : want.shape[1]] * (3 / want.shape[1])
        if tensor.shape == want.shape:
            matched[target] = tensor.to(want.dtype)
    if not matched:
        raise ValueError(f"no tensor in {path!r} matches the backbone's parameters")
    module.load_state_dict(matched, strict=False)
    return sorted(set(own) - set(matched))
