"""``python -m acecourse.data download --dir DIR``: fetch and check rMD17 ethanol split 01.

Downloads ``rmd17_ethanol_{train,test}_01.npz`` into ``DIR`` from the public rMD17 record (or,
when ``$ACECOURSE_RMD17_URL`` or ``--url`` names one, from a folder that serves the two files;
or, with ``--archive``, from the archive ``rmd17.tar.bz2`` downloaded by hand, a path or URL),
checks both against their SHA-256, and prints the line that makes the course find them::

    export ACECOURSE_RMD17_DIR=DIR

Files already in ``DIR`` are checked, not fetched again.  Errors are one line on stderr; the exit
status is 2 for bad input (unknown command, ``DIR`` not a usable folder) and 1 when the download
or the check fails.

``python -m acecourse.data check-url [URL ...]`` is a network check for maintainers (not part of
CI): it asks each public address of the archive (or each URL given) for its first kilobyte and
reports whether a bzip2 archive starts there; exit status 0 if at least one address works.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from acecourse.data import rmd17

PROG = "python -m acecourse.data"


class _OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit status 2, as argparse's)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (usage: {rmd17.DOWNLOAD_COMMAND})\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    download = commands.add_parser(
        "download", help="download rMD17 ethanol split 01 into DIR and check its SHA-256"
    )
    download.add_argument("--dir", required=True, type=Path, help="target folder (created)")
    source = download.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        default=None,
        help=f"folder serving the two split files (default: ${rmd17.URL_ENV_VAR} if set, "
        "else the public rMD17 archive)",
    )
    source.add_argument(
        "--archive",
        default=None,
        help="the rMD17 archive rmd17.tar.bz2 (a path or a URL), e.g. downloaded in a browser",
    )
    check = commands.add_parser(
        "check-url", help="network check: does each public address serve the rMD17 archive?"
    )
    check.add_argument("urls", nargs="*", help="addresses to check (default: the public ones)")
    return parser


def _check_urls(urls: list[str]) -> int:
    working = 0
    for url in urls or rmd17.RMD17_ARCHIVE_URLS:
        try:
            print(f"ok      {url}: {rmd17.check_url(url)}")
            working += 1
        except rmd17.RMD17DataError as error:
            print(f"FAILED  {error}")
    if not working:
        print(f"{PROG}: error: no address serves the rMD17 archive", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-url":
        return _check_urls(args.urls)
    target = args.dir.expanduser()
    if target.exists() and not target.is_dir():
        print(f"{PROG}: error: --dir {target} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{PROG}: error: cannot create --dir {target}: {error.strerror}", file=sys.stderr)
        return 2
    if not os.access(target, os.W_OK):
        print(f"{PROG}: error: --dir {target} is not writable", file=sys.stderr)
        return 2
    target = target.resolve()
    try:
        missing = [name for name in rmd17.SHA256 if not (target / name).is_file()]
        if missing and args.url:
            rmd17.download_split_files(target, args.url)
        elif missing and args.archive:
            archive = args.archive
            if "://" not in archive:
                archive = Path(archive).expanduser().resolve().as_uri()
            rmd17.download_rmd17(target, url=archive)
        elif missing:
            source = os.environ.get(rmd17.URL_ENV_VAR) or rmd17.RMD17_ARCHIVE_URL
            print(
                f"downloading rMD17 ethanol split 01 from {source} (about 1 GB) ...",
                file=sys.stderr,
            )
            rmd17.download_rmd17(target)
        for name in rmd17.SHA256:
            rmd17.verify_file(target / name)
    except rmd17.RMD17DataError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    print(f"rMD17 ethanol split 01 is in {target} (SHA-256 checked). To use it, run:")
    print(f"export {rmd17.ENV_VAR}={shlex.quote(str(target))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
