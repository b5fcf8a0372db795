"""Built-in convolutional backbones small enough to train on a CPU.

Every backbone maps a normalised image batch ``(B, C, H, W)`` to a feature vector ``(B, F)`` and
exposes its last convolutional activations through :meth:`Backbone.forward_features` (what the
Convcam shows). The built-ins keep a coarse spatial grid (adaptive average pooling to 2×4 cells)
instead of pooling globally, because *where* things are in the frame (the road edge, the lane
line) is what steering depends on.
"""

from __future__ import annotations

import torch
from torch import nn

UNIT_MEAN = (0.5, 0.5, 0.5)
UNIT_STD = (0.5, 0.5, 0.5)
"""Normalisation of the built-ins: uint8 [0, 255] → [-1, 1]."""

POOL_GRID = (2, 4)


class Backbone(nn.Module):
    """Interface of every backbone (built-in or timm).

    Attributes:
        num_features: size of the feature vector returned by ``forward``.
        in_chans: input channels (3 per RGB frame, 1 per greyscale frame).
        norm_mean: per-RGB-channel mean the input is normalised with (after scaling to [0, 1]).
        norm_std: per-RGB-channel standard deviation.
    """

    num_features: int
    in_chans: int
    norm_mean: tuple[float, float, float] = UNIT_MEAN
    norm_std: tuple[float, float, float] = UNIT_STD

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional activations ``(B, C, h, w)``."""
        raise NotImplementedError

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Feature map → feature vector ``(B, num_features)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x))


class PilotNet(Backbone):
    """The PilotNet convolution stack (NVIDIA, 2016) with padding so any frame size works.

    Five convolutions (24, 36, 48 channels 5×5 stride 2; 64, 64 channels 3×3) with ELU, then
    pooling to a 2×4 grid: 512 features. About 0.13 M parameters.

    Args:
        in_chans: input channels.
    """

    FIRST_STRIDE = 2

    def __init__(self, *, in_chans: int = 3) -> None:
        super().__init__()
        self.in_chans = in_chans
        widths = [
            (in_chans, 24, 5, self.FIRST_STRIDE),
            (24, 36, 5, 2),
            (36, 48, 5, 2),
            (48, 64, 3, 1),
            (64, 64, 3, 1),
        ]
        layers: list[nn.Module] = []
        for cin, cout, k, s in widths:
            layers += [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2), nn.ELU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.grid = nn.AdaptiveAvgPool2d(POOL_GRID)
        self.num_features = 64 * POOL_GRID[0] * POOL_GRID[1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.grid(features), 1)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.skip(x))


class ResNetSmall(Backbone):
    """A small residual network: a stride-2 stem and four stride-2 basic blocks.

    Channels 32 → 32, 64, 128, 192 with batch norm, then pooling to a 2×4 grid: 1,536 features.
    About 1 M parameters: slightly bigger and more accurate than :class:`PilotNet`, still
    trainable on a CPU.

    Args:
        in_chans: input channels.
    """

    def __init__(self, *, in_chans: int = 3) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        widths = [32, 32, 64, 128, 192]
        self.blocks = nn.Sequential(
            *[_BasicBlock(widths[i], widths[i + 1], 2) for i in range(len(widths) - 1)]
        )
        self.grid = nn.AdaptiveAvgPool2d(POOL_GRID)
        self.num_features = widths[-1] * POOL_GRID[0] * POOL_GRID[1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.grid(features), 1)


class PilotNetFine(PilotNet):
    """PilotNet whose first convolution has stride 1: small things (a lit signal lamp is 2×2
    pixels at 45×80) reach the second layer unblurred. ~4× PilotNet's compute, same features.
    (`scripts/light_probe.py`: a small CNN tells a green light from a red one on held-out towns
    at 0.73 balanced accuracy at 45×80 with a stride-1 first layer, 0.58 with stride 2; as a
    driving model it is measured in docs/agents.md.)"""

    FIRST_STRIDE = 1


BUILTIN_BACKBONES: dict[str, type[Backbone]] = {
    "pilotnet": PilotNet,
    "pilotnet_fine": PilotNetFine,
    "resnet_small": ResNetSmall,
}
"""Built-in backbones by name."""
