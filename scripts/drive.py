"""Drive a town with the expert and film it (same as `gta5drive drive`)."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["drive", *sys.argv[1:]]))
