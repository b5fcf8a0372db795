"""Bridge endpoints: the client the environment uses and a Python server base class.

The real server is the C# mod running inside GTA V (``mod/Gta5DriveMod.cs``); the Python
:class:`BridgeServer` implements the same side of the protocol for tests and for the embedded world
posing as the game (:mod:`gta_env.gta5.posing`). A subclass only writes ``handle_<command>``
methods; the base class does binding (loopback only), the handshake, the token, framing, size caps,
validation, error replies, logging of every rejection and telemetry pushes.

Every client has a bounded send queue drained by its own writer thread, so neither a handler nor a
telemetry push ever blocks on a socket: a client that stops reading is dropped, the others keep
their latency. Handlers run one at a time on a single *dispatch thread*, like the mod's commands run on the game's
script thread: a server may own thread-affine objects (a renderer, a window) if it creates them in
:meth:`BridgeServer.on_start`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
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


_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

_START_HINT = (
    "start GTA V with ScriptHookV, ScriptHookVDotNet and the gta5drive mod loaded "
    "(docs/gta5.md, 'Install the mod'), drive into story mode, then retry; "
    "or use backend='sim' for the embedded world"
)


# --------------------------------------------------------------------------------------------
# Client.


class BridgeTimeout(BridgeError):
    """A request got no reply within its deadline (the connection is then closed)."""


class BridgeClient:
    """The environment's end of the bridge (synchronous request/reply).

    The handshake is a mutual HMAC challenge-response (protocol version 2): the client checks that
    the server knows the token before it proves that it knows it too, and neither side ever sends
    the token, so whatever listens on the port learns nothing that lets it authenticate.

    Args:
        host: loopback address of the bridge.
        port: its TCP port.
        token: shared secret; ``None`` reads (or creates) the token file, see
            :func:`~gta_env.gta5.protocol.load_token`.
        timeout: default deadline in seconds for one request (the whole reply, however the
            server dribbles it), see :meth:`request`.
        connect_timeout: deadline in seconds for the TCP connection and the whole handshake.
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
            BridgeUnavailable: when nothing listens, the handshake times out or is refused, or
                the server cannot prove that it knows the token.
        """
        if self._sock is not None:
            assert self.welcome is not None
            return self.welcome
        token = self._token if self._token is not None else protocol.load_token()
        assert token is not None
        deadline = time.monotonic() + self.connect_timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise BridgeUnavailable(
                f"no game bridge on {self.host}:{self.port} ({exc}); {_START_HINT}"
            ) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nonce = protocol.make_nonce()
            hello = {
                "type": "hello",
                "id": 0,
                "version": PROTOCOL_VERSION,
                "nonce": nonce,
                "client": self.client_name,
            }
            sock.sendall(protocol.encode(hello))
            reply = _read_reply(sock, deadline)
            if reply["type"] == "challenge":
                expected = protocol.server_proof(token, nonce, reply["nonce"])
                if not protocol.proofs_match(expected, reply["proof"]):
                    sock.close()
                    raise BridgeUnavailable(
                        f"wrong token, or not the gta5drive mod: the server on "
                        f"{self.host}:{self.port} could not prove that it knows the token "
                        f"(nothing derived from the token was sent to it); check that the token "
                        f"in {protocol.token_path()} matches the mod's"
                    )
                proof = protocol.client_proof(token, nonce, reply["nonce"])
                sock.sendall(protocol.encode({"type": "auth", "id": 0, "proof": proof}))
                reply = _read_reply(sock, deadline)
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
        self._sock = sock
        self.welcome = reply
        return reply

    def request(
        self, command: str, *, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send one command and wait for its reply.

        Args:
            command: the request type (see :data:`~gta_env.gta5.protocol.REQUESTS`).
            timeout: deadline in seconds for the whole reply (default :attr:`timeout`); pushes
                and slow bytes do not extend it.
            **fields: the request's fields.

        Returns:
            The ``ok`` reply's fields (``type`` and ``id`` removed).

        Raises:
            ProtocolError: when the request itself is invalid (a bug in the caller).
            CommandFailed: when the server answered with an error.
            BridgeTimeout: when no reply came by the deadline (the connection is closed).
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
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            sock.settimeout(max(limit, 1e-3))
            sock.sendall(protocol.encode(message))
            while True:
                reply = protocol.decode_payload(protocol.read_frame(sock, deadline))
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
        except TimeoutError as exc:
            self.close()
            raise BridgeTimeout(
                f"the game bridge did not answer {command!r} within {limit:g} s ({exc}); the "
                "connection was closed (is the game paused in a menu or loading?)"
            ) from exc
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


def _read_reply(sock: socket.socket, deadline: float) -> dict[str, Any]:
    reply = protocol.decode_payload(protocol.read_frame(sock, deadline))
    protocol.validate_reply(reply)
    return reply


def probe(host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 0.2) -> bool:
    """Whether a bridge answers a version handshake on ``host:port`` within ``timeout`` s.

    Sends only ``hello`` (a fresh nonce, nothing derived from the token) and counts a
    ``challenge`` or a versioned ``error`` as "something is there": connecting will say what is
    wrong. Never reads or creates the token file.
    """
    try:
        host = protocol.require_loopback(host)
    except ValueError:
        return False
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            hello = {
                "type": "hello",
                "id": 0,
                "version": PROTOCOL_VERSION,
                "nonce": protocol.make_nonce(),
                "client": "probe",
            }
            sock.sendall(protocol.encode(hello))
            reply = _read_reply(sock, deadline)
            return reply["type"] == "challenge" or "version" in reply
    except (OSError, EOFError, ProtocolError):
        return False


# --------------------------------------------------------------------------------------------
# Server base class.


class _Connection:
    """One client of a server: a reader thread, and a bounded send queue drained by a writer.

    Nothing but the writer thread ever blocks on this socket's send side, so a client that stops
    reading cannot stall the dispatch thread or the other clients: its queue fills (or one write
    blocks for ``send_timeout``) and it is dropped.
    """

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        *,
        queue_limit: int,
        send_timeout: float,
        on_drop: Callable[[str, str], None] | None = None,
    ) -> None:
        self.sock = sock
        self._on_drop = on_drop
        self.peer = peer
        self.subscribed = False
        self.authenticated = False
        self.errors = 0
        self.closed = False
        self.accepted_at = time.monotonic()
        self.drop_reason: str | None = None
        self._send_timeout = send_timeout
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_limit)
        self._writer = threading.Thread(
            target=self._write_loop, name=f"bridge-send-{peer}", daemon=True
        )
        self._writer.start()

    def send(self, message: Mapping[str, Any]) -> bool:
        """Queue ``message``; never blocks. False (and the client is dropped) when it is full."""
        if self.closed:
            return False
        data = protocol.encode(message)
        try:
            self._outbox.put_nowait(data)
        except queue.Full:
            self.drop(f"its send queue is full ({self._outbox.maxsize} messages unread)")
            return False
        return True

    def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the queued messages are written."""
        end = time.monotonic() + timeout
        # unfinished_tasks counts messages queued or being written (task_done after the write).
        while self._outbox.unfinished_tasks and not self.closed and time.monotonic() < end:
            time.sleep(0.002)

    def _write_loop(self) -> None:
        while True:
            data = self._outbox.get()
            if data is None or self.closed:
                return
            try:
                self._send_all(data)
            except OSError as exc:
                self.drop(f"a write blocked or failed ({exc})")
                return
            self._outbox.task_done()

    def _send_all(self, data: bytes) -> None:
        # Never touches the socket's timeout (the reader owns it): waits for writability with
        # select and sends without blocking. A buffer full for send_timeout = client not reading.
        view = memoryview(data)
        end = time.monotonic() + self._send_timeout
        while view:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the client read nothing for {self._send_timeout:g} s")
            _, writable, _ = select.select([], [self.sock], [], remaining)
            if not writable:
                continue
            try:
                sent = self.sock.send(view, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            view = view[sent:]

    def drop(self, reason: str) -> None:
        if self.closed:
            return
        self.drop_reason = reason
        log.warning("bridge dropped client %s: %s", self.peer, reason)
        if self._on_drop is not None:
            self._on_drop(self.peer, reason)
        self.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(None)
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
        max_clients: concurrent authenticated clients; more are refused with a reason.
        handshake_timeout: seconds from accept to a completed handshake (one deadline).
        max_pending: connections still in the handshake; a new one evicts the oldest.
        send_queue_limit: messages queued per client before it is dropped.
        send_timeout: seconds one write to a client may block before it is dropped.
        max_queued_requests: requests waiting for the dispatch thread; more get a busy error.
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
        handshake_timeout: float = protocol.HANDSHAKE_TIMEOUT,
        max_pending: int = protocol.MAX_PENDING_HANDSHAKES,
        send_queue_limit: int = protocol.SEND_QUEUE_LIMIT,
        send_timeout: float = protocol.SEND_TIMEOUT,
        max_queued_requests: int = protocol.MAX_QUEUED_REQUESTS,
        name: str = "gta5drive-python",
    ) -> None:
        if not token:
            raise ValueError("BridgeServer needs a non-empty token (see protocol.load_token)")
        self.host = protocol.require_loopback(host)
        self._requested_port = port
        self._token = token
        self.max_clients = max_clients
        self.handshake_timeout = handshake_timeout
        self.max_pending = max_pending
        self.send_queue_limit = send_queue_limit
        self.send_timeout = send_timeout
        self.max_queued_requests = max_queued_requests
        self.name = name
        self.window: dict[str, int] | None = None
        """Screen rectangle of the game image, announced in ``welcome`` when set."""
        self.recent_rejections: collections.deque[str] = collections.deque(maxlen=256)
        """The last rejection reasons (also logged at WARNING)."""
        self.recent_drops: collections.deque[str] = collections.deque(maxlen=256)
        """The last clients dropped for not reading (peer and reason)."""
        self._listener: socket.socket | None = None
        self._connections: set[_Connection] = set()
        """Authenticated clients."""
        self._pending: list[_Connection] = []
        """Connections in the handshake, oldest first."""
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
        listener.listen(64)
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
            connections = list(self._connections) + list(self._pending)
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
            conn.send(message)  # queued; a client whose queue is full is dropped

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

    def _new_connection(self, sock: socket.socket, peer: str) -> _Connection:
        return _Connection(
            sock,
            peer,
            queue_limit=self.send_queue_limit,
            send_timeout=self.send_timeout,
            on_drop=lambda who, why: self.recent_drops.append(f"{who}: {why}"),
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
            conn = self._new_connection(sock, peer)
            evicted: _Connection | None = None
            with self._conn_lock:
                # Unauthenticated connections have their own cap; the oldest makes room, so
                # sockets that never finish the handshake cannot lock valid clients out.
                if len(self._pending) >= self.max_pending:
                    evicted = self._pending.pop(0)
                self._pending.append(conn)
            if evicted is not None:
                self._reject(None, evicted.peer, "evicted from the handshake by a newer connection")
                evicted.close()
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
                if conn in self._pending:
                    self._pending.remove(conn)
            conn.flush(0.2)
            conn.close()

    def _handshake(self, conn: _Connection) -> bool:
        deadline = conn.accepted_at + self.handshake_timeout
        try:
            hello = self._read_handshake_message(conn, deadline, "hello")
            if hello["version"] != PROTOCOL_VERSION:
                self._reject(
                    conn,
                    conn.peer,
                    f"protocol version {hello['version']} is not supported (server speaks "
                    f"{PROTOCOL_VERSION}); update the mod and the Python package together",
                )
                return False
            nonce = protocol.make_nonce()
            challenge = {
                "type": "challenge",
                "id": 0,
                "version": PROTOCOL_VERSION,
                "nonce": nonce,
                "proof": protocol.server_proof(self._token, hello["nonce"], nonce),
            }
            conn.send(challenge)
            auth = self._read_handshake_message(conn, deadline, "auth")
        except TimeoutError:
            self._reject(conn, conn.peer, "the handshake did not complete within the timeout")
            return False
        except (EOFError, OSError) as exc:
            self._reject(None, conn.peer, f"handshake failed: {exc}")
            return False
        except ProtocolError as exc:
            self._reject(conn, conn.peer, f"bad handshake: {exc}")
            return False
        expected = protocol.client_proof(self._token, hello["nonce"], nonce)
        if not protocol.proofs_match(expected, auth["proof"]):
            self._reject(conn, conn.peer, "wrong token (the client's proof does not match)")
            return False
        with self._conn_lock:
            if conn in self._pending:
                self._pending.remove(conn)
            full = len(self._connections) >= self.max_clients
            if not full and not conn.closed:
                self._connections.add(conn)
        if conn.closed:
            return False
        if full:
            self._reject(conn, conn.peer, f"too many clients (max {self.max_clients})")
            return False
        welcome: dict[str, Any] = {
            "type": "welcome",
            "id": 0,
            "version": PROTOCOL_VERSION,
            "server": self.name,
        }
        if self.window is not None:
            welcome["window"] = dict(self.window)
        conn.authenticated = True
        conn.send(welcome)
        return True

    @staticmethod
    def _read_handshake_message(conn: _Connection, deadline: float, kind: str) -> dict[str, Any]:
        message = protocol.decode_payload(protocol.read_frame(conn.sock, deadline))
        if message["type"] != kind:
            step = "first" if kind == "hello" else "second"
            raise ProtocolError(
                f"the {step} message must be {kind!r}, got {message['type'][:40]!r}"
            )
        protocol.validate_request(message)
        return message

    def _read_requests(self, conn: _Connection) -> None:
        conn.sock.settimeout(None)
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
                if message["type"] in protocol.HANDSHAKE_REQUESTS:
                    raise ProtocolError(f"{message['type']!r} is only valid in the handshake")
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
            if self._jobs.qsize() >= self.max_queued_requests:
                self._reject(conn, conn.peer, "server busy: too many queued requests", request_id)
                continue
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
