"""Import mace-torch once, without the notice it prints when cuEquivariance is not installed.

``mace.tools.cg`` prints "cuequivariance or cuequivariance_torch is not available.  Cuequivariance
acceleration will be disabled." at import time (a ``print``, not a warning).  The course uses the
e3nn backend on the CPU, so that line says nothing to a reader and would appear on every page that
imports the course's MACE code.  ``acecourse.mace`` and ``acecourse.training`` import this module
first; anything else mace-torch prints while it is imported is passed on unchanged.
"""

import contextlib
import io
import sys

CUEQ_NOTICE = "cuequivariance or cuequivariance_torch is not available"

with contextlib.redirect_stdout(io.StringIO()) as _printed:
    import mace.tools.cg  # noqa: F401

_other = [line for line in _printed.getvalue().splitlines() if CUEQ_NOTICE not in line]
if _other:
    print("\n".join(_other), file=sys.stdout)
