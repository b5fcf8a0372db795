"""The C# mod: it compiles against the ScriptHookVDotNet stubs, and its bridge speaks our protocol.

Needs Debian's ``mono-mcs`` (``mcs``) and, for the interop test, ``mono``; skipped otherwise.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from gta_env.gta5 import probe, protocol
from gta_env.gta5.bridge import BridgeClient, BridgeUnavailable, CommandFailed

MOD = Path(__file__).resolve().parents[2] / "gta_env" / "gta5" / "mod"
needs_mcs = pytest.mark.skipif(
    shutil.which("mcs") is None, reason="needs mcs: apt-get install -y mono-mcs"
)


def mcs(*args: str) -> None:
    result = subprocess.run(
        ["mcs", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_mcs
def test_mod_compiles_against_the_stubs(tmp_path):
    stub = tmp_path / "ScriptHookVDotNet3.dll"
    mcs(
        "-target:library",
        "-nowarn:67",
        f"-out:{stub}",
        str(MOD / "stubs" / "ScriptHookVDotNet3.cs"),
    )
    sources = [str(MOD / name) for name in ("Gta5DriveMod.cs", "Bridge.cs", "MiniJson.cs")]
    mcs(
        "-target:library",
        "-warnaserror",
        f"-r:{stub}",
        f"-out:{tmp_path / 'Gta5DriveMod.dll'}",
        *sources,
    )
    assert (tmp_path / "Gta5DriveMod.dll").stat().st_size > 0


@pytest.fixture(scope="module")
def csharp_bridge(tmp_path_factory):
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.skip("needs mcs and mono: apt-get install -y mono-mcs mono-runtime")
    out = tmp_path_factory.mktemp("selftest") / "selftest.exe"
    mcs(
        "-warnaserror",
        f"-out:{out}",
        *(str(MOD / p) for p in ("selftest/BridgeSelfTest.cs", "Bridge.cs", "MiniJson.cs")),
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    token = "csharp-token"
    proc = subprocess.Popen(["mono", str(out), str(port), token], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield port, token
    proc.kill()
    proc.wait()


def test_python_client_talks_to_the_csharp_bridge(csharp_bridge):
    port, token = csharp_bridge
    assert probe(port=port, timeout=2.0)
    with BridgeClient(port=port, token=token) as client:
        assert client.welcome is not None and client.welcome["server"] == "gta5drive-mod"
        client.request("subscribe", enabled=True)
        reply = client.request("step", frames=2)
        assert reply["telemetry"]["frame"] == 2 and reply["telemetry"]["speed"] == 3.25
        assert client.request("set_camera", camera="cinematic")["camera"] == "cinematic"
        with pytest.raises(CommandFailed, match="not in the self test"):
            client.request("weather", weather="RAIN")
        assert client.request("telemetry")["telemetry"]["frame"] == 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"garbage", "not valid JSON"),
        (b'{"type":"step","id":1,"frames":0}', "step.frames must be in"),
        (b'{"type":"fly","id":1}', "unknown request type"),
        (b'{"type":"step","id":1,"speed":1}', "unknown field"),
        (b'{"type":"teleport","id":2,"x":1.0}', "either both x and y"),
        (b'{"type":"step","id":1,"id":2}', "duplicate key"),
        (b"[" * 100 + b"]" * 100, "nested too deeply"),
    ],
)
def test_csharp_bridge_rejects_like_the_python_one(csharp_bridge, payload, reason):
    port, token = csharp_bridge
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(protocol.encode({"type": "hello", "id": 0, "version": 1, "token": token}))
    assert protocol.decode_payload(protocol.read_frame(sock))["type"] == "welcome"
    sock.sendall(struct.pack(">I", len(payload)) + payload)
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] == "error" and reason in reply["reason"], reply
    sock.sendall(struct.pack(">I", protocol.MAX_MESSAGE_BYTES + 1))
    assert "outside 1.." in protocol.decode_payload(protocol.read_frame(sock))["reason"]
    sock.close()
    with BridgeClient(port=port, token=token) as client:
        client.request("telemetry")


def test_csharp_bridge_refuses_a_wrong_token(csharp_bridge):
    port, _ = csharp_bridge
    with pytest.raises(BridgeUnavailable, match="wrong token"):
        BridgeClient(port=port, token="guess").connect()
