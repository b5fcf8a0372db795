"""`gta5drive eval` as a script: `python scripts/evaluate.py --help`."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
