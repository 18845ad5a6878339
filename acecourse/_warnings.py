"""Warnings of the course's dependencies that a learner cannot act on, filtered narrowly.

``import acecourse`` installs these filters before it imports torch, e3nn or mace-torch, so that a
chapter run anywhere (the website's build, Colab, a learner's own kernel) shows the same clean
output.  Each filter names one warning by its category and the start of its message; every other
warning, of the course or of a library, still shows.

* torch deprecates ``torch.jit.script`` (a ``DeprecationWarning`` in torch 2.13, a
  ``FutureWarning`` from 2.14): e3nn 0.4.4 and mace-torch script their modules on every model
  construction.
* TorchScript's ``UserWarning`` about instance-level annotations in ``__init__``, raised while it
  compiles e3nn's and mace-torch's modules and attributed to Python's ``ast.py``.
* ``FutureWarning``\\ s that torch raises when mace-torch and e3nn are imported or run: the
  deprecated ``torch.cuda.amp`` autocast API, and ``torch.load`` without ``weights_only``.
* tqdm's ``TqdmWarning`` "IProgress not found" (progress bars in a kernel without ipywidgets fall
  back to text bars, which work).
"""

from __future__ import annotations

import warnings

#: ``(message start, category)`` of each filtered warning (regular expressions, as in
#: :func:`warnings.filterwarnings`).
FILTERS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`torch\.jit\.script` is deprecated", DeprecationWarning),
    (r"`torch\.jit\.script` is deprecated", FutureWarning),
    (r"The TorchScript type system doesn't support instance-level annotations", UserWarning),
    (
        r"`torch\.cuda\.amp\.(autocast|custom_fwd|custom_bwd)\(args\.\.\.\)` is deprecated",
        FutureWarning,
    ),
    (r"You are using `torch\.load` with `weights_only=False`", FutureWarning),
)
#: Message start of tqdm's warning without ipywidgets (category ``tqdm.TqdmWarning``).
TQDM_MESSAGE = r"IProgress not found"


def install() -> None:
    """Add the course's filters (ahead of the existing ones; installing twice adds nothing)."""
    for message, category in FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category)
    try:
        from tqdm import TqdmWarning
    except ImportError:  # tqdm is a dependency of the course; nothing to filter without it
        return
    warnings.filterwarnings("ignore", message=TQDM_MESSAGE, category=TqdmWarning)
