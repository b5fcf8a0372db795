"""Pads: dead-zone translation, keyboard duty cycles, FakePad, and the missing-package errors."""

from __future__ import annotations

import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gta_env.game import Controls
from gta_env.gta5 import control
from gta_env.gta5.control import (
    ControllerUnavailable,
    DeadZones,
    DutyCycle,
    FakePad,
    GamepadPad,
    KeyboardPad,
    dead_zone_translate,
    make_pad,
)


def test_dead_zone_translation_endpoints_and_sign():
    assert dead_zone_translate(0.0, 0.25) == 0.0
    assert dead_zone_translate(1.0, 0.25) == 1.0
    assert dead_zone_translate(-1.0, 0.25) == -1.0
    assert dead_zone_translate(0.01, 0.25) == pytest.approx(0.2575)
    assert dead_zone_translate(-0.5, 0.2) == pytest.approx(-0.6)
    assert dead_zone_translate(0.3, 0.0) == 0.3
    with pytest.raises(ValueError, match="dead_zone"):
        dead_zone_translate(0.5, 1.0)
    with pytest.raises(ValueError, match="DeadZones.stick"):
        DeadZones(stick=-0.1)


@given(st.floats(-1, 1), st.floats(0, 0.9))
def test_dead_zone_translation_is_monotonic_and_outside_the_zone(value, zone):
    out = dead_zone_translate(value, zone)
    assert abs(out) <= 1.0
    if value != 0.0:
        assert abs(out) >= zone and (out > 0) == (value > 0)
        assert abs(dead_zone_translate(value * 0.5, zone)) <= abs(out) + 1e-12


@settings(max_examples=50)
@given(st.floats(0, 1), st.integers(1, 300))
def test_duty_cycle_average_matches_the_value(value, n):
    cycle = DutyCycle()
    on = sum(cycle(value) for _ in range(n))
    assert abs(on - value * n) <= 1.0


def test_duty_cycle_patterns():
    cycle = DutyCycle()
    assert [cycle(0.5) for _ in range(4)] == [True, False, True, False]
    cycle.reset()
    assert [cycle(0.25) for _ in range(8)].count(True) == 2
    assert not any(DutyCycle()(0.0) for _ in range(10))
    full = DutyCycle()
    assert all(full(1.0) for _ in range(10))


def test_fake_pad_records_and_translates():
    pad = FakePad(dead_zones=DeadZones(stick=0.2, trigger=0.1))
    pad.apply(Controls(0.5, 0.0, -0.5))
    assert pad.history == [Controls(0.5, 0.0, -0.5)]
    assert pad.state == pytest.approx((0.55, 0.0, -0.6))
    assert pad.read() == Controls(*pad.state)
    pad.release()
    assert pad.state == (0.0, 0.0, 0.0)
    pad.close()
    with pytest.raises(RuntimeError, match="after close"):
        pad.apply(Controls(0, 0, 0))


def test_missing_vgamepad_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vgamepad", None)
    with pytest.raises(ControllerUnavailable, match="pip install"):
        GamepadPad()
    with pytest.raises(ControllerUnavailable, match="vgamepad"):
        make_pad("gamepad")


def test_missing_driver_says_what_to_install(monkeypatch):
    broken = types.ModuleType("vgamepad")

    def no_bus():
        raise AssertionError("VIGEM_ERROR_BUS_NOT_FOUND")

    broken.VX360Gamepad = no_bus  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vgamepad", broken)
    hint = "ViGEmBus" if sys.platform == "win32" else "uinput"
    with pytest.raises(ControllerUnavailable, match=hint):
        GamepadPad()


def test_missing_pydirectinput_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydirectinput", None)
    with pytest.raises(ControllerUnavailable, match="pydirectinput"):
        KeyboardPad()
    with pytest.raises(ValueError, match="controller must be one of"):
        make_pad("joystick")


class RecordingVX360:
    def __init__(self):
        self.calls: list[tuple] = []

    def right_trigger_float(self, value_float):
        self.calls.append(("rt", value_float))

    def left_trigger_float(self, value_float):
        self.calls.append(("lt", value_float))

    def left_joystick_float(self, x_value_float, y_value_float):
        self.calls.append(("ls", x_value_float, y_value_float))

    def update(self):
        self.calls.append(("update",))

    def reset(self):
        self.calls.append(("reset",))


def test_gamepad_maps_triggers_and_stick(monkeypatch):
    fake = types.ModuleType("vgamepad")
    fake.VX360Gamepad = RecordingVX360  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vgamepad", fake)
    pad = GamepadPad(dead_zones=DeadZones(stick=0.2))
    pad.apply(Controls(0.75, 0.25, 0.5))
    assert pad._pad.calls == [
        ("rt", 0.75),
        ("lt", 0.25),
        ("ls", pytest.approx(0.6), 0.0),
        ("update",),
    ]
    pad.close()


def test_keyboard_presses_keys_by_duty_cycle(monkeypatch):
    events: list[tuple[str, str]] = []
    fake = types.ModuleType("pydirectinput")
    fake.keyDown = lambda key, _pause=True: events.append(("down", key))  # type: ignore[attr-defined]
    fake.keyUp = lambda key, _pause=True: events.append(("up", key))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pydirectinput", fake)
    pad = KeyboardPad()
    for _ in range(10):
        pad.apply(Controls(0.5, 0.0, -1.0))
    presses = [k for e, k in events if e == "down"]
    assert presses.count("w") == 5 and presses.count("a") == 1  # "a" stays held: one press
    assert "s" not in presses and "d" not in presses
    pad.close()
    assert ("up", "a") in events
    assert KeyboardPad.key_values(Controls(0.2, 0.3, 0.4)) == (0.2, 0.3, 0.0, 0.4)


def test_control_module_imports_no_optional_package():
    assert "vgamepad" not in vars(control) and "pydirectinput" not in vars(control)
