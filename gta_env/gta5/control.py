"""Driving the game's car: a virtual Xbox 360 pad, a keyboard fallback and an in-process fake.

Every pad takes the environment's :class:`~gta_env.game.Controls` (throttle and brake in [0, 1],
steering in [-1, 1], positive = right) once per frame:

* :class:`GamepadPad` — a virtual Xbox 360 controller through ``vgamepad`` (ViGEmBus on Windows,
  uinput on Linux): right trigger = throttle, left trigger = brake/reverse, left stick x =
  steering. The game ignores small stick/trigger values, so non-zero values are mapped outside
  the dead zone first (:func:`dead_zone_translate`, the original's *dead-zone translation*).
* :class:`KeyboardPad` — ``pydirectinput`` scan codes (W, S, A, D). Keys are on or off, so an
  analog value becomes a pulse train whose duty cycle equals the value (:class:`DutyCycle`).
* :class:`BridgePad` — sends the values through the bridge; the mod holds them with
  ``SET_CONTROL_NORMAL`` (no driver needed).
* :class:`FakePad` — records every value; the posing world reads it back as if it were the game
  polling a controller.

The optional packages are imported when a pad is built, never at module import.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gta_env.game import Controls


class ControllerUnavailable(RuntimeError):
    """A pad's package or driver is missing; the message says what to install."""


@runtime_checkable
class Pad(Protocol):
    """What :class:`~gta_env.gta5.game.GTA5Game` needs from a controller."""

    def apply(self, controls: Controls) -> None:
        """Hold ``controls`` until the next call."""

    def release(self) -> None:
        """Let go of everything (neutral stick, triggers and keys up)."""

    def close(self) -> None:
        """Release and free the device."""


def dead_zone_translate(value: float, dead_zone: float) -> float:
    """Map a non-zero ``value`` in [-1, 1] outside ``(-dead_zone, dead_zone)``, keeping its sign.

    ``0`` stays ``0``; ``±1`` stays ``±1``; in between the range is squeezed linearly into
    ``[dead_zone, 1]`` so that the smallest non-zero command still moves the car.

    Raises:
        ValueError: when ``dead_zone`` is outside [0, 1).
    """
    if not 0.0 <= dead_zone < 1.0:
        raise ValueError(f"dead_zone must be in [0, 1), got {dead_zone}")
    if value == 0.0:
        return 0.0
    magnitude = min(abs(value), 1.0)
    out = dead_zone + (1.0 - dead_zone) * magnitude
    return out if value > 0 else -out


@dataclass(frozen=True)
class DeadZones:
    """Dead zones of the game's controller inputs, as fractions of full travel.

    Attributes:
        stick: left-stick x dead zone (0 = no translation).
        trigger: trigger dead zone (0 = no translation).
    """

    stick: float = 0.0
    trigger: float = 0.0

    def __post_init__(self) -> None:
        for name in ("stick", "trigger"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"DeadZones.{name} must be in [0, 1), got {value}")

    def translate(self, controls: Controls) -> tuple[float, float, float]:
        """``(throttle, brake, steering)`` after translation."""
        return (
            dead_zone_translate(controls.throttle, self.trigger),
            dead_zone_translate(controls.brake, self.trigger),
            dead_zone_translate(controls.steering, self.stick),
        )


class DutyCycle:
    """Turn an analog value in [0, 1] into one on/off decision per frame.

    First-order sigma-delta modulation: the value is accumulated each frame and a pulse is emitted
    whenever the accumulator reaches one half, so over any ``n`` frames the number of "on" frames
    differs from ``value * n`` by less than one. Deterministic, no timers.
    """

    def __init__(self) -> None:
        self._error = 0.0

    def __call__(self, value: float) -> bool:
        value = min(max(value, 0.0), 1.0)
        self._error += value
        if self._error >= 0.5:
            self._error -= 1.0
            return True
        return False

    def reset(self) -> None:
        self._error = 0.0


class FakePad:
    """An in-process pad for tests and for the posing world.

    Attributes:
        history: every ``Controls`` given to :meth:`apply`, in order.
        state: the ``(throttle, brake, steering)`` being held, after dead-zone translation.
    """

    def __init__(self, *, dead_zones: DeadZones | None = None) -> None:
        self.dead_zones = dead_zones or DeadZones()
        self.history: list[Controls] = []
        self.state: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.closed = False

    def apply(self, controls: Controls) -> None:
        if self.closed:
            raise RuntimeError("FakePad.apply after close()")
        self.history.append(controls)
        self.state = self.dead_zones.translate(controls)

    def release(self) -> None:
        self.state = (0.0, 0.0, 0.0)

    def close(self) -> None:
        self.release()
        self.closed = True

    def read(self) -> Controls:
        """The held state as ``Controls`` (what a game polling this pad would see)."""
        throttle, brake, steering = self.state
        return Controls(throttle, brake, steering)


def _vgamepad_hint() -> str:
    if sys.platform == "win32":
        return (
            'install it with `pip install "gta5drive[gta5]"` (or `pip install vgamepad`); its '
            "installer also installs the ViGEmBus driver — if the driver is missing, install "
            "ViGEmBus from https://github.com/nefarius/ViGEmBus/releases and reboot"
        )
    return (
        "install it with `pip install vgamepad` (Linux support needs the uinput kernel module: "
        "`sudo modprobe uinput` and write access to /dev/uinput, e.g. a udev rule or the input "
        "group); or use controller='keyboard' on Windows, or controller='fake' with the posing world"
    )


class GamepadPad:
    """A virtual Xbox 360 controller (``vgamepad``).

    Args:
        dead_zones: dead zones to translate around (see :func:`dead_zone_translate`).

    Raises:
        ControllerUnavailable: when ``vgamepad`` or its driver is missing; says what to install.
    """

    def __init__(self, *, dead_zones: DeadZones | None = None) -> None:
        self.dead_zones = dead_zones or DeadZones()
        try:
            import vgamepad
        except ImportError as exc:
            raise ControllerUnavailable(
                f"the virtual gamepad needs the 'vgamepad' package: {_vgamepad_hint()}"
            ) from exc
        try:
            self._pad: Any = vgamepad.VX360Gamepad()
        except Exception as exc:  # noqa: BLE001 - vgamepad raises plain exceptions for driver errors
            raise ControllerUnavailable(
                f"vgamepad could not create a virtual Xbox 360 pad ({exc}): the driver is "
                f"missing or not accessible; {_vgamepad_hint()}"
            ) from exc

    def apply(self, controls: Controls) -> None:
        throttle, brake, steering = self.dead_zones.translate(controls)
        self._pad.right_trigger_float(value_float=throttle)
        self._pad.left_trigger_float(value_float=brake)
        self._pad.left_joystick_float(x_value_float=steering, y_value_float=0.0)
        self._pad.update()

    def release(self) -> None:
        self._pad.reset()
        self._pad.update()

    def close(self) -> None:
        self.release()
        del self._pad


class KeyboardPad:
    """Keyboard fallback through ``pydirectinput`` (DirectInput scan codes; Windows only).

    Each frame, throttle, brake, left and right are independent duty cycles: a value of 0.3 holds
    its key for 3 frames in 10 on average.

    Args:
        keys: key names for ``(throttle, brake, left, right)``; GTA V's defaults are W, S, A, D.

    Raises:
        ControllerUnavailable: when ``pydirectinput`` cannot be imported.
    """

    def __init__(self, *, keys: tuple[str, str, str, str] = ("w", "s", "a", "d")) -> None:
        try:
            import pydirectinput
        except Exception as exc:  # noqa: BLE001 - it raises AttributeError off Windows
            raise ControllerUnavailable(
                "the keyboard fallback needs the 'pydirectinput' package, which works on Windows "
                'only: `pip install "gta5drive[gta5]"` (or `pip install pydirectinput`); on '
                "other systems use controller='fake' with the posing world"
            ) from exc
        self._keyboard: Any = pydirectinput
        self.keys = keys
        self._cycles = tuple(DutyCycle() for _ in keys)
        self._down = [False] * len(keys)

    @staticmethod
    def key_values(controls: Controls) -> tuple[float, float, float, float]:
        """Duty cycles for ``(throttle, brake, left, right)``."""
        return (
            controls.throttle,
            controls.brake,
            max(-controls.steering, 0.0),
            max(controls.steering, 0.0),
        )

    def apply(self, controls: Controls) -> None:
        for i, value in enumerate(self.key_values(controls)):
            self._set(i, self._cycles[i](value))

    def _set(self, i: int, down: bool) -> None:
        if down == self._down[i]:
            return
        # _pause=False: pydirectinput otherwise sleeps 0.1 s after each call.
        if down:
            self._keyboard.keyDown(self.keys[i], _pause=False)
        else:
            self._keyboard.keyUp(self.keys[i], _pause=False)
        self._down[i] = down

    def release(self) -> None:
        for i in range(len(self.keys)):
            self._set(i, False)
            self._cycles[i].reset()

    def close(self) -> None:
        self.release()


class BridgePad:
    """Controls sent through the bridge: the mod holds them with ``SET_CONTROL_NORMAL`` each frame.

    Needs no driver or package at all, at the price of going through the game's script input
    rather than a device (see ``docs/gta5.md``). The posing world reads them like its fake pad.

    Args:
        client: a connected :class:`~gta_env.gta5.bridge.BridgeClient`.
        dead_zones: dead zones to translate around.
    """

    def __init__(self, client: Any, *, dead_zones: DeadZones | None = None) -> None:
        self.client = client
        self.dead_zones = dead_zones or DeadZones()

    def apply(self, controls: Controls) -> None:
        throttle, brake, steering = self.dead_zones.translate(controls)
        self.client.request("controls", throttle=throttle, brake=brake, steer=steering)

    def release(self) -> None:
        if self.client.connected:
            self.client.request("controls", throttle=0.0, brake=0.0, steer=0.0)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self.release()


CONTROLLERS = ("gamepad", "keyboard", "bridge", "fake")


def make_pad(controller: str, *, dead_zones: DeadZones | None = None, client: Any = None) -> Pad:
    """Build the pad named ``controller`` (one of :data:`CONTROLLERS`).

    ``"bridge"`` needs ``client``, a connected bridge client.

    Raises:
        ValueError: for an unknown name.
        ControllerUnavailable: when its package or driver is missing.
    """
    if controller == "gamepad":
        return GamepadPad(dead_zones=dead_zones)
    if controller == "keyboard":
        return KeyboardPad()
    if controller == "fake":
        return FakePad(dead_zones=dead_zones)
    if controller == "bridge":
        if client is None:
            raise ValueError("controller='bridge' needs a connected bridge client")
        return BridgePad(client, dead_zones=dead_zones)
    raise ValueError(f"controller must be one of {CONTROLLERS}, got {controller!r}")
