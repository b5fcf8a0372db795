"""The C# mod: it compiles against stubs of the real SHVDN v3.6.0 signatures, the way SHVDN
compiles scripts (one file, one assembly, C# 5, warnings as errors), and its bridge speaks our
protocol (the v2 handshake against the Python client).

Needs Debian's ``mono-mcs`` (``mcs``) and, for the interop test, ``mono``; skipped otherwise.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from gta_env.gta5 import probe, protocol
from gta_env.gta5.bridge import BridgeClient, BridgeUnavailable, CommandFailed

from .test_gta5_protocol import handshake

ROOT = Path(__file__).resolve().parents[2]
MOD = ROOT / "gta_env" / "gta5" / "mod"
SCRIPT = MOD / "Gta5DriveMod.3.cs"
HASHES = [
    ROOT.parent / "shared" / "data" / "shvdn-3.6.0-native-hashes.tsv",
    Path("/work/shared/data/shvdn-3.6.0-native-hashes.tsv"),
]
MONO_DRAWING = Path("/usr/lib/mono/4.5/System.Drawing.dll")
needs_mcs = pytest.mark.skipif(
    shutil.which("mcs") is None, reason="needs mcs: apt-get install -y mono-mcs"
)


def mcs(*args: str) -> None:
    result = subprocess.run(
        ["mcs", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def build_stubs(out: Path) -> list[str]:
    """Compile the SHVDN stubs (and System.Drawing where mono lacks it); the -r: arguments."""
    refs = ["-r:System.Core.dll"]
    if MONO_DRAWING.exists():
        refs.append(f"-r:{MONO_DRAWING}")
    else:
        drawing = out / "System.Drawing.dll"
        mcs("-target:library", f"-out:{drawing}", str(MOD / "stubs" / "SystemDrawing.cs"))
        refs.append(f"-r:{drawing}")
    stub = out / "ScriptHookVDotNet3.dll"
    # -nowarn:67: the stub's events are never raised (the stub only, never the mod).
    mcs(
        "-target:library",
        "-nowarn:67",
        *refs,
        f"-out:{stub}",
        str(MOD / "stubs" / "ScriptHookVDotNet3.cs"),
    )
    return [f"-r:{stub}", *refs]


@needs_mcs
def test_mod_compiles_as_shvdn_compiles_it(tmp_path):
    # SHVDN compiles each scripts\*.cs on its own (CodeDom: C# 5, /unsafe, System, System.Core,
    # System.Drawing, ... and the API the ".3.cs" name selects): the one file must build alone.
    refs = build_stubs(tmp_path)
    out = tmp_path / "Gta5DriveMod.dll"
    mcs(
        "-target:library",
        "-langversion:5",
        "-unsafe",
        "-warnaserror",
        *refs,
        f"-out:{out}",
        str(SCRIPT),
    )
    assert out.stat().st_size > 0
    assert [p.name for p in MOD.glob("*.cs")] == ["Gta5DriveMod.3.cs"], "install is one file"


def test_every_native_the_mod_calls_exists_in_shvdn_3_6_0():
    table = next((p for p in HASHES if p.exists()), None)
    if table is None:
        pytest.skip("needs shared/data/shvdn-3.6.0-native-hashes.tsv")
    real = {}
    for line in table.read_text().splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        name, value = line.split("\t")[:2]
        real[name] = value.lower()
    used = set(re.findall(r"Hash\.([A-Z0-9_]+)", SCRIPT.read_text()))
    assert used and not used - set(real), f"not in SHVDN 3.6.0: {sorted(used - set(real))}"
    stub = (MOD / "stubs" / "ScriptHookVDotNet3.cs").read_text()
    declared = dict(re.findall(r"^\s+([A-Z0-9_]+) = (0x[0-9A-Fa-f]+),$", stub, re.M))
    assert declared, "the stub declares Hash members"
    for name, value in declared.items():
        assert real.get(name) == value.lower(), (
            f"stub Hash.{name} = {value}, SHVDN 3.6.0: {real.get(name)}"
        )


@pytest.fixture(scope="module")
def csharp_bridge(tmp_path_factory):
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        pytest.skip("needs mcs and mono: apt-get install -y mono-mcs mono-runtime")
    out = tmp_path_factory.mktemp("selftest") / "selftest.exe"
    mcs(
        "-langversion:5",
        "-warnaserror",
        "-define:GTA5DRIVE_SELFTEST",
        f"-out:{out}",
        str(SCRIPT),
        str(MOD / "selftest" / "BridgeSelfTest.cs"),
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
    assert handshake(sock, token)["type"] == "welcome"
    sock.sendall(struct.pack(">I", len(payload)) + payload)
    reply = protocol.decode_payload(protocol.read_frame(sock))
    assert reply["type"] == "error" and reason in reply["reason"], reply
    sock.sendall(struct.pack(">I", protocol.MAX_MESSAGE_BYTES + 1))
    assert "outside 1.." in protocol.decode_payload(protocol.read_frame(sock))["reason"]
    sock.close()
    with BridgeClient(port=port, token=token) as client:
        client.request("telemetry")


def test_csharp_bridge_refuses_a_wrong_token(csharp_bridge):
    port, token = csharp_bridge
    # The Python client finds out first: the mod cannot prove it knows "guess".
    with pytest.raises(BridgeUnavailable, match="wrong token"):
        BridgeClient(port=port, token="guess").connect()
    # And the mod refuses a client whose proof does not match.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reply = handshake(sock, "guess")
    assert reply["type"] == "error" and "wrong token" in reply["reason"]


def test_csharp_bridge_handshake_has_one_deadline_and_a_pending_cap(csharp_bridge):
    import threading
    import time

    port, token = csharp_bridge
    hello = protocol.encode(
        {"type": "hello", "id": 0, "version": 2, "nonce": protocol.make_nonce()}
    )
    stop = threading.Event()

    def dribble(sock: socket.socket) -> None:
        for i in range(len(hello)):
            if stop.wait(0.5):
                return
            try:
                sock.sendall(hello[i : i + 1])
            except OSError:
                return

    squatters = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    for s in squatters:
        threading.Thread(target=dribble, args=(s,), daemon=True).start()
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        with BridgeClient(port=port, token=token, connect_timeout=2.0) as client:
            client.request("telemetry")
        assert time.monotonic() - t0 < 2.0
    finally:
        stop.set()
        for s in squatters:
            s.close()
