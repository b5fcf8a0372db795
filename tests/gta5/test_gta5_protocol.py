"""The bridge protocol: framing, schemas, handshake, fuzzing, loopback-only, the token file."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import struct
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gta_env.gta5 import probe, protocol
from gta_env.gta5.bridge import BridgeClient, BridgeServer, BridgeUnavailable, CommandFailed
from gta_env.gta5.protocol import MAX_MESSAGE_BYTES, ProtocolError

from .fakes import TOKEN, EchoServer, fake_telemetry

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def handshake(sock: socket.socket, token: str = TOKEN) -> dict[str, Any]:
    """The client side of the v2 handshake over a raw socket; returns the last reply."""
    nonce = protocol.make_nonce()
    sock.sendall(protocol.encode({"type": "hello", "id": 0, "version": 2, "nonce": nonce}))
    challenge = protocol.decode_payload(protocol.read_frame(sock))
    assert challenge["type"] == "challenge", challenge
    proof = protocol.client_proof(token, nonce, challenge["nonce"])
    sock.sendall(protocol.encode({"type": "auth", "id": 0, "proof": proof}))
    return protocol.decode_payload(protocol.read_frame(sock))


def raw_connect(server: BridgeServer, *, hello: bool = True) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=2.0)
    if hello:
        assert handshake(sock)["type"] == "welcome"
    return sock


def still_serves(server: BridgeServer) -> None:
    with BridgeClient(port=server.port, token=TOKEN) as client:
        assert client.request("telemetry")["telemetry"]["camera"] in protocol.CAMERAS


@pytest.fixture(scope="module")
def shared_server():
    server = EchoServer(max_clients=64).start()
    yield server
    server.close()


# -- encoding and schemas -------------------------------------------------------------------


def test_encode_decode_round_trip():
    message = {"type": "step", "id": 7, "frames": 3}
    data = protocol.encode(message)
    assert struct.unpack(">I", data[:4])[0] == len(data) - 4
    assert protocol.decode_payload(data[4:]) == message
    protocol.validate_request(message)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"id": 1}', "'type'"),
        (b'{"type": "step", "id": -1}', "message.id"),
        (b'{"type": "step", "id": 1, "id": 2}', "duplicate key"),
        (b'{"type": "step", "id": 1, "x": NaN}', "NaN"),
        (b"[" * 5000 + b"]" * 5000, "nested"),
    ],
)
def test_decode_rejects_with_reason(payload, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode_payload(payload)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "fly", "id": 1}, "unknown request type"),
        ({"type": "step", "id": 0}, "id must be >= 1"),
        ({"type": "step", "id": 1, "frames": 0}, "step.frames must be in"),
        ({"type": "step", "id": 1, "frames": True}, "must be an integer"),
        ({"type": "step", "id": 1, "speed": 3}, "unknown field"),
        ({"type": "set_purpose", "id": 1, "x": 1.0}, "missing the required field 'y'"),
        ({"type": "set_purpose", "id": 1, "x": 1e12, "y": 0}, "finite and in"),
        ({"type": "set_camera", "id": 1, "camera": "drone"}, "must be one of"),
        ({"type": "teleport", "id": 1, "x": 1.0, "y": 2.0, "seed": 3}, "either both x and y"),
        ({"type": "teleport", "id": 1}, "either both x and y"),
        ({"type": "autopilot", "id": 1, "enabled": True, "x": 1.0}, "both x and y"),
        ({"type": "camera_cycle", "id": 1, "cameras": ["hood"] * 4}, "1..3|0..3"),
        ({"type": "hello", "id": 0, "version": 2, "nonce": "x" * 300}, "hexadecimal"),
        ({"type": "auth", "id": 0, "proof": "ab"}, "hexadecimal"),
    ],
)
def test_validate_request_rejects_with_reason(message, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.validate_request(message)


def test_every_command_has_a_minimal_valid_form():
    minimal: dict[str, dict[str, Any]] = {
        "hello": {"version": 2, "nonce": "0" * 64},
        "auth": {"proof": "f" * 64},
        "subscribe": {"enabled": True},
        "reset": {"seed": 1},
        "set_purpose": {"x": 1.0, "y": 2.0},
        "new_purpose": {"seed": 1},
        "autopilot": {"enabled": False},
        "teleport": {"seed": 3},
        "fade": {"level": 1.0},
        "set_camera": {"camera": "cinematic"},
        "camera_cycle": {"cameras": []},
        "weather": {"weather": "RAIN"},
        "time": {"hour": 12},
        "pause": {"paused": True},
        "controls": {"throttle": 0.5, "brake": 0.0, "steer": -0.25},
    }
    for command in protocol.REQUESTS:
        body = minimal.get(command, {})
        request_id = 0 if command in protocol.HANDSHAKE_REQUESTS else 1
        protocol.validate_request({"type": command, "id": request_id, **body})


def test_telemetry_schema_accepts_the_fake_and_rejects_bad_values():
    protocol.validate_reply({"type": "telemetry", "id": 0, "telemetry": fake_telemetry()})
    bad = fake_telemetry()
    bad["npc"]["steer"] = 2.0
    with pytest.raises(ProtocolError, match="telemetry.telemetry.npc.steer"):
        protocol.validate_reply({"type": "telemetry", "id": 0, "telemetry": bad})
    with pytest.raises(ProtocolError, match="lacks 'telemetry'"):
        protocol.validate_reply({"type": "ok", "id": 3}, "step")


def test_encode_refuses_oversized_and_nan():
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.encode({"type": "x", "id": 1, "blob": "a" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError, match="strict JSON"):
        protocol.encode({"type": "x", "id": 1, "v": float("nan")})


@FUZZ
@given(st.binary(max_size=512))
def test_decode_of_random_bytes_raises_only_protocol_error(data):
    try:
        message = protocol.decode_payload(data)
    except ProtocolError as exc:
        assert str(exc)
        return
    try:
        protocol.validate_request(message)
    except ProtocolError as exc:
        assert str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    st.sampled_from(sorted(protocol.REQUESTS)),
    st.dictionaries(
        st.sampled_from(
            ["x", "y", "seed", "frames", "camera", "enabled", "nonce", "proof", "version", "zz"]
        ),
        json_values,
        max_size=5,
    ),
)
def test_validate_request_on_random_fields_raises_only_protocol_error(command, fields):
    try:
        protocol.validate_request({"type": command, "id": 1, **fields})
    except ProtocolError as exc:
        assert str(exc)


# -- loopback only --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_nothing_binds_or_connects_off_loopback(host):
    with pytest.raises(ValueError, match="loopback"):
        BridgeServer(token=TOKEN, host=host)
    with pytest.raises(ValueError, match="loopback"):
        BridgeClient(host=host, token=TOKEN)
    assert probe(host=host, port=1) is False


def test_server_listens_on_loopback_only(echo_server):
    assert echo_server.address[0] == "127.0.0.1"
    assert EchoServer(host="localhost").host == "127.0.0.1"


# -- round trips ----------------------------------------------------------------------------


def test_client_server_round_trip_and_push(echo_server):
    with BridgeClient(port=echo_server.port, token=TOKEN) as client:
        assert client.welcome is not None and client.welcome["server"] == "gta5drive-python"
        client.request("subscribe", enabled=True)
        reply = client.request("step", frames=2)
        assert reply["telemetry"]["frame"] == 2
        assert client.request("set_camera", camera="cinematic") == {
            "camera": "cinematic",
            "frame": 2,
        }
        assert client.request("telemetry")["telemetry"]["camera"] == "cinematic"
        with pytest.raises(CommandFailed, match="no snow today"):
            client.request("weather", weather="XMAS")
        with pytest.raises(CommandFailed, match="not supported"):
            client.request("pause", paused=True)
        client.request("weather", weather="RAIN")  # still usable after an error
        assert client.latest_telemetry is not None
    assert ("step", {"frames": 2}) in echo_server.calls


def test_push_is_interleaved_with_replies(echo_server):
    with (
        BridgeClient(port=echo_server.port, token=TOKEN) as a,
        BridgeClient(port=echo_server.port, token=TOKEN) as b,
    ):
        a.request("subscribe", enabled=True)
        b.request("step")  # pushes to a, which has not asked anything
        assert a.request("telemetry")["telemetry"]["frame"] == 1
        assert a.latest_telemetry is not None and a.latest_telemetry["frame"] == 1


def test_probe(echo_server):
    assert probe(port=echo_server.port)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    free_port = sock.getsockname()[1]
    sock.close()
    assert not probe(port=free_port)
    assert not protocol.token_path().exists(), "probe must not create the token file"


def test_probe_counts_a_bridge_that_refuses_the_token(monkeypatch):
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", "not-the-token")
    with EchoServer() as server:
        assert probe(port=server.port)
        with pytest.raises(BridgeUnavailable, match="wrong token"):
            BridgeClient(port=server.port).connect()


def test_unreachable_bridge_says_what_to_start():
    with pytest.raises(BridgeUnavailable, match="ScriptHookVDotNet"):
        BridgeClient(port=1, token=TOKEN, connect_timeout=0.2).connect()


# -- hostile clients -------------------------------------------------------------------------


def test_wrong_token_and_version_rejected_with_reason(echo_server, caplog):
    caplog.set_level(logging.WARNING, "gta_env.gta5.bridge")
    with pytest.raises(BridgeUnavailable, match="wrong token"):
        BridgeClient(port=echo_server.port, token="guess").connect()
    sock = socket.create_connection(echo_server.address, timeout=2)
    hello = {"type": "hello", "id": 0, "version": 99, "nonce": protocol.make_nonce()}
    sock.sendall(protocol.encode(hello))
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] == "error" and "version 99" in reply["reason"]
    sock.close()
    sock = socket.create_connection(echo_server.address, timeout=2)
    reply = handshake(sock, token="guess")
    assert reply["type"] == "error" and "wrong token" in reply["reason"]
    sock.close()
    assert "wrong token" in caplog.text
    still_serves(echo_server)


def test_commands_before_hello_are_refused(echo_server):
    sock = raw_connect(echo_server, hello=False)
    sock.sendall(protocol.encode({"type": "step", "id": 1}))
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] == "error" and "first message must be 'hello'" in reply["reason"]
    assert sock.recv(1) == b""  # closed
    still_serves(echo_server)


def test_oversized_frame_closes_only_that_connection(echo_server):
    sock = raw_connect(echo_server)
    sock.sendall(struct.pack(">I", MAX_MESSAGE_BYTES + 1))
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert "outside 1.." in reply["reason"]
    assert sock.recv(1) == b""
    still_serves(echo_server)


def test_truncated_message_is_logged(echo_server, caplog):
    caplog.set_level(logging.WARNING, "gta_env.gta5.bridge")
    sock = raw_connect(echo_server)
    sock.sendall(struct.pack(">I", 100) + b'{"type": "st')
    sock.close()
    still_serves(echo_server)
    for _ in range(50):
        if any("truncated" in r for r in echo_server.recent_rejections):
            break
        import time

        time.sleep(0.02)
    assert any("truncated" in r for r in echo_server.recent_rejections)


def test_garbage_after_handshake_gets_error_replies_then_a_close(echo_server):
    sock = raw_connect(echo_server)
    for _ in range(protocol.MAX_ERRORS_PER_CONNECTION):
        sock.sendall(frame(b"garbage"))
        assert protocol.decode_payload(protocol.read_frame(sock))["type"] == "error"
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert "too many invalid messages" in reply["reason"]
    still_serves(echo_server)


def test_silent_client_times_out_in_handshake():
    with EchoServer(handshake_timeout=0.2) as server:
        sock = socket.create_connection(server.address, timeout=2)
        reply = protocol.decode_payload(protocol.read_frame(sock))
        assert "did not complete within the timeout" in reply["reason"]
        still_serves(server)


def test_too_many_clients_refused():
    with EchoServer(max_clients=1) as server, BridgeClient(port=server.port, token=TOKEN) as c:
        with pytest.raises(BridgeUnavailable, match="too many clients"):
            BridgeClient(port=server.port, token=TOKEN).connect()
        c.request("telemetry")


@FUZZ
@given(st.binary(min_size=1, max_size=300))
def test_random_frames_after_handshake_never_break_the_server(shared_server, data):
    sock = raw_connect(shared_server)
    sock.sendall(frame(data))
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] in ("error", "ok")
    if reply["type"] == "error":
        assert reply["reason"]
    sock.close()
    still_serves(shared_server)


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_before_handshake_never_break_the_server(shared_server, data):
    sock = socket.create_connection(shared_server.address, timeout=2)
    try:  # the server may already have closed on a bad length: that is fine too
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
    except OSError:
        pass
    sock.close()
    still_serves(shared_server)


@FUZZ
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_random_json_objects_get_a_reply_with_a_reason(shared_server, obj):
    sock = raw_connect(shared_server)
    sock.sendall(frame(json.dumps(obj).encode()))
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] in ("error", "ok")
    sock.close()


# -- the token file ------------------------------------------------------------------------------


def test_token_generated_once_with_private_mode():
    assert protocol.load_token(create=False) is None
    token = protocol.load_token()
    assert token is not None and len(token) == 64
    assert protocol.load_token() == token
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(protocol.token_path()).st_mode) == 0o600


def test_token_env_override_and_malformed_file(monkeypatch):
    protocol.token_path().parent.mkdir(parents=True)
    protocol.token_path().write_text("\n")
    with pytest.raises(ValueError, match="delete it"):
        protocol.load_token()
    monkeypatch.setenv("GTA5DRIVE_BRIDGE_TOKEN", "abc")
    assert protocol.load_token() == "abc"


def test_client_uses_the_token_file(monkeypatch):
    token = protocol.load_token()
    assert token is not None
    with EchoServer(token=token) as server, BridgeClient(port=server.port) as client:
        client.request("telemetry")
