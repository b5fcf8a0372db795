"""Train a behaviour-cloning model from stored demonstrations (same options as `gta5drive train`)."""

import argparse
import sys

from agents.commands import train

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train.register(sub)
    args = parser.parse_args(["train", *sys.argv[1:]])
    sys.exit(args.func(args))
