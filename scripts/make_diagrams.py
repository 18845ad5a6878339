"""Write the course's three diagrams to ``figures/`` as SVG (made by ``acecourse.diagrams``).

    python scripts/make_diagrams.py            # write figures/ace_pipeline.svg,
                                               #   figures/mace_layer_shapes.svg,
                                               #   figures/design_space_map.svg
    python scripts/make_diagrams.py --check    # exit 1 if a committed diagram differs from a
                                               #   new drawing (see below)
    python scripts/make_diagrams.py --out DIR  # write somewhere else

The MACE diagram shows layer 2 of the model of the training recipe ``full`` (the paper's rMD17
settings) on ASE's ethanol; its shapes come from a forward pass and are stored in the SVG's
description.  The other two diagrams store their texts there (the SVG draws texts as paths), so
``--check`` compares the MACE shapes with a new forward pass and the texts of the other two with a
new drawing.  Runs offline in 10–30 s on a 2-core CPU (most of it building the model).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from acecourse import diagrams
from acecourse.plotting import FIGURES_DIR, use_course_style

LAYER = 2
NAMES = ("ace_pipeline", "mace_layer_shapes", "design_space_map")


def _stored(path: Path) -> dict | None:
    """The JSON description of a diagram's SVG file (None when it has none or an older one)."""
    try:
        return json.loads(diagrams.svg_description(path))
    except json.JSONDecodeError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES_DIR, help="output folder")
    parser.add_argument("--check", action="store_true",
                        help="only compare the diagrams in --out with a new drawing")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # TorchScript and torch.load notices
    use_course_style()
    if args.check:
        missing = [name for name in NAMES if not (args.out / f"{name}.svg").exists()]
        if missing:
            print(f"error: {args.out / (missing[0] + '.svg')} does not exist; "
                  "run scripts/make_diagrams.py", file=sys.stderr)
            return 1
    shapes = diagrams.mace_layer_shapes(diagrams.course_mace_config("full"), layer=LAYER)
    pipeline, space_map = diagrams.ace_pipeline_figure(), diagrams.design_space_map()
    descriptions = {
        "ace_pipeline": diagrams.texts_description(pipeline),
        "mace_layer_shapes": diagrams.shapes_description(shapes, LAYER),
        "design_space_map": diagrams.texts_description(space_map),
    }
    if args.check:
        stale = [name for name, text in descriptions.items()
                 if _stored(args.out / f"{name}.svg") != json.loads(text)]
        for name in stale:
            print(f"error: {args.out / (name + '.svg')} is stale; run scripts/make_diagrams.py",
                  file=sys.stderr)
        if stale:
            return 1
        print(f"{args.out}: {', '.join(NAMES)} agree with a new drawing and forward pass")
        return 0
    figures = {"ace_pipeline": pipeline, "design_space_map": space_map,
               "mace_layer_shapes": diagrams.mace_layer_figure(shapes, LAYER, last=True)}
    for name in NAMES:
        print(diagrams.save_svg(figures[name], name, description=descriptions[name],
                                directory=args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
