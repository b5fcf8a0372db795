"""The bridge under hostile or stalled peers, on loopback, with bounded waits.

Each test states the bound the issue sets (a valid client connects within 2 s despite 8 dribbling
sockets; a stalled subscriber delays nobody by more than 1 s; ``request(timeout=T)`` ends within
T + 0.5 s) and asserts only that bound.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gta_env.gta5 import probe, protocol
from gta_env.gta5.bridge import BridgeClient, BridgeError, BridgeTimeout, BridgeUnavailable

from .fakes import TOKEN, EchoServer, fake_telemetry


def dribble(sock: socket.socket, data: bytes, stop: threading.Event, every: float) -> None:
    for i in range(len(data)):
        if stop.wait(every):
            return
        with contextlib.suppress(OSError):
            sock.sendall(data[i : i + 1])


def test_dribbling_unauthenticated_sockets_do_not_lock_out_a_valid_client():
    hello = protocol.encode(
        {"type": "hello", "id": 0, "version": 2, "nonce": protocol.make_nonce()}
    )
    stop = threading.Event()
    with EchoServer() as server:
        squatters = [socket.create_connection(server.address, timeout=5) for _ in range(8)]
        threads = [
            threading.Thread(target=dribble, args=(s, hello, stop, 0.5), daemon=True)
            for s in squatters
        ]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)  # the dribblers are in their handshakes
            t0 = time.monotonic()
            with BridgeClient(port=server.port, token=TOKEN, connect_timeout=2.0) as client:
                client.request("telemetry")
            assert time.monotonic() - t0 < 2.0
            # ... and the handshake deadline is one deadline: dribblers are gone after it.
            time.sleep(server.handshake_timeout + 0.5)
            assert any("did not complete within the timeout" in r for r in server.recent_rejections)
        finally:
            stop.set()
            for s in squatters:
                s.close()


def test_many_unauthenticated_sockets_only_evict_each_other():
    with EchoServer(max_pending=4) as server:
        idle = [socket.create_connection(server.address, timeout=5) for _ in range(12)]
        try:
            with BridgeClient(port=server.port, token=TOKEN, connect_timeout=2.0) as client:
                client.request("telemetry")
            assert any("evicted" in r for r in server.recent_rejections)
        finally:
            for s in idle:
                s.close()


class Squatter:
    """Something else listening on the bridge port: records every byte it is sent.

    ``mode``: ``"silent"`` (never answers), ``"fake"`` (answers with a made-up challenge).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received = bytearray()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.1)
        answered = False
        with sock:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.received += data
                if self.mode == "fake" and not answered:
                    answered = True
                    challenge = {
                        "type": "challenge",
                        "id": 0,
                        "version": 2,
                        "nonce": protocol.make_nonce(),
                        "proof": protocol.make_nonce(),
                    }
                    with contextlib.suppress(OSError):
                        sock.sendall(protocol.encode(challenge))

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)


@pytest.mark.parametrize("mode", ["silent", "fake"])
def test_a_squatter_never_receives_the_token_or_a_usable_proof(mode):
    squatter = Squatter(mode)
    try:
        probe(port=squatter.port, timeout=0.3)
        with pytest.raises(BridgeUnavailable) as info:
            BridgeClient(port=squatter.port, token=TOKEN, connect_timeout=0.5).connect()
        if mode == "fake":
            assert "could not prove" in str(info.value)
        time.sleep(0.2)
    finally:
        squatter.close()
    captured = bytes(squatter.received)
    assert captured, "the squatter saw the hellos"
    assert TOKEN.encode() not in captured and TOKEN.encode().hex().encode() not in captured
    assert b'"auth"' not in captured and b"proof" not in captured
    # Replaying everything it captured to the real bridge does not authenticate.
    with EchoServer() as server:
        sock = socket.create_connection(server.address, timeout=2)
        with sock:
            with contextlib.suppress(OSError):
                sock.sendall(captured)
            replies = []
            with contextlib.suppress(OSError, EOFError, protocol.ProtocolError):
                while True:
                    replies.append(protocol.decode_payload(protocol.read_frame(sock)))
        assert all(r["type"] != "welcome" for r in replies)


def test_a_stalled_subscriber_does_not_delay_another_client():
    with EchoServer() as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(server.address)
        stalled.settimeout(2)
        from .test_gta5_protocol import handshake

        assert handshake(stalled)["type"] == "welcome"
        stalled.sendall(protocol.encode({"type": "subscribe", "id": 1, "enabled": True}))
        # From here on the subscriber never reads again.
        worst = 0.0
        with BridgeClient(port=server.port, token=TOKEN) as client:
            # Until the server drops the subscriber (its send buffer fills within a few hundred
            # frames); the deadline only bounds a failing run, on a loaded machine it takes longer.
            end = time.monotonic() + 20.0
            while time.monotonic() < end:
                t0 = time.monotonic()
                client.request("step", frames=1)
                worst = max(worst, time.monotonic() - t0)
                if server.recent_drops:
                    break
        stalled.close()
        assert worst < 1.0, f"a request waited {worst:.2f} s behind the stalled subscriber"
        assert server.recent_drops, "the stalled subscriber was dropped"


# -- the client's deadline ------------------------------------------------------------------


def evil_server(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    """A server that does the v2 handshake properly, then ``behaviour(sock)``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with sock, contextlib.suppress(OSError, EOFError, protocol.ProtocolError):
                sock.settimeout(5)
                hello = protocol.decode_payload(protocol.read_frame(sock))
                nonce = protocol.make_nonce()
                proof = protocol.server_proof(TOKEN, hello["nonce"], nonce)
                sock.sendall(
                    protocol.encode(
                        {"type": "challenge", "id": 0, "version": 2, "nonce": nonce, "proof": proof}
                    )
                )
                protocol.read_frame(sock)
                sock.sendall(
                    protocol.encode({"type": "welcome", "id": 0, "version": 2, "server": "evil"})
                )
                protocol.read_frame(sock)  # the request
                behaviour(sock)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def _silent(sock: socket.socket) -> None:
    time.sleep(3)


def _dribble_bytes(sock: socket.socket) -> None:
    data = protocol.encode({"type": "ok", "id": 1, "telemetry": fake_telemetry()})
    for i in range(len(data)):
        sock.sendall(data[i : i + 1])
        time.sleep(0.05)


def _flood_pushes(sock: socket.socket) -> None:
    push = protocol.encode({"type": "telemetry", "id": 0, "telemetry": fake_telemetry()})
    end = time.monotonic() + 3
    while time.monotonic() < end:
        sock.sendall(push)
        time.sleep(0.001)


def _half_header(sock: socket.socket) -> None:
    sock.sendall(b"\x00\x00")
    time.sleep(3)


@pytest.mark.parametrize("behaviour", [_silent, _dribble_bytes, _flood_pushes, _half_header])
def test_request_ends_within_its_deadline_whatever_the_server_sends(behaviour):
    for port in evil_server(behaviour):
        client = BridgeClient(port=port, token=TOKEN, connect_timeout=2.0)
        client.connect()
        t0 = time.monotonic()
        with pytest.raises(BridgeTimeout, match="within 0.5 s"):
            client.request("telemetry", timeout=0.5)
        assert time.monotonic() - t0 < 0.5 + 0.5
        assert not client.connected


def test_connect_has_one_deadline_against_a_dribbling_server():
    def slow_handshake() -> Iterator[int]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def run() -> None:
            with contextlib.suppress(OSError):
                sock, _ = listener.accept()
                with sock:
                    for byte in b"\x00\x00\x00\x10{":
                        sock.sendall(bytes([byte]))
                        time.sleep(0.3)
                    time.sleep(2)

        threading.Thread(target=run, daemon=True).start()
        try:
            yield listener.getsockname()[1]
        finally:
            listener.close()

    for port in slow_handshake():
        t0 = time.monotonic()
        with pytest.raises(BridgeError):
            BridgeClient(port=port, token=TOKEN, connect_timeout=0.5).connect()
        assert time.monotonic() - t0 < 1.0
