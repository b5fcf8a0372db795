"""The balancing ablation: the demo's model, budget and data under every balancing scheme.

One store of living-town demonstrations (the demo's stage 1, or an existing one), balanced by
``off`` (every sample), ``thin`` (the demo's own rule, :func:`agents.demo.balance_steering`)
and the original's schemes ``v1``–``v4`` (:mod:`imitation.balance`, dataset mode; ``v2``
trains one buffer per output from its own samples), each trained with the same
:class:`~imitation.train.TrainConfig` and budget and evaluated on the same held-out towns under
the same protocol (:func:`agents.demo.demo_eval_config`). Writes ``ablation.json`` and
``ablation.md`` (scheme → keep rate, driving score, collisions/km, red lights/km, validation
steering MAE)::

    python scripts/balance_ablation.py --out runs/ablation [--data runs/demo/demonstrations]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.demo import (
    SCHEMES,
    DemoConfig,
    balanced_view,
    collect_demonstrations,
    demo_eval_config,
    demo_train_config,
)


def run_ablation(
    out_dir: str | Path,
    *,
    config: DemoConfig,
    data: str | Path | None = None,
    schemes: tuple[str, ...] = SCHEMES,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and evaluate the demo's model once per scheme; returns one row per scheme."""
    import torch

    from agents.evaluate import evaluate_specs
    from imitation.storage import SampleStore
    from imitation.train import Trainer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = out / "demonstrations"
        if not (data / "store.json").exists():
            collect_demonstrations(config, Path(data), progress=progress)
    store = SampleStore(data)
    rows = []
    for scheme in schemes:
        t0 = time.perf_counter()
        view = balanced_view(store, scheme, config=config)
        train_config = demo_train_config(config, view, progress=progress)
        torch.set_num_threads(max(config.workers, 1))
        trainer = Trainer(config=train_config, store=view, out_dir=out / scheme)
        try:
            val = trainer.train()
        finally:
            trainer.close()
        torch.set_num_threads(1)
        checkpoint = trainer.checkpoint_path(trainer.step)
        report = evaluate_specs(
            [str(checkpoint)],
            config=demo_eval_config(config),
            workers=config.workers,
            progress=progress,
        )
        total = next(iter(report.results.values()))
        tot = report.total(next(iter(report.results)))
        rows.append(
            {
                "scheme": scheme,
                "samples": len(view),
                "keep_rate": len(view) / len(store),
                "driving_score": tot["driving_score"],
                "route_completion": tot["route_completion"],
                "collisions_per_km": tot["collisions_per_km"],
                "red_lights_per_km": tot["red_lights_per_km"],
                "val_steering_mae": float(val.get("val/steering_mae", float("nan"))),
                "val_throttle_brake_mae": float(val.get("val/throttle_brake_mae", float("nan"))),
                "routes": len(total),
                "wall_s": time.perf_counter() - t0,
            }
        )
        print(_markdown(rows, config), flush=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    (out / "ablation.md").write_text(_markdown(rows, config))
    return rows


def _markdown(rows: list[dict[str, Any]], config: DemoConfig) -> str:
    lines = [
        f"Balancing ablation: {config.train_steps} train steps, held-out towns "
        f"{list(config.eval_towns)}, {config.protocol} protocol, routes of "
        f">= {config.eval_route_m:g} m",
        "",
        "| scheme | samples | keep rate | driving score | completion | collisions/km | "
        "red lights/km | val steering MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scheme']} | {r['samples']} | {r['keep_rate']:.1%} | "
            f"{r['driving_score']:.3f} | {r['route_completion']:.3f} | "
            f"{r['collisions_per_km']:.2f} | {r['red_lights_per_km']:.2f} | "
            f"{r['val_steering_mae']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python scripts/balance_ablation.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--data", type=Path, default=None, help="an existing store to balance")
    parser.add_argument("--steps", type=int, default=1000, help="train steps per scheme")
    parser.add_argument("--route-m", type=float, default=600.0, help="evaluation route length")
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--frame-stack", type=int, default=1)
    parser.add_argument(
        "--keep-waiting", type=float, default=None, help="share of braking waits kept (thin)"
    )
    parser.add_argument("--no-speed", action="store_true", help="no speed input to the model")
    parser.add_argument("--seeds", default="1000,1001", help="held-out evaluation towns")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    schemes = tuple(s.strip() for s in args.schemes.split(",") if s.strip())
    unknown = sorted(set(schemes) - set(SCHEMES))
    if unknown:
        raise SystemExit(f"unknown scheme(s) {unknown}; choose from {list(SCHEMES)}")
    from gta_env.fields import parse_seeds

    config = replace(
        DemoConfig(),
        train_steps=args.steps,
        eval_towns=parse_seeds(args.seeds),
        eval_route_m=args.route_m,
        frame_stack=args.frame_stack,
        speed_input=not args.no_speed,
    )
    if args.keep_waiting is not None:
        config = replace(config, keep_waiting=args.keep_waiting)
    run_ablation(
        args.out, config=config, data=args.data, schemes=schemes, progress=not args.no_progress
    )
    return 0
