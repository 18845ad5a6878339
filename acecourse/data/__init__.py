"""Datasets used by the course: rMD17 (ethanol split 01 ships with the package)."""

from acecourse.data.rmd17 import (
    MOLECULES,
    RMD17DataError,
    load_rmd17,
    load_rmd17_ethanol,
    resolve_data_dir,
)

__all__ = ["MOLECULES", "RMD17DataError", "load_rmd17", "load_rmd17_ethanol", "resolve_data_dir"]
