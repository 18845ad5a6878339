"""Tests of ``acecourse.interactive``: the geometry in the figures, the menus, the rich outputs.

The geometry is checked against closed forms where they exist (the l = 1, 2 harmonics, the
number of neighbours), otherwise against the course's own functions; the outputs are checked for
what the website needs (the figure's JSON, a described fallback image, no plotly.js and no URL
in the output).  That the website's HTML draws in a browser is checked by ``test_site.py``.
"""

from __future__ import annotations

import base64
import html
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import plotly.io as pio
import pytest
from ase.build import molecule

from acecourse import interactive
from acecourse.maths.spherical_harmonics import real_spherical_harmonics, sphere_quadrature

ETHANOL = molecule("CH3CH2OH")  # ASE's built-in geometry: C C O H H H H H H
F32 = 2e-7  # relative rounding of the float32 arrays stored in the figures


def _array(value) -> np.ndarray:
    """A trace array as numpy, whether plotly holds it as a list, an array or a typed array."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return data.reshape(value.get("shape", data.shape)) if "shape" in value else data
    return np.asarray(value, dtype=float)


# --------------------------------------------------------------------------- harmonics
@pytest.fixture(scope="module")
def harmonics():
    return interactive.spherical_harmonics_figure(l_max=2, l=1, m=-1, resolution=13)


def _grid(resolution: int) -> np.ndarray:
    return interactive._sphere_grid(resolution)


def test_harmonic_surfaces_are_the_closed_forms(harmonics) -> None:
    traces = harmonics.figure.data
    assert len(traces) == 9  # (l_max + 1)^2, in the course's order l*l + l + m
    unit = _grid(13)
    x, y, z = np.moveaxis(unit, -1, 0)
    c1, c2 = np.sqrt(3 / (4 * np.pi)), 0.5 * np.sqrt(15 / np.pi)
    closed = {1: c1 * y, 2: c1 * z, 3: c1 * x, 4: c2 * x * y}  # Y_1^-1, Y_1^0, Y_1^1, Y_2^-2
    for index, expected in closed.items():
        color = _array(traces[index].surfacecolor)
        np.testing.assert_allclose(color, expected, rtol=0, atol=F32 * np.abs(expected).max())


def test_harmonic_surface_radius_is_abs_y_and_colour_is_y(harmonics) -> None:
    unit = _grid(13)
    values = real_spherical_harmonics(2, unit)
    for index, trace in enumerate(harmonics.figure.data):
        xyz = np.stack([_array(trace.x), _array(trace.y), _array(trace.z)], axis=-1)
        scale = np.abs(values[..., index]).max()
        np.testing.assert_allclose(_array(trace.surfacecolor), values[..., index], atol=F32 * scale)
        # the point in direction u lies at distance |Y(u)| along u
        np.testing.assert_allclose(
            xyz, np.abs(values[..., index])[..., None] * unit, atol=2 * F32 * scale
        )
        assert trace.cmin == -trace.cmax and np.isclose(trace.cmax, scale)  # white at Y = 0


def test_harmonic_menu_shows_exactly_one_surface(harmonics) -> None:
    menu = harmonics.figure.layout.updatemenus[0]
    assert len(menu.buttons) == 9 and menu.active == 1  # (l, m) = (1, -1) at 1*1 + 1 - 1
    assert [t.visible for t in harmonics.figure.data] == [k == 1 for k in range(9)]
    for index, button in enumerate(menu.buttons):
        visible = button.args[0]["visible"]
        assert visible == [k == index for k in range(9)], button.label
        l = int(np.floor(np.sqrt(index)))
        assert button.label == f"l = {l}, m = {index - l * l - l}"


def test_harmonics_fallback_fills_the_column_with_legible_titles(harmonics) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from acecourse.plotting import DISPLAY_DPI, EXPORT_SCALE

    # 7.4 in (the 740 CSS px column) at the export scale: shown at 740 px, 1 pt = 100/72 px
    width, _ = np.frombuffer(harmonics.png()[16:24], dtype=">u4")
    assert width == round(7.4 * DISPLAY_DPI * EXPORT_SCALE)
    static = Figure()
    FigureCanvasAgg(static)
    harmonics.draw_static(static)
    static.canvas.draw()
    # the titles are the only text (the panels have no axes): at 10 pt their scripts, at
    # 70 %, are 9.7 CSS px, whatever style the session has set
    assert all(not ax.axison for ax in static.axes)
    assert min(ax.title.get_fontsize() for ax in static.axes) >= 10


@pytest.mark.parametrize(
    "kwargs", [{"l_max": 7}, {"l_max": 2, "l": 3}, {"l": 1, "m": 2}, {"resolution": 5}]
)
def test_harmonics_bad_input(kwargs) -> None:
    with pytest.raises(ValueError):
        interactive.spherical_harmonics_figure(**kwargs)


# --------------------------------------------------------------------------- neighbour density
def test_angular_density_integrates_to_the_number_of_neighbours() -> None:
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(7, 3))
    points, weights = sphere_quadrature(2 * 6 + 2)  # exact for the degree-12 integrand
    for l_max in (0, 3, 6):
        integral = weights @ interactive.angular_density(directions, points, l_max)
        assert abs(integral - 7) < 1e-12


@pytest.fixture(scope="module")
def density():
    return interactive.neighbour_density_figure(
        ETHANOL.positions, ETHANOL.numbers, centre=2, cutoff=2.0, l_max=4, resolution=11
    )


def test_neighbour_density_groups_and_highlighted_neighbours(density) -> None:
    positions = ETHANOL.positions
    traces = density.figure.data
    assert len(traces) == 4 * len(ETHANOL)  # bonds, r_ij vectors, atoms, sphere per centre
    menu = density.figure.layout.updatemenus[0]
    assert menu.active == 2
    for c, button in enumerate(menu.buttons):
        group = traces[4 * c : 4 * c + 4]
        assert button.args[0]["visible"] == [4 * c <= k < 4 * c + 4 for k in range(len(traces))]
        assert all(t.visible == (c == 2) for t in group)
        distances = np.linalg.norm(positions - positions[c], axis=1)
        inside = np.nonzero((distances < 2.0) & (np.arange(len(positions)) != c))[0]
        # the dashed vectors join the centre to exactly the atoms inside the cutoff
        ends = np.stack([_array(group[1].x), _array(group[1].y), _array(group[1].z)], -1)
        ends = ends[~np.isnan(ends[:, 0])].reshape(-1, 2, 3)
        np.testing.assert_allclose(
            ends[:, 0], np.broadcast_to(positions[c], ends[:, 0].shape), atol=1e-5
        )
        np.testing.assert_allclose(ends[:, 1], positions[inside], atol=1e-5)
        assert f"{len(inside)} neighbours" in button.args[1]["title.text"]
        # the sphere has radius r_c around the centre
        sphere = np.stack([_array(group[3].x), _array(group[3].y), _array(group[3].z)], -1)
        np.testing.assert_allclose(np.linalg.norm(sphere - positions[c], axis=-1), 2.0, rtol=1e-6)


def test_neighbour_density_colour_is_the_truncated_density(density) -> None:
    unit = _grid(11)
    vectors = ETHANOL.positions - ETHANOL.positions[2]
    inside = (np.linalg.norm(vectors, axis=1) < 2.0) & (np.arange(len(ETHANOL)) != 2)
    expected = interactive.angular_density(vectors[inside], unit, 4)
    colour = _array(density.figure.data[4 * 2 + 3].surfacecolor)
    np.testing.assert_allclose(colour, expected, atol=F32 * np.abs(expected).max())
    assert "O1" in density.alt and "2 Å" in density.alt
    n_outside = len(ETHANOL) - 1 - inside.sum()  # the fixture's cutoff leaves some out
    assert "(C2H6O)" in density.alt and f"the {n_outside} atoms outside" in density.alt
    whole = interactive.neighbour_density_figure(ETHANOL.positions, ETHANOL.numbers, resolution=9)
    assert "outside" not in whole.alt  # 5 Å holds the whole molecule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"positions": np.zeros((3, 2)), "numbers": [1, 1, 1]},
        {"positions": np.zeros((3, 3)), "numbers": [1, 1]},
        {"positions": ETHANOL.positions, "numbers": ETHANOL.numbers, "centre": 9},
        {"positions": ETHANOL.positions, "numbers": ETHANOL.numbers, "cutoff": 0.0},
        {"positions": ETHANOL.positions, "numbers": ETHANOL.numbers, "centres": [0, 1]},
    ],
    ids=["not-3d", "numbers-length", "centre", "cutoff", "centre-not-offered"],
)
def test_neighbour_density_bad_input(kwargs) -> None:
    kwargs.setdefault("centre", 2)
    with pytest.raises(ValueError):
        interactive.neighbour_density_figure(**kwargs)


# --------------------------------------------------------------------------- trajectory
@pytest.fixture(scope="module")
def trajectory():
    rng = np.random.default_rng(0)
    steps = rng.normal(scale=0.01, size=(25, len(ETHANOL), 3))
    positions = ETHANOL.positions + np.cumsum(steps, axis=0)
    return positions, interactive.trajectory_figure(
        positions, ETHANOL.numbers, time_fs=2.5 * np.arange(25), max_frames=10
    )


def test_trajectory_frames_hold_the_positions(trajectory) -> None:
    positions, figure = trajectory
    keep = np.unique(np.linspace(0, 24, 10).round().astype(int))
    frames = figure.figure.frames
    assert len(frames) == len(keep) == 10 and keep[0] == 0 and keep[-1] == 24
    for frame, k in zip(frames, keep):
        atoms = frame.data[1]
        xyz = np.stack([_array(atoms.x), _array(atoms.y), _array(atoms.z)], -1)
        np.testing.assert_allclose(xyz, positions[k], atol=1e-5)
        assert list(frame.traces) == [0, 1]
    steps = figure.figure.layout.sliders[0].steps
    assert [s.label for s in steps] == [f"{2.5 * k:.1f} fs" for k in keep]
    assert [list(s.args[0]) for s in steps] == [[str(i)] for i in range(10)]


def test_trajectory_bonds_are_ethanols_eight(trajectory) -> None:
    pairs = interactive.bonds(ETHANOL.positions, ETHANOL.numbers)
    symbols = ETHANOL.get_chemical_symbols()
    kinds = sorted("".join(sorted(symbols[i] + symbols[j])) for i, j in pairs)
    assert kinds == ["CC", "CH", "CH", "CH", "CH", "CH", "CO", "HO"]
    _, figure = trajectory
    lines = figure.figure.frames[0].data[0]
    assert np.isnan(_array(lines.x)).sum() == len(pairs)  # one NaN separator per bond


@pytest.mark.parametrize(
    "kwargs",
    [
        {"positions": np.zeros((1, 9, 3))},
        {"positions": np.zeros((5, 9, 2))},
        {"positions": np.zeros((5, 9, 3)), "time_fs": np.arange(4)},
        {"positions": np.full((5, 9, 3), np.nan)},
        {"positions": np.zeros((5, 9, 3)), "max_frames": 1},
    ],
    ids=["one-frame", "not-3d", "times-length", "nan", "max-frames"],
)
def test_trajectory_bad_input(kwargs) -> None:
    with pytest.raises(ValueError):
        interactive.trajectory_figure(numbers=ETHANOL.numbers, **kwargs)


# --------------------------------------------------------------------------- outputs
def _site_parts(figure: interactive.InteractiveFigure) -> tuple[str, dict]:
    text = figure.site_html(div_id="fig-under-test")
    match = re.search(r"var figure = (\{.*?\});\n", text, flags=re.DOTALL)
    assert match, "the figure's JSON is not in the script"
    return text, json.loads(match.group(1))


def test_site_html_carries_the_figure_and_a_described_image(density) -> None:
    text, embedded = _site_parts(density)
    expected = json.loads(pio.to_json(density.figure, validate=False))
    assert embedded == expected
    assert 'class="acecourse-interactive" id="fig-under-test"' in text
    assert "window.Plotly" in text and "Plotly.newPlot" in text
    # no copy of plotly.js, no script from elsewhere, no URL at all
    assert "<script src" not in text and len(text) < 1_000_000
    assert "http://" not in text and "https://" not in text
    image = re.search(
        r'<img class="acecourse-static" alt="([^"]+)" src="data:image/png;base64,', text
    )
    assert image and html.unescape(image.group(1)) == density.alt


def test_static_image_is_a_png_and_leaves_pyplot_alone(trajectory) -> None:
    _, figure = trajectory
    before = plt.get_fignums()
    png = figure.png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = np.frombuffer(png[16:24], dtype=">u4")
    assert 200 < width < 2000 and 200 < height < 2000
    assert plt.get_fignums() == before  # nothing for the inline backend to show twice


def test_mimebundle_modes(harmonics, monkeypatch) -> None:
    site = harmonics.mimebundle("site")
    assert set(site) == {"text/html", "image/png", "text/plain"}
    assert base64.b64decode(site["image/png"]) == harmonics.png()
    live = harmonics.mimebundle("live")
    assert set(live) == {"application/vnd.plotly.v1+json", "image/png", "text/plain"}
    assert len(live["application/vnd.plotly.v1+json"]["data"]) == 9
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    colab = harmonics.mimebundle("live")
    assert "text/html" in colab and "application/vnd.plotly.v1+json" not in colab
    with pytest.raises(ValueError, match="mode"):
        harmonics.mimebundle("print")


def test_auto_mode_follows_the_environment(harmonics, monkeypatch) -> None:
    for name in interactive.SITE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert "application/vnd.plotly.v1+json" in harmonics._repr_mimebundle_()
    for name in interactive.SITE_ENV_VARS:
        monkeypatch.setenv(name, "1")
        assert "text/html" in harmonics._repr_mimebundle_()
        monkeypatch.delenv(name)
