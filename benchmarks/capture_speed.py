"""Speed of the real-game path: bridge round trips, screen capture, the posing world end to end.

Run: ``python benchmarks/capture_speed.py`` (capture and posing rows need an X display, e.g.
``xvfb-run -s "-screen 0 1920x1080x24" python benchmarks/capture_speed.py``). Targets: bridge
p99 < 2 ms on loopback; mss capture+resize of 1280x720 >= 90 FPS (the game's render rate).
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import numpy as np

from gta_env.game import Controls
from gta_env.gta5.bridge import BridgeClient, BridgeServer
from gta_env.gta5.capture import Region, ScreenCapture

TOKEN = "benchmark"


class TelemetryServer(BridgeServer):
    def handle_telemetry(self):
        return {
            "telemetry": {
                "frame": 1,
                "position": [0.0, 0.0, 0.0],
                "heading_deg": 0.0,
                "speed": 0.0,
                "on_road": True,
                "purpose": None,
                "collisions": [],
                "camera": "hood",
                "npc": {"active": False, "throttle": 0.0, "brake": 0.0, "steer": 0.0},
            }
        }


def connect_time(n: int) -> dict[str, float]:
    """Milliseconds for TCP connect + the v2 HMAC handshake (p50, p99)."""
    with TelemetryServer(token=TOKEN) as server:
        times = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            client = BridgeClient(port=server.port, token=TOKEN)
            client.connect()
            times[i] = time.perf_counter() - t0
            client.close()
    ms = times * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": n}


def bridge_latency(n: int) -> dict[str, float]:
    """Round trips through the send queues (a subscriber receives a push per request too)."""
    with (
        TelemetryServer(token=TOKEN) as server,
        BridgeClient(port=server.port, token=TOKEN) as client,
    ):
        for _ in range(200):
            client.request("telemetry")
        times = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            client.request("telemetry")
            times[i] = time.perf_counter() - t0
    ms = times * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": n}


def capture_fps(seconds: float, size: tuple[int, int]) -> tuple[float, str]:
    capture = ScreenCapture(region=Region(0, 0, 1280, 720), grabber="mss")
    try:
        end = time.perf_counter() + seconds
        frames = 0
        while time.perf_counter() < end:
            capture.grab_resized(size)
            frames += 1
        return frames / seconds, capture.grabber.name
    finally:
        capture.close()


def posing_steps_per_second(seconds: float) -> float:
    from gta_env.gta5 import GTA5Config, GTA5Game
    from gta_env.gta5.posing import PosingServer, TkDisplay
    from gta_env.sim.game import SimConfig, SimGame

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PosingServer(
        token=TOKEN,
        game_factory=lambda: SimGame(SimConfig(cameras=("hood",))),
        display_factory=lambda: TkDisplay(size=(90, 160)),
        port=port,
    ).start()
    game = GTA5Game(config=GTA5Config(port=port, token=TOKEN, controller="bridge", grabber="mss"))
    try:
        game.load(0)
        game.new_purpose(np.random.default_rng(0))
        steps = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            game.step(Controls(0.5, 0.0, 0.0))
            game.render(("hood",))
            steps += 1
        return steps / seconds
    finally:
        game.close()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    lat = bridge_latency(args.requests)
    rows.append(("bridge round trip p50 (loopback)", f"{lat['p50']:.3f} ms", ""))
    rows.append(("bridge round trip p99 (loopback)", f"{lat['p99']:.3f} ms", "target < 2 ms"))
    con = connect_time(200)
    rows.append(("bridge connect + v2 handshake p50", f"{con['p50']:.3f} ms", ""))
    rows.append(("bridge connect + v2 handshake p99", f"{con['p99']:.3f} ms", ""))
    if os.environ.get("DISPLAY") or os.name == "nt":
        fps, name = capture_fps(args.seconds, (270, 480))
        rows.append((f"{name} capture 1280x720 + resize 480x270", f"{fps:.0f} FPS", "target >= 90"))
        fps, name = capture_fps(args.seconds, (720, 1280))
        rows.append((f"{name} capture 1280x720 (no resize)", f"{fps:.0f} FPS", ""))
        try:
            sps = posing_steps_per_second(args.seconds)
            rows.append(("posing world end to end (step + hood grab)", f"{sps:.0f} steps/s", ""))
        except ImportError as exc:
            rows.append(("posing world end to end", "skipped", str(exc)))
    else:
        rows.append(("screen capture", "skipped", "no DISPLAY (run under xvfb-run)"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
