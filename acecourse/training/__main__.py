"""Command line: ``python -m acecourse.training COMMAND ...`` (``--help`` lists the commands).

Examples
--------
CPU smoke run (what CI executes)::

    python -m acecourse.training train --profile ci --out runs/ci

The ``full`` recipe on a GPU that runs for hours: one command, which resumes exactly from
``<out>/checkpoint.pt`` when called again with the same ``--out``::

    python -m acecourse.training train --profile full --out runs/seed123

On a GPU in sessions that end (Colab, a job queue), the same command with ``--out`` on a drive
that outlives the session and a time limit per session (``--set max_wall_s=3000``); or a
warm restart from saved weights with one cycle of the ``cycle`` schedule::

    python -m acecourse.training train --profile full --out runs/cycle2 \\
        --set schedule=cycle init_weights=runs/cycle1/model.pt.gz max_epochs=100

Step times of every backend and of stock ``mace_run_train``: ``python scripts/benchmark.py --help``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from acecourse.data.rmd17 import RMD17DataError
from acecourse.training.config import PROFILES, make_config, parse_settings
from acecourse.training.trainer import TrainingError, train  # the package imports them


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m acecourse.training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train or resume a MACE model on rMD17 ethanol")
    p_train.add_argument("--profile", default="ci", choices=sorted(PROFILES))
    p_train.add_argument("--out", required=True, help="output folder (artifacts + checkpoint)")
    p_train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override settings, e.g. --set seed=2 max_epochs=300",
    )
    p_train.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p_xyz = sub.add_parser("xyz", help="the run's frames as extxyz, for mace_run_train")
    p_xyz.add_argument("out_dir", help="folder for train.xyz, valid.xyz, test.xyz")
    p_xyz.add_argument("--profile", default="full", choices=sorted(PROFILES))
    p_eval = sub.add_parser("evaluate", help="test metrics of a finished run in float64")
    p_eval.add_argument("run_dir", help="training output folder with model.pt.gz and config.json")
    p_eval.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p_eval.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)

    command = "python -m acecourse.training " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        if args.command == "evaluate":
            from acecourse.training.evaluate import evaluate_float64

            record = evaluate_float64(
                args.run_dir, args.device, batch_size=args.batch_size, command=command
            )
            print(json.dumps(record, indent=2))
            return 0
        if args.command == "xyz":
            from acecourse.training.stock import stock_command, write_split_xyz

            config = make_config(args.profile)
            paths = write_split_xyz(config, args.out_dir)
            args_stock = stock_command(
                config, paths["train"], paths["valid"], test_file=paths["test"]
            )
            print(json.dumps({**paths, "mace_run_train": shlex.join(args_stock)}, indent=2))
            return 0
        config = make_config(args.profile, parse_settings(args.set))
        result = train(config, args.out, resume=not args.no_resume, command=command)
    except (ValueError, RMD17DataError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
