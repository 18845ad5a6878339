"""Command line: ``python -m acecourse.training {train,benchmark,evaluate,pack,unpack} ...``.

Examples
--------
CPU smoke run (what CI executes)::

    python -m acecourse.training train --profile ci --out runs/ci

The GPU run of the chapter (resumes automatically from ``<out>/checkpoint.pt``)::

    python -m acecourse.training train --profile full --out artifacts/mace_ethanol/seed123 \\
        --set max_wall_s=540

Moving that checkpoint to another machine or session in parts of at most 15 MiB::

    python -m acecourse.training pack artifacts/mace_ethanol/seed123 packed/seed123
    python -m acecourse.training unpack packed/seed123 artifacts/mace_ethanol/seed123
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
    p_bench = sub.add_parser("benchmark", help="time training steps, e3nn vs cuEquivariance")
    p_bench.add_argument("--profile", default="full", choices=sorted(PROFILES))
    p_bench.add_argument("--out", required=True, help="JSON file for the timings")
    p_bench.add_argument("--backends", default="e3nn,cueq")
    p_bench.add_argument("--steps", type=int, default=100)
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
            from acecourse.training.benchmark import benchmark

            result = benchmark(config, args.backends.split(","), args.steps, args.out)
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
