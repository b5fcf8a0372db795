"""The balancing ablation as a script: `python scripts/balance_ablation.py --help`."""

from agents.ablation import main

if __name__ == "__main__":
    raise SystemExit(main())
