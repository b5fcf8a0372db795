"""The real game backend: GTA V through screen capture, a virtual pad and a bridge to a mod.

Importing this package is cheap and needs no optional package: :func:`probe` uses the standard
library only and :class:`GTA5Game` is imported on first use. See ``docs/gta5.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gta_env.gta5.protocol import DEFAULT_PORT, PROTOCOL_VERSION

if TYPE_CHECKING:
    from gta_env.gta5.game import GTA5Config, GTA5Game

__all__ = ["DEFAULT_PORT", "PROTOCOL_VERSION", "GTA5Config", "GTA5Game", "probe"]


def probe(host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 0.2) -> bool:
    """Whether a game bridge answers a version handshake on ``host:port`` within ``timeout`` s."""
    from gta_env.gta5.bridge import probe as _probe

    return _probe(host, port, timeout)


def __getattr__(name: str) -> Any:
    if name in ("GTA5Game", "GTA5Config"):
        from gta_env.gta5 import game

        return getattr(game, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
