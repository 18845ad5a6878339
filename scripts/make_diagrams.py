"""Write the course's three diagrams to ``figures/`` as SVG (made by ``acecourse.diagrams``).

    python scripts/make_diagrams.py            # write figures/ace_pipeline.svg,
                                               #   figures/mace_layer_shapes.svg,
                                               #   figures/design_space_map.svg
    python scripts/make_diagrams.py --check    # exit 1 if the committed MACE diagram's shapes
                                               #   differ from a new forward pass
    python scripts/make_diagrams.py --out DIR  # write somewhere else

The MACE diagram shows layer 2 of the model of the training recipe ``full`` (the paper's rMD17
settings) on ASE's ethanol; its shapes come from a forward pass and are stored in the SVG's
description.  Runs offline in 10–30 s on a 2-core CPU (most of it building the model).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES_DIR, help="output folder")
    parser.add_argument("--check", action="store_true",
                        help="only compare the MACE diagram in --out with a new forward pass")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # TorchScript and torch.load notices
    use_course_style()
    path = args.out / "mace_layer_shapes.svg"
    if args.check and not path.exists():
        print(f"error: {path} does not exist; run scripts/make_diagrams.py", file=sys.stderr)
        return 1
    config = diagrams.course_mace_config("full")
    shapes = diagrams.mace_layer_shapes(config, layer=LAYER)
    description = diagrams.shapes_description(shapes, LAYER)
    if args.check:
        if json.loads(diagrams.svg_description(path) or "{}") != json.loads(description):
            print(f"error: {path} is stale; run scripts/make_diagrams.py", file=sys.stderr)
            return 1
        print(f"{path}: shapes agree with a forward pass")
        return 0
    figures = {
        "ace_pipeline": (diagrams.ace_pipeline_figure(), "ACE pipeline (Phase 1)"),
        "mace_layer_shapes": (diagrams.mace_layer_figure(shapes, LAYER, last=True), description),
        "design_space_map": (diagrams.design_space_map(), "design-space map, nu against T"),
    }
    for name in NAMES:
        figure, text = figures[name]
        print(diagrams.save_svg(figure, name, description=text, directory=args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
