"""`gta5drive play` as a script: `python scripts/play.py --help`."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["play", *sys.argv[1:]]))
