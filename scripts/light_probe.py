"""Can a model read the traffic light at this input size? A probe: `python scripts/light_probe.py`.

The expert drives living towns; every frame where the light governing its lane is red or green
and the stop line is less than 30 m ahead is kept with that state. For each input variant a small
CNN (three convolutions, global max pool) is trained to tell red from green on the training towns
and scored on held-out towns by balanced accuracy (the mean of the red and green recalls: most
frames are red, the car waits there), overall and by distance to the stop line.

A variant is ``HxW`` (the hood frame resized with the wrappers' area interpolation, as the
models see it), optionally ``/s1`` for a first convolution of stride 1 instead of 2, e.g.
``45x80``, ``45x80/s1``, ``90x160``, or ``/colour`` for no network at all: a hand-written rule
(the greenest pixel's green excess minus the reddest pixel's red excess in the top two thirds of
the frame, thresholded where it best separates the training towns). The rule is the floor a probe
must reach before its failure says the light is invisible rather than that the probe did not
learn. It tells whether a driving model can see the light at all before one trains it to obey.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def collect(towns: list[int], steps: int, every: int) -> dict[str, np.ndarray]:
    """Hood frames (90×160) near stop lines, their light (1 = green), distance and town."""
    import gymnasium as gym
    from rich.progress import track

    import gta_env  # noqa: F401
    from agents.evaluate import PROTOCOLS

    frames, green, dist, town_of = [], [], [], []
    for town in track(towns, description="driving"):
        env = gym.make(
            "GTA5Drive-v0",
            backend="sim",
            hood_size=(90, 160),
            **PROTOCOLS["town"],  # traffic, walkers, lights, random weather
        )
        _, info = env.reset(seed=town, options={"town_seed": town})
        for i in range(steps):
            obs, _, terminated, truncated, info = env.step(info["expert_action"])
            light, d = info.get("traffic_light"), info.get("stop_line_distance")
            near = d is not None and np.isfinite(d) and 0.0 < d < 30.0
            if light in ("red", "green") and near and i % every == 0:
                frames.append(obs["hood"])
                green.append(light == "green")
                dist.append(d)
                town_of.append(town)
            if terminated or truncated:
                break
        env.close()
    if not frames:
        raise SystemExit(
            "light_probe: no frame near a red or green stop line; drive more towns or steps"
        )
    return {
        "frames": np.stack(frames),
        "green": np.array(green, np.float32),
        "distance": np.array(dist),
        "town": np.array(town_of),
    }


def probe(
    data: dict[str, np.ndarray], variant: str, test_towns: set[int], steps: int, seed: int
) -> dict[str, float]:
    """Train the probe on one input variant; balanced accuracies on the test towns."""
    from wrappers.camera import resize_frames

    size, _, option = variant.partition("/")
    height, width = (int(v) for v in size.split("x"))
    frames = resize_frames(data["frames"], (height, width))
    is_test = np.isin(data["town"], sorted(test_towns))
    truth = data["green"][is_test] > 0.5
    if option == "colour":
        pred = colour_rule(frames, data["green"] > 0.5, ~is_test)[is_test]
    else:
        pred = _cnn(frames, data["green"], is_test, steps, seed, stride=1 if option == "s1" else 2)
    return _scores(pred, truth, data["distance"][is_test])


def colour_rule(frames: np.ndarray, green: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Green (True) where the frame's lamp colour score passes the threshold that gives the
    best balanced accuracy on the ``fit`` frames (see the module docstring)."""
    top = frames[:, : 2 * frames.shape[1] // 3].astype(np.int16)
    r, g, b = top[..., 0], top[..., 1], top[..., 2]
    n = len(frames)
    green_excess = (g - np.maximum(r, b)).reshape(n, -1).max(axis=1)
    red_excess = (r - np.maximum(g, b)).reshape(n, -1).max(axis=1)
    score = green_excess - red_excess
    best, threshold = -1.0, 0
    for t in np.unique(score[fit]):
        above = score[fit] >= t
        balanced = (above[green[fit]].mean() + (~above[~green[fit]]).mean()) / 2
        if balanced > best:
            best, threshold = balanced, t
    return score >= threshold


def _cnn(
    frames: np.ndarray, green: np.ndarray, is_test: np.ndarray, steps: int, seed: int, stride: int
) -> np.ndarray:
    """A small CNN trained on the frames that are not ``is_test``; its predictions on the rest."""
    import torch
    from torch import nn

    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    y = torch.from_numpy(green)
    test = torch.from_numpy(is_test)
    train_idx = torch.nonzero(~test).squeeze(1)
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride, 2),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, 2, 1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1),
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    share = float(y[train_idx].mean())
    weight = torch.tensor((1.0 - share) / max(share, 1e-6))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = train_idx[torch.randint(len(train_idx), (64,), generator=gen)]
        logit = net(x[idx].float() / 255.0).squeeze(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logit, y[idx], pos_weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (net(x[test].float() / 255.0).squeeze(1) > 0).numpy()


def _scores(pred: np.ndarray, truth: np.ndarray, dist: np.ndarray) -> dict[str, float]:
    """Balanced accuracy (overall and by distance) and the recall of each light."""

    def recall(mask: np.ndarray, c: bool) -> float:
        hit = mask & (truth == c)
        return float(np.mean(pred[hit] == c)) if hit.any() else float("nan")

    def balanced(mask: np.ndarray) -> float:
        return float(np.mean([recall(mask, True), recall(mask, False)]))

    everything = np.ones(len(truth), bool)
    return {
        "balanced": balanced(everything),
        "green": recall(everything, True),
        "red": recall(everything, False),
        "0-10 m": balanced(dist < 10),
        "10-20 m": balanced((dist >= 10) & (dist < 20)),
        "20-30 m": balanced(dist >= 20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--towns", type=int, default=24, help="towns driven (the last 30 %% test)")
    parser.add_argument("--first-town", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1200, help="expert steps per town")
    parser.add_argument("--every", type=int, default=3, help="keep every k-th frame")
    parser.add_argument("--train-steps", type=int, default=800)
    parser.add_argument("--variants", default="45x80/colour,45x80,45x80/s1,90x160")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.towns < 4:
        parser.error("--towns must be at least 4 (training and held-out towns)")
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    towns = list(range(args.first_town, args.first_town + args.towns))
    test_towns = set(towns[int(round(0.7 * len(towns))) :])
    data = collect(towns, args.steps, args.every)
    test = np.isin(data["town"], sorted(test_towns))
    table = Table(
        title=f"Red or green? {int((~test).sum())} training frames, {int(test.sum())} held-out "
        f"({int(data['green'][test].sum())} green) from {len(test_towns)} towns"
    )
    for col in (
        "input",
        "balanced acc.",
        "green recall",
        "red recall",
        "0-10 m",
        "10-20 m",
        "20-30 m",
        "train s",
    ):
        table.add_column(col, justify="left" if col == "input" else "right")
    for variant in args.variants.split(","):
        t = time.perf_counter()
        r = probe(data, variant, test_towns, args.train_steps, args.seed)
        table.add_row(
            variant,
            *(f"{r[k]:.3f}" for k in ("balanced", "green", "red", "0-10 m", "10-20 m", "20-30 m")),
            f"{time.perf_counter() - t:.0f}",
        )
    Console(width=130).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
