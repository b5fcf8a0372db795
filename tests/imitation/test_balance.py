"""Balancing v1-v4 on synthetic skewed datasets with known counts: exact set and bin counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imitation.balance import (
    PEDAL_V1,
    PEDAL_V2,
    SIGNED_V1,
    SIGNED_V2,
    BalancerV1,
    BalancerV2,
    BalancerV3,
    BalancerV4,
    balance_store,
    make_balancer,
)
from imitation.sample import Sample
from imitation.storage import SampleStore, SampleWriter, StorageConfig

# One representative value inside each bin.
PEDAL_V1_REP = [0.0, 0.1, 0.5, 0.9, 1.0]
SIGNED_V1_REP = [-1.0, -0.9, -0.5, -0.1, 0.0, 0.1, 0.5, 0.9, 1.0]
PEDAL_V2_REP = [0.0, *(0.05 + 0.1 * k for k in range(10)), 1.0]
SIGNED_V2_REP = [*(-0.95 + 0.1 * k for k in range(10)), 0.0, *(0.05 + 0.1 * k for k in range(10))]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------ bins


def test_bin_counts_match_seed() -> None:
    assert len(PEDAL_V1) == 5 and len(SIGNED_V1) == 9
    assert len(PEDAL_V1) * len(PEDAL_V1) * len(SIGNED_V1) == 225
    assert len(PEDAL_V2) == 12 and len(SIGNED_V2) == 21
    for bins, reps in [
        (PEDAL_V1, PEDAL_V1_REP),
        (SIGNED_V1, SIGNED_V1_REP),
        (PEDAL_V2, PEDAL_V2_REP),
        (SIGNED_V2, SIGNED_V2_REP),
    ]:
        assert bins.index(reps).tolist() == list(range(len(bins))), bins.name


def test_bin_edges_and_closed_sides() -> None:
    # PEDAL_V1: [0], (0,.2), [.2,.8), [.8,1), [1]
    assert PEDAL_V1.index([0.0, 1e-6, 0.2, 0.7999, 0.8, 0.9999, 1.0]).tolist() == [
        0,
        1,
        2,
        2,
        3,
        3,
        4,
    ]
    # SIGNED_V1 mirrors it: (-1,-.8], (-.8,-.2], (-.2,0)
    assert SIGNED_V1.index([-1.0, -0.8, -0.2, -1e-6]).tolist() == [0, 1, 2, 3]
    # SIGNED_V2: [-1,-.9] ... (-.1,0), [0], (0,.1), [.1,.2) ... [.9,1]
    assert SIGNED_V2.index([-1.0, -0.9, -0.1, 0.0, 0.1, 0.7, 0.9, 1.0]).tolist() == [
        0,
        0,
        8,
        10,
        12,
        18,
        20,
        20,
    ]
    # edges compare in float32: the float32 value 0.7 lies in [0.7, 0.8)
    assert PEDAL_V2.index(np.array(0.7, np.float32)).item() == 8
    with pytest.raises(ValueError, match="outside the PEDAL_V1 bins"):
        PEDAL_V1.index([1.5])
    with pytest.raises(ValueError, match="outside"):
        SIGNED_V2.index([np.nan])


# -------------------------------------------------------------------------------------- v1


def test_v1_three_outputs_gives_225_sample_sets() -> None:
    rows = []
    for a, av in enumerate(PEDAL_V1_REP):
        for b, bv in enumerate(PEDAL_V1_REP):
            for c, sv in enumerate(SIGNED_V1_REP):
                combo = (a * 5 + b) * 9 + c
                rows += [[av, bv, sv]] * (2 + combo * 7 % 4)  # skewed, min 2
    actions = np.array(rows)
    result = BalancerV1(rng=rng()).balance(actions)
    assert len(result.sets) == 2
    for s in result.sets:
        assert len(s) == 225 and s.output is None
        assert sorted(s.bins) == list(range(225))
        combos = [BalancerV1.combination(tuple(_v1_bins(actions[i]))) for i in s.items]
        assert sorted(combos) == list(range(225))
    assert len(set(result.indices().tolist())) == 450


def _v1_bins(row: np.ndarray) -> list[int]:
    return [
        int(PEDAL_V1.index(row[0])),
        int(PEDAL_V1.index(row[1])),
        int(SIGNED_V1.index(row[2])),
    ]


def test_v1_two_outputs_bins_pedals_separately_into_225_sample_sets() -> None:
    assert len(BalancerV1.required_combinations(2)) == 81
    slots = BalancerV1.slots(2)
    assert sorted(combo for combo, _ in slots) == list(range(225))
    serves = np.bincount([cell for _, cell in slots], minlength=225)
    # Per steering bin: released once, every pressed accel and brake bin three times.
    assert serves[BalancerV1.combination((0, 0, 4))] == 1
    assert (
        serves[BalancerV1.combination((2, 0, 4))] == serves[BalancerV1.combination((0, 3, 4))] == 3
    )
    actions = _v1_two_output_dataset(scale=3)
    result = BalancerV1(rng=rng()).balance(actions)
    assert [len(s) for s in result.sets] == [225, 225, 225]
    cell_of = dict(slots)
    for s in result.sets:
        assert sorted(s.bins) == list(range(225))
        for i, combo in zip(s.items, s.bins, strict=True):
            assert BalancerV1.combination(tuple(_v1_bins(_split(actions[i])))) == cell_of[combo]
    assert len(set(result.indices().tolist())) == 3 * 225
    # One missing combination (full brake, full right) leaves nothing balanced.
    keep = ~((actions[:, 0] == -1.0) & (actions[:, 1] == 1.0))
    assert BalancerV1(rng=rng()).balance(actions[keep]).sets == ()


def _split(row: np.ndarray) -> np.ndarray:
    return np.array([max(row[0], 0.0), max(-row[0], 0.0), row[1]])


# -------------------------------------------------------------------------------------- v2


def test_v2_balances_each_output_separately() -> None:
    ca = [9, 7, 8, 10, 12, 9, 8, 7, 11, 6, 14]  # accel bins 1..11, min 6
    cb = [5, 9, 8, 7, 6, 9, 10, 8, 7, 6, 4]  # brake bins 1..11, min 4
    zero = 20  # a == 0: accel bin [0] and brake bin [0]
    throttle = [0.0] * zero
    for k, c in enumerate(ca):
        throttle += [PEDAL_V2_REP[k + 1]] * c
    for k, c in enumerate(cb):
        throttle += [-PEDAL_V2_REP[k + 1]] * c
    n = len(throttle)
    cs = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4]  # min 4
    cs[10] = n - sum(cs)
    steering = np.repeat(SIGNED_V2_REP, cs)
    rng(5).shuffle(steering)
    actions = np.stack([throttle, steering], axis=1)

    balancer = BalancerV2(rng=rng())
    result = balancer.balance(actions)
    assert result.sets_per_output() == {"accel": 6, "brake": 4, "steering": 4}
    for s in result.sets:
        bins = balancer.output_bins()[s.output]  # type: ignore[index]
        assert len(s) == len(bins)  # 12, 12, 21
        values = balancer.outputs(actions[list(s.items)])[s.output]  # type: ignore[index]
        assert sorted(bins.index(values).tolist()) == list(range(len(bins)))
    after = balancer.histograms(actions, result)
    assert after["accel"][1].tolist() == [6] * 12
    assert after["brake"][1].tolist() == [4] * 12
    assert after["steering"][1].tolist() == [4] * 21


# -------------------------------------------------------------------------------------- v3


def v3_dataset() -> np.ndarray:
    """Block A varies steering at throttle 0.55, block B varies throttle at steering 0.55."""
    cs = [4 + b % 3 for b in range(21)]  # steering bins except 16: min 4
    ct = [6 + b % 4 for b in range(21)]  # throttle_brake bins except 16: min 6
    rows = []
    for b in range(21):
        if b != 16:
            rows += [[0.55, SIGNED_V2_REP[b]]] * cs[b]
            rows += [[SIGNED_V2_REP[b], 0.55]] * ct[b]
    rows += [[0.55, 0.55]] * 30  # both in bin 16 = [0.5, 0.6)
    return np.array(rows)


def test_v3_sets_per_output_keep_all_outputs() -> None:
    actions = v3_dataset()
    balancer = BalancerV3(rng=rng())
    result = balancer.balance(actions)
    assert result.sets_per_output() == {"throttle_brake": 6, "steering": 4}
    idx = result.indices()
    assert len(idx) == 10 * 21 and len(set(idx.tolist())) == len(idx)  # each sample used once
    for s in result.sets:
        assert s.output is not None
        values = balancer.outputs(actions[list(s.items)])[s.output]
        assert sorted(SIGNED_V2.index(values).tolist()) == list(range(21))
    # Exact after-histograms over all selected samples (both outputs kept in every sample):
    after = balancer.histograms(actions, result)
    # 6 throttle sets give one per throttle bin; the 4 steering sets' samples all sit at
    # throttle 0.55 (bin 16), and the other way round.
    tb = [6] * 21
    tb[16] += 4 * 21
    assert after["throttle_brake"][1].tolist() == tb
    st = [4] * 21
    st[16] += 6 * 21
    assert after["steering"][1].tolist() == st


def test_v3_stream_mode_emits_sets_of_samples() -> None:
    actions = v3_dataset()
    order = rng(3).permutation(len(actions))
    balancer = BalancerV3(rng=rng(), max_per_bin=50)
    emitted = []
    for i in order:
        sample = Sample(
            hood=np.zeros((2, 2, 3), np.uint8),
            action=actions[i],
            executed_action=actions[i],
            speed=1.0,
            purpose=np.array([0.5, 0.0, 1.0]),
            time=0.0,
            step=int(i),
            episode_id=0,
            town_id=0,
        )
        emitted += balancer.add(sample)
        assert balancer.pending <= 50 * 21 * 2
    assert emitted, "no set was completed"
    steps = [smp.step for s in emitted for smp in s.items]
    assert len(steps) == len(set(steps))
    for s in emitted:
        assert isinstance(s.items[0], Sample) and s.output is not None
        values = balancer.outputs(np.stack([smp.action for smp in s.items]))[s.output]
        assert sorted(SIGNED_V2.index(values).tolist()) == list(range(21))
    assert balancer.pending + len(steps) + balancer.dropped == len(actions)


# -------------------------------------------------------------------------------------- v4


def v4_dataset() -> np.ndarray:
    """Every throttle bin holds mostly-straight steering: [3,3,3,3,15,3,3,3,3] per SIGNED_V1 bin."""
    per_sub = [3, 3, 3, 3, 15, 3, 3, 3, 3]
    rows = []
    for tb in SIGNED_V2_REP:
        for sv, c in zip(SIGNED_V1_REP, per_sub, strict=True):
            rows += [[tb, sv]] * c
    return np.array(rows)


def test_v4_flattens_the_secondary_output() -> None:
    actions = v4_dataset()
    balancer = BalancerV4(rng=rng())
    result = balancer.balance(actions)
    # Steering takes only 7 of its 21 bins, so only throttle_brake sets exist: 39 samples per
    # throttle bin, 9 per bin per set -> 3 sets with one of each steering sub-bin, then one set
    # from the 12 straight samples left, then 3 < 9 remain.
    assert result.sets_per_output() == {"throttle_brake": 4}
    steer_sub = [SIGNED_V1.counts(actions[list(s.items), 1]).tolist() for s in result.sets]
    for s in result.sets:
        assert len(s) == 21 * 9
        assert SIGNED_V2.counts(actions[list(s.items), 0]).tolist() == [9] * 21
    assert steer_sub[:3] == [[21] * 9] * 3  # exactly flat secondary
    assert steer_sub[3] == [0, 0, 0, 0, 189, 0, 0, 0, 0]
    total = SIGNED_V1.counts(actions[result.indices(), 1]).tolist()
    assert total == [63, 63, 63, 63, 252, 63, 63, 63, 63]
    assert SIGNED_V1.counts(actions[:, 1]).tolist() == [63, 63, 63, 63, 315, 63, 63, 63, 63]

    # v3 on the same data spares the rare steering samples and picks straight ones first.
    v3 = BalancerV3(rng=rng()).balance(actions)
    first = SIGNED_V1.counts(actions[list(v3.sets[0].items), 1]).tolist()
    assert first == [0, 0, 0, 0, 21, 0, 0, 0, 0]


def test_v4_stream_mode_sub_balances() -> None:
    actions = v4_dataset()
    balancer = BalancerV4(rng=rng(), max_per_bin=100, patience=36)  # waits for all 9 sub-bins
    emitted = []
    for i in rng(1).permutation(len(actions)):
        emitted += balancer.add_item(int(i), actions[i])
    assert emitted
    s = emitted[0]
    assert SIGNED_V1.counts(actions[list(s.items), 1]).tolist() == [21] * 9


# -------------------------------------------------------------------------------- interface


def test_make_balancer_and_argument_errors() -> None:
    for scheme, cls in [
        ("v1", BalancerV1),
        ("v2", BalancerV2),
        ("v3", BalancerV3),
        ("v4", BalancerV4),
    ]:
        assert type(make_balancer(scheme, rng=rng())) is cls
    with pytest.raises(ValueError, match="unknown balancing scheme 'v5'"):
        make_balancer("v5", rng=rng())
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        BalancerV3(rng=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        BalancerV3(rng=rng()).balance(np.zeros((4, 4)))
    b = BalancerV1(rng=rng())
    b.add_item(0, [0.0, 0.0])
    with pytest.raises(ValueError, match="one balancer per action layout"):
        b.add_item(1, [0.0, 0.0, 0.0])


def test_dataset_mode_is_deterministic_for_a_seed() -> None:
    actions = v3_dataset()
    one = BalancerV3(rng=rng(7)).balance(actions).indices()
    two = BalancerV3(rng=rng(7)).balance(actions).indices()
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("scheme", ["v2", "v3"])
def test_balance_store_writes_store_and_plots(tmp_path: Path, scheme: str) -> None:
    actions = v3_dataset()
    src = tmp_path / "src"
    with SampleWriter(src, config=StorageConfig(chunk_samples=64, fsync=False)) as w:
        for i, a in enumerate(actions):
            w.append(
                Sample(
                    hood=np.full((4, 6, 3), i % 256, np.uint8),
                    action=a,
                    executed_action=a,
                    speed=2.0,
                    purpose=np.array([0.1, 0.0, 1.0]),
                    time=i / 30,
                    step=i,
                    episode_id=0,
                    town_id=0,
                )
            )
    store = SampleStore(src)
    report = balance_store(
        store,
        make_balancer(scheme, rng=rng()),
        out_dir=tmp_path / "out",
        plots_dir=tmp_path / "plots" if scheme == "v3" else None,  # plotting takes ~1 s
        writer_config=StorageConfig(fsync=False),
        progress=False,
    )
    for png in report.plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if scheme == "v3":
        assert {p.name for p in report.plots} == {"v3_before.png", "v3_after.png"}
    for output, path in report.outputs.items():
        out = SampleStore(path)
        idx = report.result.indices(output if scheme == "v2" else ...)
        assert len(out) == len(idx)
        np.testing.assert_array_equal(out.column("step"), idx)
    if scheme == "v2":
        assert set(report.outputs) == {"accel", "brake", "steering"} & set(report.result.outputs)
    else:
        assert list(report.outputs) == [None]


# ------------------------------------------------------- required bins: continuous experts


def _v1_two_output_dataset(scale: int = 3) -> np.ndarray:
    rows = []
    k = 0
    for a, av in enumerate(PEDAL_V1_REP):
        for b, bv in enumerate(PEDAL_V1_REP):
            if a and b:
                continue
            for sv in SIGNED_V1_REP:
                rows += [[av - bv, sv]] * (scale * (3 if a or b else 1) + k % 2)
                k += 1
    return np.array(rows)


def test_seen_dataset_mode_skips_only_empty_bins() -> None:
    actions = _v1_two_output_dataset()
    # Every combination present: "seen" is exactly "all".
    all_ = BalancerV1(rng=rng()).balance(actions)
    seen = BalancerV1(rng=rng(), require="seen").balance(actions)
    np.testing.assert_array_equal(all_.indices(), seen.indices())
    # One cell missing (full brake, full right): "all" gives nothing, "seen" 3 sets without the
    # 3 slots that cell serves.
    keep = ~((actions[:, 0] == -1.0) & (actions[:, 1] == 1.0))
    result = BalancerV1(rng=rng(), require="seen").balance(actions[keep])
    assert [len(s) for s in result.sets] == [222, 222, 222]
    assert BalancerV1.combination((0, 4, 8)) not in result.sets[0].bins


def test_seen_dataset_mode_on_continuous_steering() -> None:
    # Steering never exactly 0 (bin 10 of SIGNED_V2), as from the embedded world's autopilot.
    steering = np.repeat([r for r in SIGNED_V2_REP if r != 0.0], [3 + b % 4 for b in range(20)])
    actions = np.stack([np.full(len(steering), 0.5), steering], axis=1)
    v2_all = BalancerV2(rng=rng()).balance(actions)
    v2_seen = BalancerV2(rng=rng(), require="seen").balance(actions)
    assert "steering" not in v2_all.sets_per_output()
    # accel: only bin [0.5, 0.6) seen -> one 1-sample set per sample; brake: only [0].
    assert len(actions) == 90
    assert v2_seen.sets_per_output() == {"accel": 90, "brake": 90, "steering": 3}
    for s in v2_seen.sets:
        if s.output == "steering":
            assert len(s) == 20 and 10 not in s.bins
    v3 = BalancerV3(rng=rng(), require="seen").balance(actions)
    # Alternating outputs: throttle sets (one bin: 1 sample each) and steering sets (20 bins)
    # take turns until steering's rarest bin (3 samples) runs out; throttle takes the rest.
    per = v3.sets_per_output()
    assert per["steering"] == 3
    assert per["throttle_brake"] == 90 - 3 * 20
    assert len(set(v3.indices().tolist())) == 90


def _stream_sample(a: list[float], step: int) -> Sample:
    return Sample(
        hood=np.zeros((2, 2, 3), np.uint8),
        action=np.array(a),
        executed_action=np.array(a),
        speed=1.0,
        purpose=np.array([0.5, 0.0, 1.0]),
        time=0.0,
        step=step,
        episode_id=0,
        town_id=0,
    )


def test_seen_stream_mode_requires_a_bin_once_seen() -> None:
    b = BalancerV2(rng=rng(), require="seen")
    first = b.add(_stream_sample([0.55, 0.05], 0))
    # Each output has seen one bin: three 1-sample sets.
    assert [(s.output, len(s)) for s in first] == [("accel", 1), ("brake", 1), ("steering", 1)]
    second = b.add(_stream_sample([0.15, 0.05], 1))
    # accel now requires [0.1,0.2) and [0.5,0.6); [0.5,0.6) is empty again -> no accel set.
    assert [s.output for s in second] == ["brake", "steering"]
    third = b.add(_stream_sample([0.55, 0.05], 2))
    accel = [s for s in third if s.output == "accel"]
    assert len(accel) == 1 and [x.step for x in accel[0].items] == [1, 2]
    assert list(accel[0].bins) == [2, 6]
    # A required bin stays required: more [0.5,0.6) samples wait for a [0.1,0.2) one.
    for k in range(3, 8):
        assert [s.output for s in b.add(_stream_sample([0.55, 0.05], k))] == ["brake", "steering"]
    fill = b.fill()["accel"]
    assert fill.counts.tolist() == [0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0]
    assert np.flatnonzero(fill.required).tolist() == [2, 6] and fill.ready == 1
    assert b.fill()["steering"].required.sum() == 1


def test_seen_stream_mode_waits_for_the_warmup() -> None:
    b = BalancerV2(rng=rng(), require="seen", warmup=3)
    assert b.add(_stream_sample([0.55, 0.05], 0)) == []
    assert b.add(_stream_sample([0.15, 0.05], 1)) == []
    sets = b.add(_stream_sample([0.55, 0.05], 2))
    assert [(s.output, [x.step for x in s.items]) for s in sets] == [
        ("accel", [1, 0]),
        ("brake", [0]),
        ("brake", [1]),
        ("brake", [2]),
        ("steering", [0]),
        ("steering", [1]),
        ("steering", [2]),
    ]
    assert b.pending == 1  # sample 2 waits in accel [0.5,0.6)

    v4 = BalancerV4(rng=rng(), require="seen", warmup=50, per_bin=2, patience=2)
    emitted = [v4.add_item(i, [0.55, 0.05 if i % 2 else 0.15]) for i in range(60)]
    # Nothing before the 50th sample; then throttle sets ([0.5,0.6) only: 2 samples, one per
    # steering sub-bin) and steering sets (bins (0,.1) and [.1,.2): 2 each) in turn.
    assert not any(emitted[:49]) and emitted[49]
    sets = [s for batch in emitted for s in batch]
    assert all(len(s) == (2 if s.output == "throttle_brake" else 4) for s in sets)
    assert sorted({s.output for s in sets}) == ["steering", "throttle_brake"]
    assert sum(len(s) for s in sets) + v4.pending == 60


def test_require_argument_errors() -> None:
    with pytest.raises(ValueError, match="require must be one of"):
        BalancerV3(rng=rng(), require="some")
    with pytest.raises(ValueError, match="warmup only applies"):
        BalancerV3(rng=rng(), warmup=10)
    assert make_balancer("v4", rng=rng(), require="seen").require == "seen"
    fresh = BalancerV3(rng=rng(), require="seen").fill()
    assert set(fresh) == {"throttle_brake", "steering"}
    assert fresh["steering"].counts.sum() == 0 and not fresh["steering"].required.any()
    assert BalancerV3(rng=rng()).fill()["steering"].required.all()
