"""The bridge protocol between the environment and the game mod (version 2).

Everything here is pure Python (standard library only) so that both the client in the environment
and the Python servers (tests, the embedded world posing as the game) share one definition. The C#
mod in ``mod/Gta5DriveMod.cs`` implements the same rules; ``docs/gta5.md`` is the prose version.

Transport
    TCP on a loopback address only (``127.0.0.1`` by default, port :data:`DEFAULT_PORT`). Each
    message is a *frame*: a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes of UTF-8
    JSON encoding one object. ``1 <= N <= MAX_MESSAGE_BYTES``; a bad length closes the connection
    (the stream cannot be re-synchronised). NaN/Infinity, duplicate keys and unknown fields are
    rejected.

Handshake (mutual HMAC-SHA256 challenge-response; the token itself never crosses the wire)
    1. client: ``{"type": "hello", "id": 0, "version": 2, "nonce": Nc}`` (``Nc``: 32 random bytes,
       hex).
    2. server: ``{"type": "challenge", "id": 0, "version": 2, "nonce": Ns, "proof": Ps}`` with
       ``Ps = HMAC(token, "gta5drive-v2 server" | Nc | Ns)`` (:func:`server_proof`), or an
       ``error`` (other version, too many clients) and a close.
    3. client checks ``Ps``; a server that cannot prove it knows the token gets nothing more (the
       client closes). Otherwise: ``{"type": "auth", "id": 0, "proof": Pc}`` with
       ``Pc = HMAC(token, "gta5drive-v2 client" | Nc | Ns)`` (:func:`client_proof`).
    4. server: ``{"type": "welcome", "id": 0, "version": 2, "server": "..."}`` (optionally with
       ``window``: the screen rectangle of the game image) or ``error`` ("wrong token") and a
       close.
    The whole handshake has one deadline (:data:`HANDSHAKE_TIMEOUT` seconds from the connection,
    not per read); connections still in the handshake are capped separately from authenticated
    clients (:data:`MAX_PENDING_HANDSHAKES`, the oldest is dropped for a new one). The token is
    the shared secret stored by :func:`load_token`.

Requests and replies
    After the handshake the client sends requests ``{"type": <command>, "id": n, ...}`` with
    ``n >= 1``; the server answers each with ``{"type": "ok", "id": n, ...}`` or
    ``{"type": "error", "id": n, "reason": "..."}``. An invalid request gets an error reply (with
    ``id`` 0 when the id itself could not be read) and the connection stays open, up to
    :data:`MAX_ERRORS_PER_CONNECTION` errors. When subscribed, the server also pushes
    ``{"type": "telemetry", "id": 0, "telemetry": {...}}`` once per game frame.

The commands, their fields and their replies are in :data:`REQUESTS` and :data:`REPLY_PAYLOADS`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 2
"""Bumped on any incompatible change; both sides refuse a different version.

Version 2 replaced the token in ``hello`` (version 1) by a mutual HMAC challenge-response."""

DEFAULT_PORT = 47841
"""Default TCP port of the bridge on 127.0.0.1."""

MAX_MESSAGE_BYTES = 64 * 1024
"""Largest frame payload either side accepts (telemetry is ~1 KiB)."""

MAX_ERRORS_PER_CONNECTION = 32
"""A server closes a connection after this many rejected messages."""

HANDSHAKE_TIMEOUT = 2.0
"""Seconds from accept to a completed handshake (one deadline, not per read)."""

MAX_PENDING_HANDSHAKES = 16
"""Connections still in the handshake, counted apart from authenticated clients; a new one
evicts the oldest, so unauthenticated sockets can never lock a valid client out."""

SEND_QUEUE_LIMIT = 256
"""Messages queued for one client; a client that lets its queue fill is dropped."""

SEND_TIMEOUT = 1.0
"""Seconds one socket write may block (the client stopped reading); then the client is dropped."""

MAX_QUEUED_REQUESTS = 64
"""Requests waiting for the server's dispatch thread (the mod's Tick); more get a 'busy' error."""

NONCE_HEX = 64
"""Length of handshake nonces and proofs: 32 bytes as hex."""

_SERVER_LABEL = b"gta5drive-v2 server"
_CLIENT_LABEL = b"gta5drive-v2 client"

HEADER = struct.Struct(">I")

CAMERAS = ("hood", "cinematic", "extra")
"""Camera names on the wire; ``extra`` is a third game camera (e.g. first person)."""

WEATHERS = (
    "EXTRASUNNY",
    "CLEAR",
    "CLOUDS",
    "SMOG",
    "FOGGY",
    "OVERCAST",
    "RAIN",
    "THUNDER",
    "CLEARING",
    "NEUTRAL",
    "SNOW",
    "BLIZZARD",
    "SNOWLIGHT",
    "XMAS",
    "HALLOWEEN",
)
"""GTA V weather type names accepted by the ``weather`` command."""

COLLISION_KINDS = ("vehicle", "static", "ped")

TOKEN_ENV = "GTA5DRIVE_BRIDGE_TOKEN"
CONFIG_DIR_ENV = "GTA5DRIVE_CONFIG_DIR"
TOKEN_FILE = "bridge_token"


class ProtocolError(ValueError):
    """A message broke the protocol; ``str(error)`` is the reason sent back and logged."""


# --------------------------------------------------------------------------------------------
# Schema validation: small composable validators, each ``(value, path) -> None``.

Validator = Callable[[Any, str], None]


def _int(lo: int, hi: int) -> Validator:
    def check(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{path} must be an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise ProtocolError(f"{path} must be in [{lo}, {hi}], got {value}")

    return check


def _float(lo: float = -1e7, hi: float = 1e7) -> Validator:
    def check(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{path} must be a number, got {type(value).__name__}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ProtocolError(f"{path} must be finite and in [{lo}, {hi}], got {value}")

    return check


def _bool(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise ProtocolError(f"{path} must be true or false, got {type(value).__name__}")


def _str(max_len: int = 256, choices: tuple[str, ...] | None = None) -> Validator:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise ProtocolError(f"{path} must be a string, got {type(value).__name__}")
        if len(value) > max_len:
            raise ProtocolError(f"{path} is longer than {max_len} characters")
        if choices is not None and value not in choices:
            raise ProtocolError(f"{path} must be one of {list(choices)}, got {value[:40]!r}")

    return check


def _list(item: Validator, min_len: int, max_len: int) -> Validator:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise ProtocolError(f"{path} must be a list, got {type(value).__name__}")
        if not min_len <= len(value) <= max_len:
            raise ProtocolError(f"{path} must have {min_len}..{max_len} items, got {len(value)}")
        for i, v in enumerate(value):
            item(v, f"{path}[{i}]")

    return check


def _nullable(inner: Validator) -> Validator:
    def check(value: Any, path: str) -> None:
        if value is not None:
            inner(value, path)

    return check


Schema = Mapping[str, tuple[Validator, bool]]
"""Field name -> (validator, required)."""


def _object(schema: Schema) -> Validator:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ProtocolError(f"{path} must be an object, got {type(value).__name__}")
        check_fields(value, schema, path)

    return check


def check_fields(message: Mapping[str, Any], schema: Schema, path: str) -> None:
    """Check that ``message`` has exactly the fields of ``schema`` (plus optional ones)."""
    unknown = sorted(set(message) - set(schema))
    if unknown:
        raise ProtocolError(f"{path} has unknown field(s) {unknown[:5]}")
    for name, (validator, required) in schema.items():
        if name in message:
            validator(message[name], f"{path}.{name}")
        elif required:
            raise ProtocolError(f"{path} is missing the required field {name!r}")


_ID = _int(0, 2**31 - 1)


def _hex(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) != NONCE_HEX:
        raise ProtocolError(f"{path} must be {NONCE_HEX} hexadecimal characters")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ProtocolError(f"{path} must be {NONCE_HEX} hexadecimal characters") from None


_HEX: Validator = _hex
_COORD = _float()
_MS = _int(0, 10_000)
_SEED = _int(0, 2**31 - 1)
_CAMERA = _str(16, CAMERAS)

REQUESTS: dict[str, Schema] = {
    # Handshake (id 0): the client's nonce, then its proof.
    "hello": {
        "version": (_int(0, 2**31 - 1), True),
        "nonce": (_HEX, True),
        "client": (_str(64), False),
    },
    "auth": {"proof": (_HEX, True)},
    # Current telemetry, without advancing time.
    "telemetry": {},
    # Push telemetry every frame (or stop).
    "subscribe": {"enabled": (_bool, True)},
    # Advance `frames` frames of 1/30 s game time, reply with the telemetry after them.
    "step": {"frames": (_int(1, 300), False)},
    # Reload: stop the autopilot, deterministic start spot for `seed`, player in a car.
    "reset": {"seed": (_SEED, True), "vehicle": (_str(32), False)},
    # Explicit purpose point (and optional visible marker / blip).
    "set_purpose": {
        "x": (_COORD, True),
        "y": (_COORD, True),
        "z": (_COORD, False),
        "marker": (_bool, False),
    },
    # A random purpose point on a road, chosen by the server from `seed`.
    "new_purpose": {
        "seed": (_SEED, True),
        "min_distance": (_float(0, 1e5), False),
        "max_distance": (_float(0, 1e5), False),
        "marker": (_bool, False),
    },
    # NPC autopilot: drive to (x, y) or to the purpose point, with GTA driving-style flags.
    "autopilot": {
        "enabled": (_bool, True),
        "x": (_COORD, False),
        "y": (_COORD, False),
        "speed": (_float(0, 100), False),
        "style": (_int(0, 2**31 - 1), False),
    },
    # Teleport to (x, y[, z, heading]) or, with `seed`, to a random road spot; fades when fade_ms.
    "teleport": {
        "x": (_COORD, False),
        "y": (_COORD, False),
        "z": (_COORD, False),
        "heading": (_float(-720, 720), False),
        "seed": (_SEED, False),
        "fade_ms": (_MS, False),
    },
    # Screen fade: level 1 = black, 0 = normal; ms = duration.
    "fade": {"level": (_float(0, 1), True), "ms": (_MS, False)},
    # Show one camera; the reply comes once a frame of it has been rendered.
    "set_camera": {"camera": (_CAMERA, True)},
    # Cycle cameras frame by frame (empty list: stop cycling).
    "camera_cycle": {"cameras": (_list(_CAMERA, 0, 3), True)},
    "weather": {"weather": (_str(16, WEATHERS), True)},
    "time": {"hour": (_int(0, 23), True), "minute": (_int(0, 59), False)},
    # Controls through the bridge (controller="bridge"): held until the next controls message.
    "controls": {
        "throttle": (_float(0, 1), True),
        "brake": (_float(0, 1), True),
        "steer": (_float(-1, 1), True),
    },
    # Lockstep: when paused, game time only advances through `step`.
    "pause": {"paused": (_bool, True)},
    "bye": {},
}
"""Every request type and its fields (besides ``type`` and ``id``)."""

HANDSHAKE_REQUESTS = ("hello", "auth")
COMMANDS = tuple(name for name in REQUESTS if name not in HANDSHAKE_REQUESTS)

_VEC2 = _list(_COORD, 2, 2)
_VEC3 = _list(_COORD, 3, 3)

TELEMETRY_SCHEMA: Schema = {
    "frame": (_int(0, 2**53), True),
    "game_time_ms": (_int(0, 2**53), False),
    "position": (_VEC3, True),
    "heading_deg": (_float(-720, 720), True),
    "speed": (_float(-500, 500), True),
    "on_road": (_bool, True),
    "purpose": (_nullable(_VEC2), True),
    "route_remaining": (_float(-1, 1e6), False),
    "collisions": (
        _list(
            _object(
                {
                    "kind": (_str(16, COLLISION_KINDS), True),
                    "other": (_str(64), True),
                    "impulse": (_float(0, 1e9), False),
                }
            ),
            0,
            32,
        ),
        True,
    ),
    "camera": (_CAMERA, True),
    "npc": (
        _object(
            {
                "active": (_bool, True),
                "throttle": (_float(0, 1), True),
                "brake": (_float(0, 1), True),
                "steer": (_float(-1, 1), True),
            }
        ),
        True,
    ),
    "paused": (_bool, False),
    "fade": (_float(0, 1), False),
}
"""The telemetry object the server sends (in ``ok`` replies and ``telemetry`` pushes)."""

_WINDOW = _object(
    {
        "left": (_int(-(2**20), 2**20), True),
        "top": (_int(-(2**20), 2**20), True),
        "width": (_int(1, 2**16), True),
        "height": (_int(1, 2**16), True),
    }
)

REPLIES: dict[str, Schema] = {
    "challenge": {
        "version": (_int(0, 2**31 - 1), True),
        "nonce": (_HEX, True),
        "proof": (_HEX, True),
    },
    "welcome": {
        "version": (_int(0, 2**31 - 1), True),
        "server": (_str(64), True),
        "window": (_WINDOW, False),
    },
    "error": {"reason": (_str(1024), True), "version": (_int(0, 2**31 - 1), False)},
    "ok": {
        "telemetry": (_object(TELEMETRY_SCHEMA), False),
        "purpose": (_VEC2, False),
        "position": (_VEC3, False),
        "camera": (_CAMERA, False),
        "frame": (_int(0, 2**53), False),
    },
    "telemetry": {"telemetry": (_object(TELEMETRY_SCHEMA), True)},
}
"""Every server-to-client message type and its fields (besides ``type`` and ``id``)."""

REPLY_PAYLOADS: dict[str, tuple[str, ...]] = {
    "telemetry": ("telemetry",),
    "step": ("telemetry",),
    "reset": ("telemetry",),
    "new_purpose": ("purpose",),
    "set_purpose": ("purpose",),
    "teleport": ("position",),
    "set_camera": ("camera", "frame"),
}
"""Fields an ``ok`` reply to a command must carry (commands not listed carry none)."""


# --------------------------------------------------------------------------------------------
# Encoding and decoding.


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"JSON constant {name} is not allowed (numbers must be finite)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ProtocolError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def encode(message: Mapping[str, Any]) -> bytes:
    """Serialise ``message`` into one frame (header + JSON).

    Raises:
        ProtocolError: when the result would exceed :data:`MAX_MESSAGE_BYTES` or holds NaN.
    """
    try:
        payload = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"message cannot be encoded as strict JSON: {exc}") from exc
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    return HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Parse a frame payload into a JSON object with a string ``type`` and integer ``id``.

    Raises:
        ProtocolError: with the reason, for anything that is not such an object.
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"message is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        message = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
        )
    except ProtocolError:
        raise
    except RecursionError as exc:
        raise ProtocolError("message is nested too deeply") from exc
    except ValueError as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"message must be a JSON object, got {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message has no string field 'type'")
    _ID(message.get("id"), "message.id")
    return message


def validate_request(message: Mapping[str, Any]) -> None:
    """Check a client-to-server message against :data:`REQUESTS`.

    Raises:
        ProtocolError: naming the offending field.
    """
    kind = message["type"]
    schema = REQUESTS.get(kind)
    if schema is None:
        raise ProtocolError(f"unknown request type {str(kind)[:40]!r}")
    if kind not in HANDSHAKE_REQUESTS and message["id"] == 0:
        raise ProtocolError("request id must be >= 1 (0 is reserved for the handshake)")
    body = {k: v for k, v in message.items() if k not in ("type", "id")}
    check_fields(body, schema, kind)
    if kind == "teleport":
        has_xy = "x" in body or "y" in body
        if has_xy == ("seed" in body) or (has_xy and not ("x" in body and "y" in body)):
            raise ProtocolError("teleport needs either both x and y, or seed (not both)")
    if kind == "autopilot" and ("x" in body) != ("y" in body):
        raise ProtocolError("autopilot needs both x and y, or neither (drive to the purpose)")
    if kind == "new_purpose" and body.get("min_distance", 0.0) > body.get("max_distance", 1e5):
        raise ProtocolError("new_purpose.min_distance must not exceed max_distance")


def validate_reply(message: Mapping[str, Any], command: str | None = None) -> None:
    """Check a server-to-client message against :data:`REPLIES`.

    Args:
        message: the decoded message.
        command: the request it answers, to check the payload of an ``ok`` reply.

    Raises:
        ProtocolError: naming the offending field.
    """
    kind = message["type"]
    schema = REPLIES.get(kind)
    if schema is None:
        raise ProtocolError(f"unknown reply type {str(kind)[:40]!r}")
    body = {k: v for k, v in message.items() if k not in ("type", "id")}
    check_fields(body, schema, kind)
    if kind == "ok" and command is not None:
        for name in REPLY_PAYLOADS.get(command, ()):
            if name not in body:
                raise ProtocolError(f"ok reply to {command!r} lacks {name!r}")


# --------------------------------------------------------------------------------------------
# The handshake's proofs.


def make_nonce() -> str:
    """A fresh handshake nonce: 32 random bytes as hex."""
    return secrets.token_hex(NONCE_HEX // 2)


def _proof(label: bytes, token: str, client_nonce: str, server_nonce: str) -> str:
    message = label + b"|" + client_nonce.encode("ascii") + b"|" + server_nonce.encode("ascii")
    return hmac.new(token.encode("utf-8"), message, hashlib.sha256).hexdigest()


def server_proof(token: str, client_nonce: str, server_nonce: str) -> str:
    """What the server sends to prove it knows ``token`` (never valid as a client proof)."""
    return _proof(_SERVER_LABEL, token, client_nonce, server_nonce)


def client_proof(token: str, client_nonce: str, server_nonce: str) -> str:
    """What the client sends to prove it knows ``token``."""
    return _proof(_CLIENT_LABEL, token, client_nonce, server_nonce)


def proofs_match(expected: str, received: str) -> bool:
    """Constant-time comparison of two proofs."""
    return hmac.compare_digest(expected.encode("ascii"), received.encode("ascii", "replace"))


# --------------------------------------------------------------------------------------------
# Socket helpers.


def recv_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytes:
    """Read exactly ``n`` bytes.

    Args:
        sock: the socket.
        n: bytes to read.
        deadline: ``time.monotonic()`` by which all of them must have arrived (``None``: the
            socket's own timeout applies to each read).

    Raises:
        EOFError: when the peer closed before (``"truncated"`` if some bytes had arrived).
        TimeoutError: when the deadline passed.
    """
    chunks = bytearray()
    while len(chunks) < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"deadline passed after {len(chunks)} of {n} bytes")
            sock.settimeout(remaining)
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise EOFError(
                f"truncated message: connection closed after {len(chunks)} of {n} bytes"
                if chunks
                else "connection closed"
            )
        chunks += chunk
    return bytes(chunks)


def read_frame(sock: socket.socket, deadline: float | None = None) -> bytes:
    """Read one frame's payload (by ``deadline``, a ``time.monotonic()`` value, when given).

    Raises:
        TimeoutError: when the deadline passed (the stream is then unusable: close it).
        EOFError: when the peer closed (mid-frame: the reason says truncated).
        ProtocolError: when the announced length is 0 or above :data:`MAX_MESSAGE_BYTES`; the
            stream cannot be resynchronised, so the caller must close the connection.
    """
    (length,) = HEADER.unpack(recv_exact(sock, HEADER.size, deadline))
    if length == 0 or length > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"announced message length {length} is outside 1..{MAX_MESSAGE_BYTES} bytes"
        )
    try:
        return recv_exact(sock, length, deadline)
    except EOFError as exc:
        if str(exc) == "connection closed":
            raise EOFError(
                f"truncated message: connection closed after 0 of {length} bytes"
            ) from exc
        raise


# --------------------------------------------------------------------------------------------
# Loopback and the shared token.


def require_loopback(host: str) -> str:
    """Return ``host`` as a loopback IP literal, or refuse.

    Raises:
        ValueError: for any address that is not loopback (the bridge never leaves the machine).
    """
    import ipaddress

    literal = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the game bridge only uses loopback addresses (127.0.0.1, ::1), got {host!r}; "
            "run the environment on the same machine as the game"
        )
    return literal


def config_dir() -> Path:
    """The user's gta5drive config directory (not created).

    ``$GTA5DRIVE_CONFIG_DIR`` wins; else ``%APPDATA%\\gta5drive`` on Windows (the mod looks there),
    ``~/Library/Application Support/gta5drive`` on macOS and ``$XDG_CONFIG_HOME/gta5drive`` (or
    ``~/.config/gta5drive``) elsewhere.
    """
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "gta5drive"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "gta5drive"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gta5drive"


def token_path() -> Path:
    """Where the shared bridge token lives."""
    return config_dir() / TOKEN_FILE


def load_token(*, create: bool = True) -> str | None:
    """The shared bridge token: ``$GTA5DRIVE_BRIDGE_TOKEN``, else the token file.

    Args:
        create: generate the file (``secrets.token_hex(32)``, mode 0600, atomically with
            ``O_EXCL``) when it does not exist yet. With ``False`` a missing file gives ``None``.

    Raises:
        PermissionError: when the file exists but cannot be read.
        ValueError: when the file is empty or malformed (delete it to generate a new one).
    """
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return from_env.strip()
    path = token_path()
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # Someone (the mod, another env) created it first: read theirs.
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(token + "\n")
            return token
    token = path.read_text(encoding="ascii", errors="replace").strip()
    if not token or len(token) > 256 or not token.isprintable():
        raise ValueError(f"the bridge token file {path} is empty or malformed; delete it and retry")
    return token
