"""Datasets used by the course."""

from acecourse.data.rmd17 import (  # noqa: F401
    RMD17DataError,
    load_rmd17_ethanol,
    resolve_data_dir,
)
