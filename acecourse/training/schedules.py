"""Learning-rate schedules and loss stages of a run, epoch by epoch.

Two schedules share one interface (:class:`Schedule`): before an epoch, :meth:`Schedule.stage` and
:meth:`Schedule.lr` say which loss stage and learning rate the epoch uses; after its validation,
:meth:`Schedule.after_validation` may change the rate for the next epoch.

``plateau`` (the MACE paper's recipe, mace-torch's default)
    Reduce-on-plateau in stage one: the rate is multiplied by ``lr_factor`` when the validation
    loss has not improved for ``scheduler_patience`` epochs.  From epoch ``stage_two_start`` on,
    stage two: loss weights ``stage_two_energy_weight``/``stage_two_forces_weight`` and the
    constant rate ``stage_two_lr``.

``cycle`` (one warm-restart cycle, SGDR, Loshchilov & Hutter 2017)
    The run starts from trained weights with a fresh optimiser, so the rate first rises linearly
    over ``warmup_epochs`` epochs to its peak ``lr`` (a fresh Adam state applied at full rate would
    throw a trained model far off), then decays along a half cosine to ``cycle_min_lr`` at the last
    epoch, ``max_epochs``.  The last ``stage_two_fraction`` of the epochs are stage two, as the
    last 200 of the ``full`` profile's 1,000 are; there the cosine goes on (at 80 % of a cycle the
    cosine has fallen to 9.5 % of the peak: 1e-3 for a peak of 1e-2, the paper's stage-two rate).
    The number of epochs may be fixed after the warm-up (:meth:`CycleSchedule.plan`):
    :func:`time_plan` measures the epoch time and then fits the cycle to the time left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from acecourse.training.config import TrainConfig


class Schedule:
    """Stage and learning rate of each epoch (``epoch_index`` counts from zero) of a run of
    ``total`` epochs; ``state_dict``/``load_state_dict`` carry what a checkpoint must keep."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.total = config.max_epochs

    def stage(self, epoch_index: int) -> int:
        raise NotImplementedError

    def lr(self, epoch_index: int) -> float:
        raise NotImplementedError

    def after_validation(self, epoch_index: int, valid_loss: float) -> None:
        """Called after each epoch's validation (the plateau rule uses it)."""

    def describe(self) -> str:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


class PlateauSchedule(Schedule):
    """Reduce-on-plateau, then a constant stage-two rate (mace-torch's default recipe)."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.current = config.lr
        # torch's rule itself, on a dummy optimiser: the same arithmetic as mace-torch's scheduler
        self._dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
        self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self._dummy, factor=config.lr_factor, patience=config.scheduler_patience
        )

    def stage(self, epoch_index: int) -> int:
        start = self.config.stage_two_start
        return 2 if start is not None and epoch_index >= start else 1

    def lr(self, epoch_index: int) -> float:
        return self.config.stage_two_lr if self.stage(epoch_index) == 2 else self.current

    def after_validation(self, epoch_index: int, valid_loss: float) -> None:
        if self.stage(epoch_index) == 1:
            self._plateau.step(valid_loss)
            self.current = float(self._dummy.param_groups[0]["lr"])

    def describe(self) -> str:
        c = self.config
        two = "" if c.stage_two_start is None else f", stage two from epoch {c.stage_two_start + 1}"
        return (
            f"plateau: lr {c.lr:g} x {c.lr_factor:g} after {c.scheduler_patience} epochs "
            f"without improvement{two}"
        )

    def state_dict(self) -> dict:
        return {"current": self.current, "plateau": self._plateau.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.current = state["current"]
        self._plateau.load_state_dict(state["plateau"])
        self._dummy.param_groups[0]["lr"] = self.current


class CycleSchedule(Schedule):
    """Linear warm-up to ``config.lr``, half-cosine decay to ``config.cycle_min_lr``."""

    @property
    def stage_two_start(self) -> int:
        """First stage-two epoch (counted from zero)."""
        n_two = round(self.config.stage_two_fraction * self.total)
        return self.total - n_two

    def plan(self, total_epochs: int) -> None:
        """Fix the cycle length (allowed while the warm-up runs: later epochs depend on it)."""
        if total_epochs <= self.config.warmup_epochs:
            raise ValueError(
                f"a cycle of {total_epochs} epochs leaves nothing after the "
                f"{self.config.warmup_epochs}-epoch warm-up"
            )
        self.total = int(total_epochs)

    def stage(self, epoch_index: int) -> int:
        return 2 if epoch_index >= self.stage_two_start else 1

    def lr(self, epoch_index: int) -> float:
        c = self.config
        if epoch_index < c.warmup_epochs:
            return c.lr * (epoch_index + 1) / (c.warmup_epochs + 1)
        decay_epochs = max(1, self.total - c.warmup_epochs - 1)
        progress = min(1.0, (epoch_index - c.warmup_epochs) / decay_epochs)
        return c.cycle_min_lr + 0.5 * (c.lr - c.cycle_min_lr) * (1 + math.cos(math.pi * progress))

    def describe(self) -> str:
        c = self.config
        return (
            f"cycle: {c.warmup_epochs}-epoch linear warm-up to lr {c.lr:g}, cosine to "
            f"{c.cycle_min_lr:g} at epoch {self.total}, stage two from epoch "
            f"{self.stage_two_start + 1}"
        )

    def state_dict(self) -> dict:
        return {"total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.total = state["total"]


def make_schedule(config: TrainConfig) -> Schedule:
    """The schedule named by ``config.schedule``."""
    return CycleSchedule(config) if config.schedule == "cycle" else PlateauSchedule(config)


def time_plan(deadline: float, log: Callable[[str], None] = print) -> Callable[[Any], None]:
    """A ``plan`` for :func:`~acecourse.training.trainer.train`: after the warm-up, fit the
    cycle into the time left before ``deadline`` (``time.time()`` seconds).

    The time per epoch is the wall time from the end of the first epoch (which records the CUDA
    graph) to the end of the warm-up, per epoch: the steps and the validation, and whatever
    else runs between epochs (so the cycle's end does not slip by it).  One epoch of the time
    left is kept as margin.
    """

    def plan(run: Any) -> None:  # a trainer.Run
        if run.epoch != max(1, run.config.warmup_epochs) or "plan" in run.run_info:
            return
        history = run.history
        if len(history) > 1:
            epoch_s = (history[-1]["wall_time_s"] - history[0]["wall_time_s"]) / (len(history) - 1)
        else:
            epoch_s = history[0]["epoch_time_s"]
        left = deadline - time.time()
        total = run.epoch + max(1, int(left // epoch_s) - 1)
        run.schedule.plan(total)
        run.run_info["plan"] = {"epoch_s": epoch_s, "seconds_left": left, "epochs": total}
        log(f"time plan: {epoch_s:.2f} s per epoch, {left:.0f} s left -> {total} epochs")

    return plan
