"""``python -m acecourse.data download --dir DIR``: put an rMD17 split into a folder, checked.

Ethanol split 01 ships with the course and is copied; any other molecule or split is downloaded
(see :mod:`acecourse.data.rmd17`).  The last line printed makes the course read that folder::

    export ACECOURSE_RMD17_DIR=DIR

Errors are one line on stderr: exit status 2 for bad arguments, 1 when a download or check fails.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from acecourse.data import rmd17

PROG = "python -m acecourse.data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="put the train and test files into DIR")
    download.add_argument("--dir", required=True, type=Path, help="target folder (created)")
    download.add_argument("--molecule", default="ethanol", choices=rmd17.MOLECULES)
    download.add_argument("--split-index", type=int, default=1, choices=range(1, 6))
    args = parser.parse_args(argv)
    target = args.dir.expanduser().resolve()
    try:
        for split in ("train", "test"):
            name = rmd17.split_file_name(args.molecule, split, args.split_index)
            if not (target / name).is_file():
                rmd17.fetch_rmd17(name, target)
            rmd17.verify_file(target / name)
    except (rmd17.RMD17DataError, OSError) as error:
        parser.exit(1, f"{PROG}: error: {error}\n")
    print(f"export {rmd17.ENV_VAR}={shlex.quote(str(target))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
