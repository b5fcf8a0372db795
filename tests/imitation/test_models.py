"""Every built-in model and every input/output option builds, runs forward/backward, right shapes."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from imitation.models import (
    AUX_LIGHT,
    DrivingModel,
    ModelConfig,
    OutputSpec,
    build_model,
    head_widths,
    list_models,
)
from imitation.sample import LIGHT_CLASSES, LIGHT_UNKNOWN

SIZE = (36, 64)
OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "dual_backbone": {"cinematic_size": (30, 48)},
    "frame_stack": {"frame_stack": 3},
    "greyscale_stack": {"greyscale": True, "frame_stack": 2},
    "history": {"history": 60},
    "no_purpose_speed": {"purpose": False, "speed": False},
    "measurement_encoder": {"measurements": 32},
    "classification": {
        "outputs": [
            OutputSpec(name="throttle_brake", kind="classification", bins=11),
            OutputSpec(name="steering", kind="classification"),
        ]
    },
    "delta": {
        "outputs": [
            {"name": "throttle_brake", "kind": "delta"},
            {"name": "steering", "kind": "regression", "loss": "huber"},
        ]
    },
    "three_outputs": {
        "outputs": [OutputSpec(name=n) for n in ("throttle", "brake", "steering")],
        "history": 5,
    },
}


def _run(model: DrivingModel, batch: int = 3) -> None:
    g = torch.Generator().manual_seed(0)
    inputs = model.dummy_inputs(batch, generator=g)
    raw = model(inputs)
    for spec in model.config.outputs:
        assert raw[spec.name].shape == (batch, spec.size)
    prev = inputs.get("prev_action")
    actions = model.decode(raw, prev)
    assert actions.shape == (batch, model.config.action_size)
    assert torch.all(actions.abs() <= 1.0)
    target = torch.rand(batch, model.config.action_size, generator=g) * 2 - 1
    loss, parts = model.loss(raw, target, prev_action=prev)
    assert set(parts) == {o.name for o in model.config.outputs}
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", list_models(include_timm=False))
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_builtin_models_forward_backward(name: str, option: str) -> None:
    torch.manual_seed(0)
    _run(build_model(name, image_size=SIZE, dense=64, **OPTIONS[option]))


def test_default_size_and_channels_last() -> None:
    model = build_model("pilotnet").set_channels_last()
    _run(model, batch=2)


def test_head_widths_divide_by_four() -> None:
    assert head_widths(256) == [64, 16, 8]
    assert head_widths(1024) == [256, 64, 16]


def test_config_round_trip_and_errors() -> None:
    cfg = ModelConfig(
        backbone="pilotnet",
        history=60,
        cinematic_size=(30, 48),
        outputs=(OutputSpec(name="a", kind="delta"), OutputSpec(name="b", kind="classification")),
    )
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    pre = cfg.preprocessing()
    assert pre.prev_action and pre.cinematic and pre.history == 60
    with pytest.raises(ValueError, match="unknown model options"):
        build_model("pilotnet", colour=True)
    with pytest.raises(ValueError, match="kind must be"):
        OutputSpec(name="x", kind="ordinal")  # type: ignore[arg-type]


def test_classification_decodes_bin_centres() -> None:
    spec = OutputSpec(name="s", kind="classification", bins=4)
    t = torch.tensor([-1.0, -0.3, 0.2, 1.0])
    assert spec.target_class(t, None).tolist() == [0, 1, 2, 3]
    logits = torch.nn.functional.one_hot(torch.tensor([0, 3]), 4).float()
    assert spec.decode(logits, None).tolist() == [-0.75, 0.75]


def test_delta_is_relative_to_previous_action() -> None:
    spec = OutputSpec(name="s", kind="delta", deltas=(-0.1, 0.0, 0.1))
    prev = torch.tensor([0.5, 0.95])
    assert spec.target_class(torch.tensor([0.6, 0.95]), prev).tolist() == [2, 1]
    logits = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(spec.decode(logits, prev), torch.tensor([0.6, 1.0]))


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_missing_names_the_extra() -> None:
    with pytest.raises(ImportError, match=r'pip install "gta5drive\[timm\]"'):
        build_model("xception41")


@pytest.mark.timm
@pytest.mark.skipif(
    importlib.util.find_spec("timm") is None, reason="needs the timm extra (GPU machine)"
)
@pytest.mark.parametrize(
    "name", ["xception41", "inception_resnet_v2", "regnety_008", "efficientnet_b0"]
)
def test_timm_backbones(name: str) -> None:
    model = build_model(
        name,
        image_size=(96, 128),
        dense=64,
        cinematic_size=(96, 128) if name == "regnety_008" else None,
    )
    _run(model, batch=2)
    assert model.normalisation["mean"] != [0.5] * 3 or name in ("xception41", "inception_resnet_v2")


def test_measurement_encoder_makes_speed_matter():
    """Encoded, the speed reaches the heads through its own layers (raw it is one input of
    hundreds): changing only the speed changes the output."""
    torch.manual_seed(0)
    model = build_model("pilotnet", image_size=(45, 80), dense=64, measurements=32).eval()
    inputs = model.dummy_inputs(2)
    slow = dict(inputs, speed=torch.zeros(2, 1))
    fast = dict(inputs, speed=torch.full((2, 1), 15.0))
    with torch.no_grad():
        a = model.decode(model(slow))
        b = model.decode(model(fast))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="measurements"):
        build_model("pilotnet", measurements=16, purpose=False, speed=False)


def test_light_head_learns_from_labelled_samples_only() -> None:
    torch.manual_seed(0)
    model = build_model("pilotnet", image_size=SIZE, dense=64, light_head=0.5)
    inputs = model.dummy_inputs(3, generator=torch.Generator().manual_seed(0))
    raw = model(inputs)
    assert raw[AUX_LIGHT].shape == (3, len(LIGHT_CLASSES))
    assert model.decode(raw).shape == (3, 2)  # the head does not drive
    target = torch.zeros(3, 2)
    driving, parts = model.loss(raw, target)
    assert AUX_LIGHT not in parts  # no labels, no auxiliary loss
    light = torch.tensor([2, LIGHT_UNKNOWN, 0])
    total, parts = model.loss(raw, target, light=light)
    expected = F.cross_entropy(raw[AUX_LIGHT][[0, 2]], light[[0, 2]])
    torch.testing.assert_close(parts[AUX_LIGHT], expected)
    torch.testing.assert_close(total, driving + 0.5 * expected)
    unknown, parts = model.loss(raw, target, light=torch.full((3,), LIGHT_UNKNOWN))
    assert float(parts[AUX_LIGHT].detach()) == 0.0
    # The auxiliary loss alone trains the camera encoder.
    model.zero_grad()
    parts_only = model.loss(model(inputs), target, light=light)[1][AUX_LIGHT]
    parts_only.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.hood.parameters())


def test_light_head_config_round_trips_and_is_checked() -> None:
    config = ModelConfig(light_head=0.25)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert (
        ModelConfig.from_dict(
            {k: v for k, v in config.to_dict().items() if k != "light_head"}
        ).light_head
        == 0.0
    )
    with pytest.raises(ValueError, match="light_head must be a weight >= 0"):
        ModelConfig(light_head=-1.0)
    with pytest.raises(ValueError, match="reserved for the light head"):
        ModelConfig(outputs=(OutputSpec(name="aux_light"), OutputSpec(name="steering")))
