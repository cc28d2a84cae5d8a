"""The ``ebrl`` command: train, evaluate and plot agents and energies from a shell.

Subcommands, one module each; each module's functions also work from Python::

    ebrl demo                                   # SoftQ on ebrl/MultiGoal-v0: model, plot, summary
    ebrl train --algo softq --env Pendulum-v1 --steps 20000 --n-envs 4 --vec subproc
    ebrl train --algo ibc --env ebrl/Particle-v0 --epochs 100  # or --demos demos.npz on any Box env
    ebrl eval softq_Pendulum-v1.zip --env Pendulum-v1 --episodes 10
    ebrl sample --model model.pt --n 64 --out samples.png
    ebrl energy-plot --model model.pt --out energy.png
    ebrl bench --quick                          # developer command: needs a source checkout

``--algo sql`` is an alias of ``--algo softq``. User errors (an unknown environment id, an
algorithm that does not suit the action space, a missing or damaged file, a bad value, a missing
extra) print one line, ``ebrl <command>: error: <what was expected>``, and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ebrl._checks import MissingExtraError
from ebrl.checkpoint import CheckpointError
from ebrl.cli import bench, demo, energy_plot, evaluate, sample, train
from ebrl.cli._common import UsageError

USER_ERRORS = (UsageError, CheckpointError, MissingExtraError)
"""The errors that report a user's mistake (a bad argument, a damaged file, a missing extra): one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebrl", description="Energy-based models and soft Q-learning agents.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (demo, train, evaluate, sample, energy_plot, bench):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ebrl`` command; return the exit status (0, or 2 for a user error).

    Only the errors in ``USER_ERRORS`` become a one-line message; any other exception is a bug
    and propagates with its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as exc:
        message = " ".join(str(exc).split())  # one line
        print(f"ebrl {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0
