"""Bridge endpoints: the client the environment uses and a Python server base class.

The real server is the C# mod running inside GTA V (``mod/Gta5DriveMod.cs``); the Python
:class:`BridgeServer` implements the same side of the protocol for tests and for the embedded world
posing as the game (:mod:`gta_env.gta5.posing`). A subclass only writes ``handle_<command>``
methods; the base class does binding (loopback only), the handshake, the token, framing, size caps,
validation, error replies, logging of every rejection and telemetry pushes.

Handlers run one at a time on a single *dispatch thread*, like the mod's commands run on the game's
script thread: a server may own thread-affine objects (a renderer, a window) if it creates them in
:meth:`BridgeServer.on_start`.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import logging
import queue
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from gta_env.gta5 import protocol
from gta_env.gta5.protocol import (
    DEFAULT_PORT,
    MAX_ERRORS_PER_CONNECTION,
    PROTOCOL_VERSION,
    ProtocolError,
)

log = logging.getLogger("gta_env.gta5.bridge")


class BridgeError(RuntimeError):
    """Base class of bridge failures seen by the client."""


class BridgeUnavailable(BridgeError):
    """No bridge answered, or it refused the handshake."""


class CommandFailed(BridgeError):
    """The server answered a request with an error reply (``reason`` holds its words)."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"the game refused {command!r}: {reason}")
        self.command = command
        self.reason = reason


class CommandError(Exception):
    """Raised by a server handler to send an error reply with this reason."""


_START_HINT = (
    "start GTA V with ScriptHookV, ScriptHookVDotNet and the gta5drive mod loaded "
    "(docs/gta5.md, 'Install the mod'), drive into story mode, then retry; "
    "or use backend='sim' for the embedded world"
)


# --------------------------------------------------------------------------------------------
# Client.


class BridgeClient:
    """The environment's end of the bridge (synchronous request/reply).

    Args:
        host: loopback address of the bridge.
        port: its TCP port.
        token: shared secret; ``None`` reads (or creates) the token file, see
            :func:`~gta_env.gta5.protocol.load_token`.
        timeout: seconds to wait for any reply.
        connect_timeout: seconds to wait for the TCP connection and the handshake.
        client_name: sent in ``hello`` for the server's logs.

    Raises:
        ValueError: when ``host`` is not a loopback address.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        client_name: str = "gta5drive",
    ) -> None:
        self.host = protocol.require_loopback(host)
        self.port = port
        self._token = token
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.client_name = client_name
        self._sock: socket.socket | None = None
        self._next_id = 1
        self.welcome: dict[str, Any] | None = None
        self.latest_telemetry: dict[str, Any] | None = None
        """The last telemetry pushed by the server (after ``subscribe``)."""

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def window(self) -> dict[str, int] | None:
        """The game image's screen rectangle, when the server announced it."""
        return None if self.welcome is None else self.welcome.get("window")

    def connect(self) -> dict[str, Any]:
        """Open the connection and do the handshake; returns the ``welcome`` message.

        Raises:
            BridgeUnavailable: when nothing listens, the handshake times out or is refused.
        """
        if self._sock is not None:
            assert self.welcome is not None
            return self.welcome
        token = self._token if self._token is not None else protocol.load_token()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise BridgeUnavailable(
                f"no game bridge on {self.host}:{self.port} ({exc}); {_START_HINT}"
            ) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = {
                "type": "hello",
                "id": 0,
                "version": PROTOCOL_VERSION,
                "token": token,
                "client": self.client_name,
            }
            sock.sendall(protocol.encode(hello))
            reply = protocol.decode_payload(protocol.read_frame(sock))
            protocol.validate_reply(reply)
        except (OSError, EOFError, ProtocolError) as exc:
            sock.close()
            raise BridgeUnavailable(
                f"the game bridge on {self.host}:{self.port} did not complete the handshake "
                f"({exc}); {_START_HINT}"
            ) from exc
        if reply["type"] != "welcome":
            sock.close()
            reason = reply.get("reason", f"unexpected {reply['type']!r}")
            hint = (
                f"check that the token in {protocol.token_path()} matches the mod's"
                if "token" in reason
                else "update the mod and the Python package to the same version"
            )
            raise BridgeUnavailable(f"the game bridge refused the handshake: {reason}; {hint}")
        if reply["version"] != PROTOCOL_VERSION:
            sock.close()
            raise BridgeUnavailable(
                f"the game bridge speaks protocol {reply['version']}, this package speaks "
                f"{PROTOCOL_VERSION}; update the mod and the Python package to the same version"
            )
        sock.settimeout(self.timeout)
        self._sock = sock
        self.welcome = reply
        return reply

    def request(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send one command and wait for its reply.

        Returns:
            The ``ok`` reply's fields (``type`` and ``id`` removed).

        Raises:
            ProtocolError: when the request itself is invalid (a bug in the caller).
            CommandFailed: when the server answered with an error.
            BridgeError: when the connection broke or the server sent nonsense (the
                connection is then closed).
        """
        if self._sock is None:
            self.connect()
        sock = self._sock
        assert sock is not None
        request_id = self._next_id
        self._next_id = self._next_id % (2**31 - 1) + 1
        message = {"type": command, "id": request_id, **fields}
        protocol.validate_request(message)
        try:
            sock.sendall(protocol.encode(message))
            while True:
                reply = protocol.decode_payload(protocol.read_frame(sock))
                protocol.validate_reply(reply, command if reply["type"] == "ok" else None)
                if reply["type"] == "telemetry":
                    self.latest_telemetry = reply["telemetry"]
                    continue
                if reply["id"] == request_id:
                    break
                if reply["type"] == "error":
                    # An error for an earlier message: the server saw garbage from us.
                    log.warning("bridge reported an error for request %s: %s", reply["id"], reply)
                    continue
                raise ProtocolError(f"reply id {reply['id']} does not match request {request_id}")
        except (OSError, EOFError, ProtocolError) as exc:
            self.close()
            raise BridgeError(
                f"the game bridge connection failed during {command!r}: {exc}"
            ) from exc
        if reply["type"] == "error":
            raise CommandFailed(command, reply["reason"])
        body = {k: v for k, v in reply.items() if k not in ("type", "id")}
        if "telemetry" in body:
            self.latest_telemetry = body["telemetry"]
        return body

    def close(self) -> None:
        """Say goodbye (best effort) and close the socket."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.settimeout(0.2)
            sock.sendall(protocol.encode({"type": "bye", "id": self._next_id}))
        except OSError:
            pass
        sock.close()

    def __enter__(self) -> BridgeClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 0.2) -> bool:
    """Whether a bridge answers a version handshake on ``host:port`` within ``timeout`` s.

    A server that answers with an error (wrong token, other version) still counts: something is
    there, and connecting will say what is wrong. Never creates the token file.
    """
    try:
        host = protocol.require_loopback(host)
        token = protocol.load_token(create=False) or "probe"
    except (ValueError, OSError):
        return False
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            hello = {"type": "hello", "id": 0, "version": PROTOCOL_VERSION, "token": token}
            sock.sendall(protocol.encode(hello))
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            reply = protocol.decode_payload(protocol.read_frame(sock))
            protocol.validate_reply(reply)
            if reply["type"] == "welcome":
                sock.sendall(protocol.encode({"type": "bye", "id": 1}))
            return reply["type"] == "welcome" or "version" in reply
    except (OSError, EOFError, ProtocolError):
        return False


# --------------------------------------------------------------------------------------------
# Server base class.


class _Connection:
    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.lock = threading.Lock()
        self.subscribed = False
        self.errors = 0
        self.closed = False

    def send(self, message: Mapping[str, Any]) -> None:
        data = protocol.encode(message)
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def close(self) -> None:
        with self.lock:
            self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class BridgeServer:
    """Base class of Python bridge servers (the mod's side of the protocol).

    Subclasses implement ``handle_<command>(**fields) -> dict`` for the commands they support
    (see :data:`~gta_env.gta5.protocol.REQUESTS`); the returned dict is merged into the ``ok``
    reply. ``hello``, ``subscribe`` and ``bye`` are handled here. A handler raises
    :class:`CommandError` to answer with an error; a missing handler answers "not supported".

    Args:
        token: the shared secret clients must present.
        host: loopback address to bind (anything else is refused).
        port: TCP port; 0 picks a free one (see :attr:`address`).
        max_clients: concurrent connections; more are refused with a reason.
        handshake_timeout: seconds a new connection has to send a valid ``hello``.
        name: server name sent in ``welcome``.

    Raises:
        ValueError: when ``host`` is not loopback or the token is empty.
    """

    def __init__(
        self,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_clients: int = 4,
        handshake_timeout: float = 2.0,
        name: str = "gta5drive-python",
    ) -> None:
        if not token:
            raise ValueError("BridgeServer needs a non-empty token (see protocol.load_token)")
        self.host = protocol.require_loopback(host)
        self._requested_port = port
        self._token = token.encode("utf-8")
        self.max_clients = max_clients
        self.handshake_timeout = handshake_timeout
        self.name = name
        self.window: dict[str, int] | None = None
        """Screen rectangle of the game image, announced in ``welcome`` when set."""
        self.recent_rejections: collections.deque[str] = collections.deque(maxlen=256)
        """The last rejection reasons (also logged at WARNING)."""
        self._listener: socket.socket | None = None
        self._connections: set[_Connection] = set()
        self._conn_lock = threading.Lock()
        self._jobs: queue.Queue[tuple[_Connection, dict[str, Any]] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually bound."""
        if self._listener is None:
            raise RuntimeError("the server is not started; call start() first")
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> BridgeServer:
        """Bind, run :meth:`on_start` on the dispatch thread and start accepting."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._requested_port))
        bound = listener.getsockname()[0]
        try:
            protocol.require_loopback(bound)
        except ValueError:  # pragma: no cover - defence in depth
            listener.close()
            raise
        listener.listen(8)
        listener.settimeout(0.2)
        self._listener = listener
        dispatcher = threading.Thread(
            target=self._dispatch_loop, name="bridge-dispatch", daemon=True
        )
        dispatcher.start()
        self._started.wait()
        if self._start_error is not None:
            listener.close()
            self._listener = None
            raise RuntimeError(f"{type(self).__name__}.on_start failed: {self._start_error}") from (
                self._start_error
            )
        acceptor = threading.Thread(target=self._accept_loop, name="bridge-accept", daemon=True)
        acceptor.start()
        self._threads += [dispatcher, acceptor]
        log.info("bridge server %s listening on %s:%d", self.name, *self.address)
        return self

    def close(self) -> None:
        """Stop accepting, close every connection and run :meth:`on_stop`."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._jobs.put(None)
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()
        for thread in self._threads:
            thread.join(timeout=5.0)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> BridgeServer:
        return self.start() if self._listener is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks ------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Runs once on the dispatch thread before the first connection is accepted."""

    def on_stop(self) -> None:
        """Runs once on the dispatch thread when the server closes."""

    def on_idle(self) -> None:
        """Runs on the dispatch thread about every 50 ms while no command is waiting."""

    def handle(self, command: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Run one validated command (on the dispatch thread); returns the reply payload."""
        method = getattr(self, f"handle_{command}", None)
        if method is None:
            raise CommandError(f"{command!r} is not supported by the {self.name} server")
        result = method(**fields)
        return {} if result is None else dict(result)

    def push_telemetry(self, telemetry: Mapping[str, Any]) -> None:
        """Send ``telemetry`` to every subscribed connection (call once per game frame)."""
        message = {"type": "telemetry", "id": 0, "telemetry": dict(telemetry)}
        with self._conn_lock:
            connections = [c for c in self._connections if c.subscribed]
        for conn in connections:
            conn.send(message)

    # -- internals --------------------------------------------------------------------------

    def _reject(
        self, conn: _Connection | None, peer: str, reason: str, request_id: int = 0
    ) -> None:
        self.recent_rejections.append(reason)
        log.warning("bridge rejected a message from %s: %s", peer, reason)
        if conn is not None:
            conn.send(
                {"type": "error", "id": request_id, "reason": reason, "version": PROTOCOL_VERSION}
            )

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            peer = f"{addr[0]}:{addr[1]}"
            try:
                protocol.require_loopback(addr[0])
            except ValueError:  # pragma: no cover - the bind makes this impossible
                self._reject(None, peer, "connection from a non-loopback address")
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, peer)
            with self._conn_lock:
                full = len(self._connections) >= self.max_clients
                if not full:
                    self._connections.add(conn)
            if full:
                self._reject(conn, peer, f"too many clients (max {self.max_clients})")
                conn.close()
                continue
            thread = threading.Thread(
                target=self._serve_connection, args=(conn,), name=f"bridge-{peer}", daemon=True
            )
            thread.start()

    def _serve_connection(self, conn: _Connection) -> None:
        try:
            if self._handshake(conn):
                self._read_requests(conn)
        finally:
            with self._conn_lock:
                self._connections.discard(conn)
            conn.close()

    def _handshake(self, conn: _Connection) -> bool:
        conn.sock.settimeout(self.handshake_timeout)
        try:
            message = protocol.decode_payload(protocol.read_frame(conn.sock))
            if message["type"] != "hello":
                raise ProtocolError(
                    f"the first message must be 'hello', got {message['type'][:40]!r}"
                )
            protocol.validate_request(message)
        except TimeoutError:
            self._reject(conn, conn.peer, "no hello within the handshake timeout")
            return False
        except (EOFError, OSError) as exc:
            self._reject(None, conn.peer, f"handshake failed: {exc}")
            return False
        except ProtocolError as exc:
            self._reject(conn, conn.peer, f"bad hello: {exc}")
            return False
        if message["version"] != PROTOCOL_VERSION:
            self._reject(
                conn,
                conn.peer,
                f"protocol version {message['version']} is not supported (server speaks {PROTOCOL_VERSION})",
            )
            return False
        if not hmac.compare_digest(message["token"].encode("utf-8"), self._token):
            self._reject(conn, conn.peer, "wrong token")
            return False
        welcome: dict[str, Any] = {
            "type": "welcome",
            "id": 0,
            "version": PROTOCOL_VERSION,
            "server": self.name,
        }
        if self.window is not None:
            welcome["window"] = dict(self.window)
        conn.send(welcome)
        conn.sock.settimeout(None)
        return True

    def _read_requests(self, conn: _Connection) -> None:
        while not self._stopping.is_set() and not conn.closed:
            try:
                payload = protocol.read_frame(conn.sock)
            except EOFError as exc:
                if str(exc) != "connection closed":
                    self._reject(None, conn.peer, str(exc))
                return
            except ProtocolError as exc:
                self._reject(conn, conn.peer, f"{exc}; closing the connection")
                return
            except OSError:
                return
            request_id = 0
            try:
                message = protocol.decode_payload(payload)
                request_id = message["id"]
                protocol.validate_request(message)
                if message["type"] == "hello":
                    raise ProtocolError("'hello' is only valid as the first message")
            except ProtocolError as exc:
                self._reject(conn, conn.peer, str(exc), request_id)
                conn.errors += 1
                if conn.errors >= MAX_ERRORS_PER_CONNECTION:
                    self._reject(
                        conn, conn.peer, "too many invalid messages; closing the connection"
                    )
                    return
                continue
            if message["type"] == "bye":
                return
            self._jobs.put((conn, message))

    def _dispatch_loop(self) -> None:
        try:
            self.on_start()
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=0.05)
                except queue.Empty:
                    if self._stopping.is_set():
                        break
                    self._safe_idle()
                    continue
                if job is None:
                    break
                conn, message = job
                if conn.closed:
                    continue
                self._run_job(conn, message)
        finally:
            try:
                self.on_stop()
            except Exception:  # noqa: BLE001 - closing must not raise
                log.exception("bridge server on_stop failed")

    def _safe_idle(self) -> None:
        try:
            self.on_idle()
        except Exception:  # noqa: BLE001 - an idle hook must not kill the server
            log.exception("bridge server on_idle failed")

    def _run_job(self, conn: _Connection, message: dict[str, Any]) -> None:
        command = message["type"]
        fields = {k: v for k, v in message.items() if k not in ("type", "id")}
        try:
            if command == "subscribe":
                conn.subscribed = fields["enabled"]
                payload: dict[str, Any] = {}
            else:
                payload = self.handle(command, fields)
            reply = {"type": "ok", "id": message["id"], **payload}
            protocol.validate_reply(reply, command)
        except CommandError as exc:
            self._reject(conn, conn.peer, f"{command}: {exc}", message["id"])
            return
        except ProtocolError as exc:
            log.error("bridge server built an invalid reply to %s: %s", command, exc)
            self._reject(conn, conn.peer, f"{command}: server error: {exc}", message["id"])
            return
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("bridge server handler for %s failed", command)
            self._reject(
                conn,
                conn.peer,
                f"{command}: server error: {type(exc).__name__}: {exc}",
                message["id"],
            )
            return
        conn.send(reply)
