"""Record expert demonstrations with parallel workers (same as `gta5drive collect`)."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
