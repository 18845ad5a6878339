"""Training MACE (mace-torch) on rMD17 ethanol: profiles, data, loop, schedules, artifacts.

Command line: ``python -m acecourse.training --help``.
"""

import acecourse._mace_import  # noqa: F401  (mace-torch without its cuEquivariance notice)
from acecourse.training.config import PROFILES, TrainConfig, make_config  # noqa: F401
from acecourse.training.trainer import (  # noqa: F401
    TrainingError,
    error_metrics,
    load_trained_model,
    read_metrics,
    train,
)
