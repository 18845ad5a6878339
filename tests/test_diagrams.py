"""The diagrams made by code (``acecourse.diagrams``, ``scripts/make_diagrams.py``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from acecourse import diagrams
from acecourse.dtypes import default_dtype
from acecourse.mace import CourseMACE, MACEConfig
from acecourse.plotting import FIGURES_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_diagrams

LAYER = 2
pytestmark = pytest.mark.usefixtures("cached_coupling_tensors")  # shared with test_mace_model


@pytest.fixture(scope="module")
def full_config() -> MACEConfig:
    return diagrams.course_mace_config("full")


@pytest.fixture(scope="module")
def full_shapes(full_config) -> dict[str, tuple[int, ...]]:
    return diagrams.mace_layer_shapes(full_config, layer=LAYER)


def expected_shapes(config: MACEConfig, layer: int) -> dict[str, tuple[int, ...]]:
    """The shapes of a layer from the configuration and an independent forward pass."""
    from e3nn import o3  # after acecourse.mace, which sets mace's torch.load default first

    positions, element, edge_index = diagrams.ethanol_inputs(config)
    n_atoms = len(element)
    distances = torch.cdist(positions, positions)
    n_edges = int((distances < config.r_max).sum()) - n_atoms  # ordered pairs, no self-pairs
    hidden = o3.Irreps(config.hidden_irreps)
    channels = hidden.count("0e")
    n_sh = (config.max_ell + 1) ** 2
    last = layer == config.num_interactions
    d_in = hidden.dim if layer > 1 else channels
    d_out = o3.Irreps(str(hidden[0])).dim if last else hidden.dim
    with default_dtype(torch.float64):
        model = CourseMACE(config)
        keep: dict = {}
        with torch.no_grad():
            model(positions, element, edge_index, compute_forces=False, intermediates=keep)
    conv = model.interactions[layer - 1].conv_tp
    shapes = {
        "h_in": (n_atoms, d_in),
        "edge_vectors": (n_edges, 3),
        "Y": (n_edges, n_sh),
        "radial_basis": (n_edges, config.num_bessel),
        "radial_weights": (n_edges, conv.weight_numel),
        "h_up": (n_atoms, d_in),
        "h_j": (n_edges, d_in),
        "messages": (n_edges, conv.irreps_out.dim),
        "summed": (n_atoms, conv.irreps_out.dim),
        "A": (n_atoms, channels, n_sh),
        "sc": (n_atoms, d_out),
        "m": (n_atoms, d_out),
        "h_lin": (n_atoms, d_out),
        "h_out": (n_atoms, d_out),
        "E_t": (n_atoms,),
    }
    if layer == 1:
        del shapes["sc"]  # the first layer has no residual
    # the forward pass agrees with the arithmetic where it stores the tensor
    assert tuple(keep[f"A_{layer}"].shape) == shapes["A"]
    assert tuple(keep[f"h_{layer}"].shape) == shapes["h_out"]
    assert tuple(keep[f"h_{layer - 1}"].shape) == shapes["h_in"]
    return shapes


def test_linear_body_order_is_the_recursion_and_the_geometric_sum():
    for nu in range(1, 6):
        for layers in range(7):
            assert diagrams.linear_body_order(nu, layers) == sum(nu**t for t in range(layers + 1))
    assert [diagrams.linear_body_order(1, t) for t in range(5)] == [1, 2, 3, 4, 5]
    assert diagrams.linear_body_order(3, 2) == 13  # MACE
    with pytest.raises(ValueError, match="nu >= 1"):
        diagrams.linear_body_order(0, 2)


def test_design_space_map_labels_every_cell_with_its_body_order():
    fig = diagrams.design_space_map(max_layers=6, max_nu=4)
    texts = {t.get_gid(): t for t in fig.findobj(matplotlib.text.Text) if t.get_gid()}
    cells = {gid: t.get_text() for gid, t in texts.items() if gid.startswith("order:")}
    assert len(cells) == 24
    for nu in range(1, 5):
        for layers in range(1, 7):
            assert cells[f"order:{nu},{layers}"] == str(diagrams.linear_body_order(nu, layers))
    assert {"model:MACE", "model:linear ACE", "model:BOTNet", "model:NequIP (rMD17)"} <= set(texts)
    # MACE's label sits in its cell, T = 2, nu = 3
    x, y = texts["model:MACE"].get_position()
    assert 1.5 < x < 2.5 and 2.5 < y < 3.5
    plt.close(fig)


def test_mace_layer_shapes_equal_the_configuration(full_config, full_shapes):
    assert full_shapes == expected_shapes(full_config, LAYER)
    # the paper's recipe on ethanol: 9 atoms, all 72 ordered pairs within 5 Å, 256 channels,
    # l_max = 3 (h_in's width depends on the feature degree L of the recipe, checked above)
    assert full_shapes["A"] == (9, 256, 16) and full_shapes["h_in"][0] == 9
    assert full_shapes["Y"] == (72, 16)


def test_mace_diagram_labels_are_the_forward_pass_shapes(full_shapes):
    fig = diagrams.mace_layer_figure(full_shapes, LAYER)
    labels = diagrams.shape_labels(fig)
    assert labels == {stage: diagrams.format_shape(shape) for stage, shape in full_shapes.items()}
    plt.close(fig)


def test_committed_mace_diagram_matches_a_new_forward_pass(full_shapes):
    path = FIGURES_DIR / "mace_layer_shapes.svg"
    stored = json.loads(diagrams.svg_description(path))
    assert stored == json.loads(diagrams.shapes_description(full_shapes, LAYER))
    text = path.read_text()
    for stage in full_shapes:  # every shape label is drawn in the file
        assert f'id="shape:{stage}"' in text, stage


def test_first_layer_has_no_residual_and_other_shapes():
    config = MACEConfig(hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2, radial_MLP=[8])
    shapes = diagrams.mace_layer_shapes(config, layer=1)
    assert shapes == expected_shapes(config, 1)
    assert "sc" not in shapes and shapes["A"] == (9, 8, 9)
    fig = diagrams.mace_layer_figure(shapes, layer=1, last=False)
    assert "sc" not in diagrams.shape_labels(fig)
    plt.close(fig)
    with pytest.raises(ValueError, match="layer must be 1..2"):
        diagrams.mace_layer_shapes(config, layer=3)


def test_save_svg_is_reproducible_and_keeps_its_description(tmp_path):
    fig = diagrams.ace_pipeline_figure()
    first = diagrams.save_svg(fig, "pipeline", description="hello", directory=tmp_path / "a")
    second = diagrams.save_svg(fig, "pipeline", description="hello", directory=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert diagrams.svg_description(first) == "hello"
    with pytest.raises(ValueError, match="bare figure name"):
        diagrams.save_svg(fig, "pipeline.svg", directory=tmp_path)
    plt.close(fig)


def test_make_diagrams_check_fails_on_a_stale_file(tmp_path, capsys, monkeypatch, full_config,
                                                   full_shapes):  # fmt: skip
    # each check's forward pass of the full model: the shapes the fixture computed for it
    real_shapes, asked = diagrams.mace_layer_shapes, []

    def mace_layer_shapes(config, layer):
        asked.append((config, layer))
        if (config, layer) == (full_config, LAYER):
            return full_shapes
        return real_shapes(config, layer=layer)

    monkeypatch.setattr(diagrams, "mace_layer_shapes", mace_layer_shapes)
    fig = diagrams.ace_pipeline_figure()
    diagrams.save_svg(fig, "ace_pipeline", description=diagrams.texts_description(fig),
                      directory=tmp_path)
    plt.close(fig)
    fig = diagrams.design_space_map()
    current = diagrams.texts_description(fig)
    diagrams.save_svg(fig, "design_space_map", description=current, directory=tmp_path)
    fig = diagrams.ace_pipeline_figure()  # a MACE diagram whose stored shapes are not current
    diagrams.save_svg(
        fig, "mace_layer_shapes", description='{"layer": 2, "shapes": {}}', directory=tmp_path
    )
    plt.close(fig)
    assert make_diagrams.main(["--out", str(tmp_path), "--check"]) == 1
    assert "mace_layer_shapes.svg is stale" in capsys.readouterr().err
    diagrams.save_svg(fig, "mace_layer_shapes", directory=tmp_path,
                      description=diagrams.shapes_description(full_shapes, LAYER))
    assert make_diagrams.main(["--out", str(tmp_path), "--check"]) == 0
    capsys.readouterr()
    # a map whose texts differ from a new drawing (one body order changed) is stale too
    texts = json.loads(current)["texts"]
    texts[texts.index("13")] = "12"
    diagrams.save_svg(fig, "design_space_map", description=json.dumps({"texts": texts}),
                      directory=tmp_path)
    assert make_diagrams.main(["--out", str(tmp_path), "--check"]) == 1
    assert "design_space_map.svg is stale" in capsys.readouterr().err
    (tmp_path / "ace_pipeline.svg").unlink()
    assert make_diagrams.main(["--out", str(tmp_path), "--check"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert asked == [(full_config, LAYER)] * 3  # every check but the last drew the full model
    plt.close("all")


@pytest.mark.parametrize("name", ["ace_pipeline", "design_space_map"])
def test_committed_diagram_has_the_texts_of_a_new_drawing(name):
    fig = {"ace_pipeline": diagrams.ace_pipeline_figure,
           "design_space_map": diagrams.design_space_map}[name]()
    stored = make_diagrams._stored(FIGURES_DIR / f"{name}.svg")
    assert stored == json.loads(diagrams.texts_description(fig)), (
        f"figures/{name}.svg is stale: run scripts/make_diagrams.py")
    if name == "design_space_map":  # every body order and every model is drawn in the file
        for nu in range(1, 5):
            for layers in range(1, 7):
                assert str(diagrams.linear_body_order(nu, layers)) in stored["texts"]
        assert {"MACE", "linear ACE", "NequIP (rMD17)"} <= set(stored["texts"])
    else:  # B contracts the product basis, bold A as in the notation table; chapters as numbered
        assert any("\\mathbf{A}_{i,\\mathbf{nlm}}" in text for text in stored["texts"])
        assert {"chapter 1.1", "chapter 1.2", "chapter 1.3"} <= set(stored["texts"])
        assert not any("01/0" in text for text in stored["texts"])
    plt.close(fig)


def test_alt_text_of_the_mace_figure_states_the_forward_pass_shapes(full_shapes):
    page = (FIGURES_DIR.parent / "03_mace_architecture" / "index.md").read_text()
    block = page.split("```{figure} ../figures/mace_layer_shapes.svg", 1)[1].split("```", 1)[0]
    alt = next(line for line in block.splitlines() if line.startswith(":alt:"))
    for stage, shape in full_shapes.items():
        assert diagrams.format_shape(shape) in alt, (stage, shape)


COLUMN_PX = 740  # the content column of the book at 1280 px
SMALLEST_PX = 9.0


def displayed_fraction(name: str) -> float:
    """The ``:width:`` (fraction of the column) of the page figure that shows ``figures/<name>.svg``."""
    root = FIGURES_DIR.parent
    pages = [p for p in root.glob("*/*.md") if f"../figures/{name}.svg" in p.read_text()]
    assert pages, f"no page shows figures/{name}.svg"
    fractions = []
    for page in pages:
        block = page.read_text().split(f"../figures/{name}.svg", 1)[1].split("```", 1)[0]
        width = re.search(r"^:width:\s*([0-9.]+)%", block, flags=re.MULTILINE)
        fractions.append(float(width.group(1)) / 100 if width else 1.0)
    return min(fractions)


def test_svg_text_sizes_reads_the_font_sizes_of_a_drawing(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.axis("off")
    ax.text(0.1, 0.5, "plain", fontsize=12)
    ax.text(0.5, 0.5, "$x_i$", fontsize=10)  # mathtext draws the subscript at 0.7 x 10
    path = diagrams.save_svg(fig, "sizes", directory=tmp_path)
    plt.close(fig)
    width, sizes = diagrams.svg_text_sizes(path)
    assert 0 < width <= 4 * 72
    assert sorted(set(sizes)) == pytest.approx([7.0, 10.0, 12.0])


@pytest.mark.parametrize("path", sorted(FIGURES_DIR.glob("*.svg")), ids=lambda p: p.name)
def test_committed_svg_text_is_at_least_9_px_at_its_displayed_width(path):
    """Smallest glyph x min(1, shown width / file width) >= 9 px (never counts scaling up)."""
    width, sizes = diagrams.svg_text_sizes(path)
    assert sizes, f"{path.name} draws no text"
    shown = COLUMN_PX * displayed_fraction(path.stem)
    rendered = min(sizes) * min(1.0, shown / width)
    assert rendered >= SMALLEST_PX, (
        f"{path.name}: smallest text {min(sizes):.2f} units in a {width:.0f}-unit-wide file "
        f"shown {shown:.0f} px wide renders {rendered:.2f} px (< {SMALLEST_PX})")
