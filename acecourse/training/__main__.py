"""Command line: ``python -m acecourse.training COMMAND ...`` (``--help`` lists the commands).

Examples
--------
CPU smoke run (what CI executes)::

    python -m acecourse.training train --profile ci --out runs/ci

The ``full`` recipe on a GPU that runs for hours: one command, which resumes exactly from
``<out>/checkpoint.pt`` when called again with the same ``--out``::

    python -m acecourse.training train --profile full --out runs/seed123

On a GPU in sessions that end (Colab, a job queue), either the same command with ``--out`` on a
drive that outlives the session and a time limit per session (``--set max_wall_s=3000``), or
one warm-restart cycle per session from the newest weights of a chain
(``acecourse.training.window``)::

    python -m acecourse.training window --seconds 3000 --out OUT
    python -m acecourse.training land OUT        # add OUT's window to the chain

Step times of every backend and of stock ``mace_run_train``, side by side::

    python -m acecourse.training benchmark --profile full --backends e3nn,e3nn+graph,stock \
        --out bench.json

Moving an exact-resume checkpoint to another machine in parts of at most 15 MiB::

    python -m acecourse.training pack runs/seed123 packed/seed123
    python -m acecourse.training unpack packed/seed123 runs/seed123
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from acecourse.data.rmd17 import RMD17DataError
from acecourse.training.config import PROFILES, make_config, parse_value


def _overrides(pairs: list[str]) -> dict:
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        result[key] = parse_value(value)
    return result


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
    p_window = sub.add_parser(
        "window", help="one warm-restart cycle from the chain's newest weights (one session)"
    )
    p_window.add_argument("--out", required=True, help="folder for the cycle's files")
    p_window.add_argument("--profile", default="full", choices=sorted(PROFILES))
    p_window.add_argument("--seconds", type=float, default=None, help="the session's time left")
    p_window.add_argument("--until", type=float, default=None, help="its end (Unix time)")
    p_window.add_argument("--started", type=float, default=None, help="its start (Unix time)")
    p_window.add_argument("--epochs", type=int, default=None, help="fixed cycle length instead")
    p_window.add_argument("--reserve", type=float, default=45.0, help="seconds kept for the test")
    p_window.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p_start = sub.add_parser("chain-start", help="start chain.csv from a finished run")
    p_start.add_argument("run_dir", help="a finished run the first cycle starts from")
    p_land = sub.add_parser("land", help="add a finished cycle's files to the chain")
    p_land.add_argument("returned", help="the folder holding the cycle's files")
    p_land.add_argument(
        "--profile", default="full", choices=sorted(PROFILES), help="the chain's profile"
    )
    p_returned = sub.add_parser(
        "check-returned", help="list a folder's files; fail on names or depths a copy may lose"
    )
    p_returned.add_argument("out", help="the folder to check")
    p_xyz = sub.add_parser("xyz", help="the run's frames as extxyz, for mace_run_train")
    p_xyz.add_argument("out_dir", help="folder for train.xyz, valid.xyz, test.xyz")
    p_xyz.add_argument("--profile", default="full", choices=sorted(PROFILES))
    p_compare = sub.add_parser("compare", help="validation force error at equal wall time")
    p_compare.add_argument("run_dirs", nargs="+", help="training output folders")
    p_bench = sub.add_parser("benchmark", help="time training steps of every backend")
    p_bench.add_argument("--profile", default="full", choices=sorted(PROFILES))
    p_bench.add_argument("--out", required=True, help="JSON file for the timings")
    p_bench.add_argument("--backends", default="e3nn,e3nn+graph,stock")
    p_bench.add_argument("--steps", type=int, default=100)
    p_bench.add_argument("--stock-epochs", type=int, default=3, help="epochs of mace_run_train")
    p_bench.add_argument("--timeout", type=float, default=900.0, help="seconds per backend")
    p_bench.add_argument(
        "--no-isolate", action="store_true", help="all backends in this process (no time limit)"
    )
    p_bench.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p_eval = sub.add_parser("evaluate", help="test metrics of a finished run in float64")
    p_eval.add_argument("run_dir", help="training output folder with model.pt.gz and config.json")
    p_eval.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p_eval.add_argument("--batch-size", type=int, default=None)
    p_pack = sub.add_parser("pack", help="split a run's checkpoint into checked, compressed parts")
    p_pack.add_argument("run_dir", help="training output folder holding checkpoint.pt")
    p_pack.add_argument("dest", help="folder for the parts and their manifest")
    p_pack.add_argument("--part-mib", type=float, default=15.0, help="largest part (MiB)")
    p_unpack = sub.add_parser("unpack", help="check and join packed parts into checkpoint.pt")
    p_unpack.add_argument("src", help="folder with the parts and their manifest")
    p_unpack.add_argument("run_dir", help="training output folder to resume in")
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
        if args.command == "check-returned":
            from acecourse.training.transport import check_returned

            files = check_returned(args.out)
            for name, size in files:
                print(f"{size / 2**20:8.2f} MiB  {name}")
            print(f"{len(files)} files, {sum(s for _, s in files) / 2**20:.2f} MiB: all come back")
            return 0
        if args.command in ("chain-start", "land", "compare"):
            from acecourse.training import window

            if args.command == "chain-start":
                result = window.start_chain(args.run_dir)
            elif args.command == "land":
                result = window.land_window(args.returned, profile=args.profile)
            else:
                result = window.compare_at_equal_time(args.run_dirs)
            print(json.dumps(result, indent=2))
            return 0
        if args.command == "xyz":
            from acecourse.training.stock import stock_command, write_split_xyz

            paths = write_split_xyz(make_config(args.profile), args.out_dir)
            args_stock = stock_command(
                make_config(args.profile), paths["train"], paths["valid"], test_file=paths["test"]
            )
            print(json.dumps({**paths, "mace_run_train": shlex.join(args_stock)}, indent=2))
            return 0
        if args.command == "window":
            from acecourse.training.window import run_window

            if args.seconds is None and args.until is None and args.epochs is None:
                raise ValueError("give --seconds, --until or --epochs")
            result = run_window(
                args.out,
                seconds=args.seconds,
                until=args.until,
                profile=args.profile,
                overrides=_overrides(args.set),
                epochs=args.epochs,
                reserve_s=args.reserve,
                started=args.started,
                command=command,
            )
            print(json.dumps(result, indent=2))
            return 0
        if args.command in ("pack", "unpack"):
            from acecourse.training import transport

            if args.command == "pack":
                result = transport.pack_checkpoint(args.run_dir, args.dest, args.part_mib)
            else:
                result = transport.unpack_checkpoint(args.src, args.run_dir)
            print(json.dumps(result, indent=2))
            return 0
        config = make_config(args.profile, _overrides(args.set))
        if args.command == "train":
            from acecourse.training.trainer import train

            result = train(config, args.out, resume=not args.no_resume, command=command)
        else:
            from acecourse.training.benchmark import benchmark, summary_table

            if args.stock_epochs < 2:
                raise ValueError(f"--stock-epochs {args.stock_epochs}: give at least 2 epochs")
            result = benchmark(
                config,
                args.backends.split(","),
                args.steps,
                args.out,
                isolate=not args.no_isolate,
                timeout_s=args.timeout,
                stock_epochs=args.stock_epochs,
                verbose=True,
            )
            print(summary_table(result))
            return 0
    except (ValueError, RMD17DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from acecourse.training.trainer import TrainingError

        if isinstance(err, TrainingError):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise
    print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
