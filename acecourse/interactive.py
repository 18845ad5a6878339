r"""Interactive 3D figures (Plotly) for the places where geometry is the point.

Three helpers, each returning an :class:`InteractiveFigure` that a notebook displays by ending a
cell with the call:

* :func:`spherical_harmonics_figure`: the course's real spherical harmonics
  :math:`Y_l^m` (:mod:`acecourse.maths.spherical_harmonics`) as rotatable surfaces
  :math:`r(\hat{\mathbf r}) = |Y_l^m(\hat{\mathbf r})|`, coloured by the sign, with a menu of
  :math:`(l, m)` inside the figure;
* :func:`neighbour_density_figure`: a molecule with the cutoff sphere around a chosen atom, the
  neighbours inside it highlighted and the sphere coloured by the truncated angular neighbour
  density :math:`\sum_{lm} \big(\sum_j Y_l^m(\hat{\mathbf r}_{ij})\big) Y_l^m(\hat{\mathbf r})`;
* :func:`trajectory_figure`: an animation of a trajectory (frames, a play button, a slider).

Everything the reader can choose is computed here and stored in the figure: the website is
static and has no kernel.

How a figure is shown
---------------------
* **On the website** (a notebook executed by the book build or the tests, recognised by
  ``ACECOURSE_BOOK_BUILD`` or ``ACECOURSE_CI`` in the environment): a ``text/html`` output, a
  ``<div>`` with the figure's JSON and a short script that draws it with ``window.Plotly``.
  plotly.js is *not* in the output: the Sphinx extension ``book/_ext/interactive_figures.py``
  copies the installed plotly's ``plotly.min.js`` to the site's ``_static/`` and loads it on the
  pages with such a figure (no CDN: the site works offline).  The ``<div>`` also holds a PNG of
  the same geometry (matplotlib) with a description as ``alt`` text, shown instead when printing,
  without JavaScript or WebGL, or if plotly.js is missing (which logs a console error that the
  site test catches).  The output also carries ``image/png`` (for a PDF build).
* **In a live session** (JupyterLab, Notebook 7, VS Code): plotly's own MIME type
  ``application/vnd.plotly.v1+json``, drawn by the extension that the plotly package installs,
  with the PNG as fallback.  **In Google Colab**: plotly's own HTML, which loads plotly.js from
  plotly's CDN (Colab is online).

:meth:`InteractiveFigure.mimebundle` takes ``mode="site"`` or ``"live"`` to choose by hand.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from acecourse.maths.spherical_harmonics import real_spherical_harmonics

__all__ = [
    "InteractiveFigure",
    "bonds",
    "neighbour_density_figure",
    "spherical_harmonics_figure",
    "trajectory_figure",
]

#: Environment variables set where a notebook is executed for the website (book build, tests).
SITE_ENV_VARS = ("ACECOURSE_BOOK_BUILD", "ACECOURSE_CI")
#: CSS class of the website's figure container (the Sphinx extension looks for it).
CSS_CLASS = "acecourse-interactive"

_STYLE = f"""<style>
.{CSS_CLASS} {{ margin: 0 auto; max-width: 100%; }}
.{CSS_CLASS} .acecourse-live {{ display: none; width: 100%; }}
.{CSS_CLASS} .acecourse-static {{ display: block; max-width: 100%; height: auto; margin: 0 auto; }}
.{CSS_CLASS}.is-live .acecourse-live {{ display: block; }}
.{CSS_CLASS}.is-live .acecourse-static {{ display: none; }}
@media print {{
  .{CSS_CLASS}.is-live .acecourse-live {{ display: none; }}
  .{CSS_CLASS}.is-live .acecourse-static {{ display: block; }}
}}
</style>"""

_SCRIPT = """<script>
(function () {
  var root = document.getElementById("%(id)s");
  var plot = root.querySelector(".acecourse-live");
  function webgl() {
    try {
      var canvas = document.createElement("canvas");
      return !!(window.WebGLRenderingContext &&
                (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
    } catch (error) { return false; }
  }
  if (!window.Plotly) {
    console.error("acecourse interactive figure %(id)s: plotly.min.js is not loaded");
    return;
  }
  if (!webgl()) {
    console.warn("acecourse interactive figure %(id)s: no WebGL, showing the static image");
    return;
  }
  var figure = %(figure)s;
  root.classList.add("is-live");
  Plotly.newPlot(plot, figure.data, figure.layout, %(config)s)
    .then(function () { return figure.frames ? Plotly.addFrames(plot, figure.frames) : null; })
    .then(function () {  // follow the box, also when the page's layout (not the window) changes
      if (window.ResizeObserver) {
        new ResizeObserver(function () { Plotly.Plots.resize(plot); }).observe(root);
      }
    })
    .catch(function (error) {
      root.classList.remove("is-live");
      console.error("acecourse interactive figure %(id)s failed: " + error);
    });
})();
</script>"""

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
FRAME_MS = 60  # how long an animation shows each frame while playing


@dataclass
class InteractiveFigure:
    """A Plotly figure with its static rendering and description, displayed as a rich output.

    Attributes
    ----------
    figure
        The ``plotly.graph_objects.Figure``.
    draw_static
        Function drawing the same geometry on an empty matplotlib ``Figure`` (the PNG fallback).
    alt
        Description of the picture for a reader who cannot see it (the PNG's ``alt`` text).
    height
        Height of the interactive view in pixels.
    tight
        Crop the static image to its content (``bbox_inches="tight"``, which draws it twice).
    dpi
        Pixels per inch of the static image.
    """

    figure: object
    draw_static: Callable[[object], None]
    alt: str
    height: int = 560
    tight: bool = True
    dpi: int = 110
    _png: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        """The static rendering as PNG bytes at :attr:`dpi` (made once, with matplotlib's Agg
        backend)."""
        if self._png is None:
            from matplotlib.figure import Figure  # not pyplot: nothing for a notebook to show

            dpi = self.dpi
            static = Figure(figsize=(6.4, 4.8), dpi=dpi)
            self.draw_static(static)
            buffer = io.BytesIO()
            static.savefig(
                buffer, format="png", dpi=dpi, bbox_inches="tight" if self.tight else None
            )
            self._png = buffer.getvalue()
        return self._png

    def site_html(self, div_id: str | None = None) -> str:
        """The website's output: a ``<div>`` with the figure, its fallback image and a script
        drawing it with the page's ``window.Plotly`` (nothing is fetched from elsewhere)."""
        import plotly.io as pio

        div_id = div_id or f"acecourse-figure-{uuid.uuid4().hex[:12]}"
        png = base64.b64encode(self.png()).decode("ascii")
        script = _SCRIPT % {
            "id": div_id,
            # plotly writes "<" and "/" as \u003c, \u002f: nothing in it can end the script
            "figure": pio.to_json(self.figure, validate=False, pretty=False),
            "config": json.dumps(_PLOTLY_CONFIG),
        }
        return (
            f'{_STYLE}\n<div class="{CSS_CLASS}" id="{div_id}">\n'
            f'<div class="acecourse-live" style="height: {int(self.height)}px"></div>\n'
            f'<img class="acecourse-static" alt="{html.escape(self.alt, quote=True)}" '
            f'src="data:image/png;base64,{png}">\n{script}\n</div>'
        )

    def mimebundle(self, mode: str = "auto") -> dict[str, object]:
        """The rich output for ``mode`` ``"site"``, ``"live"`` or ``"auto"`` (see module docs)."""
        if mode == "auto":
            mode = "site" if any(os.environ.get(v) for v in SITE_ENV_VARS) else "live"
        if mode not in ("site", "live"):
            raise ValueError(f"mode must be 'auto', 'site' or 'live', got {mode!r}")
        bundle: dict[str, object] = {
            "image/png": base64.b64encode(self.png()).decode("ascii"),
            "text/plain": f"<InteractiveFigure: {self.alt[:100]}>",
        }
        if mode == "site":
            bundle["text/html"] = self.site_html()
        elif "google.colab" in sys.modules:
            import plotly.io as pio

            bundle["text/html"] = pio.to_html(
                self.figure, include_plotlyjs="cdn", full_html=False, config=_PLOTLY_CONFIG
            )
        else:
            bundle["application/vnd.plotly.v1+json"] = self.figure.to_plotly_json()
        return bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.mimebundle()


# --------------------------------------------------------------------------- molecules
def _element_style(numbers: Sequence[int]) -> tuple[list[str], list[str], np.ndarray]:
    """Symbols, colours (the course's for H, C, O; Jmol's otherwise) and covalent radii (Å)."""
    from ase.data import chemical_symbols, covalent_radii
    from ase.data.colors import jmol_colors
    from matplotlib.colors import to_hex

    from acecourse.plotting import COLORS

    numbers = np.asarray(numbers, dtype=int)
    symbols = [chemical_symbols[z] for z in numbers]
    colors = [COLORS.get(s) or to_hex(jmol_colors[z]) for z, s in zip(numbers, symbols)]
    return symbols, colors, covalent_radii[numbers]


def bonds(positions: np.ndarray, numbers: Sequence[int], scale: float = 1.2) -> list[tuple]:
    """Pairs ``(i, j)``, ``i < j``, closer than ``scale`` times the sum of covalent radii."""
    positions = np.asarray(positions, dtype=float)
    _, _, radii = _element_style(numbers)
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    limit = scale * (radii[:, None] + radii[None])
    i, j = np.nonzero(np.triu(distances < limit, k=1))
    return list(zip(i.tolist(), j.tolist()))


def _check_molecule(positions, numbers, frames: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Positions (n_atoms, 3), or (n_frames >= 2, n_atoms, 3) with ``frames``, and the atomic
    numbers (n_atoms,) as float and int arrays, checked."""
    positions = np.asarray(positions, dtype=float)
    numbers = np.asarray(numbers)
    shape, ndim = ("(n_frames >= 2, n_atoms, 3)", 3) if frames else ("(n_atoms, 3)", 2)
    if positions.ndim != ndim or positions.shape[-1] != 3 or (frames and len(positions) < 2):
        raise ValueError(f"positions must have shape {shape}, got {positions.shape}")
    if numbers.shape != (positions.shape[-2],):
        raise ValueError(
            f"numbers must have shape ({positions.shape[-2]},) like positions, got {numbers.shape}"
        )
    if not np.all(np.isfinite(positions)):
        raise ValueError("positions must be finite")
    return positions, numbers.astype(int)


def _f32(values) -> np.ndarray:
    """Float32 copy: the figure's JSON stores numbers as base64 float32 (half of float64)."""
    return np.asarray(values, dtype=np.float32)


def _xyz(points: np.ndarray) -> dict:
    """The ``x``, ``y``, ``z`` arguments of a Plotly 3D trace for ``points`` (..., 3)."""
    return {name: _f32(points[..., k]) for k, name in enumerate("xyz")}


def _lines(positions: np.ndarray, pairs, color: str = "#888888", width: int = 5, **line):
    """A ``scatter3d`` of the segments ``positions[i]``-``positions[j]`` (NaN-separated); by
    default the course's bonds."""
    import plotly.graph_objects as go

    segments = np.full((len(pairs), 3, 3), np.nan)
    segments[:, :2] = positions[np.asarray(pairs, dtype=int).reshape(-1, 2)]
    return go.Scatter3d(
        **_xyz(segments.reshape(-1, 3)),
        mode="lines",
        line={"color": color, "width": width, **line},
        hoverinfo="skip",
    )


def _atoms(positions: np.ndarray, sizes, colors: list[str], text: list[str]):
    """A ``scatter3d`` of the atoms as outlined balls, ``text`` shown on hover."""
    import plotly.graph_objects as go

    return go.Scatter3d(
        **_xyz(positions),
        mode="markers",
        marker={"size": _f32(sizes), "color": colors, "line": {"color": "black", "width": 1}},
        text=text,
        hovertemplate="%{text}<extra></extra>",
    )


def _cube(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Axis ranges (3, 2) of the smallest cube centred on the box from ``low`` to ``high``."""
    half = (high - low).max() / 2
    middle = (high + low) / 2
    return np.stack([middle - half, middle + half], axis=1)


def _scene(ranges: np.ndarray, unit: str = "Å") -> dict:
    """A Plotly 3D scene with axis ranges (3, 2) and equal scales."""
    axis = {"showbackground": False, "gridcolor": "#dddddd", "zerolinecolor": "#aaaaaa"}
    scene = {
        f"{name}axis": {
            **axis,
            "title": {"text": f"{name} ({unit})" if unit else name},
            "range": [float(low), float(high)],
        }
        for name, (low, high) in zip("xyz", ranges)
    }
    return {**scene, "aspectmode": "cube"}


def _static_cube(ax, ranges: np.ndarray) -> None:
    """Matplotlib 3D axes: limits ``ranges`` (3, 2) in Å, labels and equal scales."""
    ax.set(xlim=ranges[0], ylim=ranges[1], zlim=ranges[2])
    ax.set(xlabel="x (Å)", ylabel="y (Å)", zlabel="z (Å)")
    ax.set_box_aspect((1, 1, 1))


#: Height (px) of the band at the top of a figure that Plotly's mode bar (its buttons) occupies;
#: the title is drawn below it, so that the buttons never cover the title, also on a phone.
MODEBAR_BAND = 40
#: Title font size (px).
TITLE_SIZE = 15


def _layout(title: str, scene: dict, **extra) -> dict:
    return {
        "title": {
            "text": title,
            "x": 0.5,
            "xanchor": "center",
            "yref": "container",
            "y": 1.0,
            "yanchor": "top",
            "pad": {"t": MODEBAR_BAND},
            "font": {"size": TITLE_SIZE},
        },
        "scene": scene,
        "margin": {"l": 0, "r": 0, "t": MODEBAR_BAND + 2 * TITLE_SIZE + 8, "b": 0},
        "showlegend": False,
        "template": "none",
        "paper_bgcolor": "white",
        **extra,
    }


def _menu_layout(traces: list, options: list, active: int, scene: dict, **menu) -> dict:
    """Layout with a drop-down menu; shows option ``active`` by setting the traces' visibility.

    ``options`` holds ``(label, title, (start, stop))`` per option: its button shows
    ``traces[start:stop]`` only and sets the title.
    """
    start, stop = options[active][2]
    for k, trace in enumerate(traces):
        trace.visible = start <= k < stop
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [
                {"visible": [start <= k < stop for k in range(len(traces))]},
                {"title.text": title},
            ],
        }
        for label, title, (start, stop) in options
    ]
    dropdown = {"direction": "down", "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "top"}
    return _layout(
        options[active][1],
        scene,
        updatemenus=[{"buttons": buttons, "active": active, **dropdown, **menu}],
    )


# --------------------------------------------------------------------------- harmonics
def _sphere_grid(resolution: int) -> np.ndarray:
    """Unit vectors (resolution, 2 resolution - 1, 3) of a grid in polar and azimuthal angle."""
    theta, phi = np.meshgrid(
        np.linspace(0, np.pi, resolution),
        np.linspace(0, 2 * np.pi, 2 * resolution - 1),
        indexing="ij",
    )
    return np.stack(
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1
    )


SIGN_COLORSCALE = [[0.0, "#d55e00"], [0.5, "#f7f7f7"], [1.0, "#0072b2"]]
"""Orange (negative), white, blue (positive): the sign colours of chapter 00/02's static gallery
(Okabe-Ito vermillion and blue, readable with colour-vision deficiencies)."""


def spherical_harmonics_figure(
    l_max: int = 3, l: int = 2, m: int = 0, resolution: int = 25
) -> InteractiveFigure:
    r"""Real spherical harmonics as surfaces :math:`r = |Y_l^m(\hat{\mathbf r})|`, by sign.

    Parameters
    ----------
    l_max
        Largest degree offered in the menu (``(l_max + 1)**2`` surfaces, 0 <= l_max <= 6).
    l, m
        The harmonic shown first.
    resolution
        Grid points along the polar angle (twice as many along the azimuth).

    Returns
    -------
    InteractiveFigure
        One ``surface`` trace per :math:`(l, m)`, in the course's order ``l*l + l + m``, and a menu
        that shows one of them.  Each surface's distance from the origin in the direction
        :math:`\hat{\mathbf r}` is :math:`|Y_l^m(\hat{\mathbf r})|` (the course's real
        harmonics: orthonormal, no Condon-Shortley phase, :math:`Y_{1,-1}, Y_{10}, Y_{11}
        \propto y, z, x`); its colour is :math:`Y_l^m` itself, blue positive and orange negative.
        The static image is a grid of the harmonics up to :math:`l = 3`, as wide as the
        website's column (7.4 in) and exported at the course's scale
        (:data:`acecourse.plotting.EXPORT_SCALE` pixels per CSS px), its titles in 10 pt.
    """
    import plotly.graph_objects as go

    from acecourse.plotting import DISPLAY_DPI, EXPORT_SCALE

    if not 0 <= l_max <= 6:
        raise ValueError(f"l_max must be between 0 and 6, got {l_max}")
    if not (0 <= l <= l_max and -l <= m <= l):
        raise ValueError(f"need 0 <= l <= l_max = {l_max} and -l <= m <= l, got l={l}, m={m}")
    if resolution < 9:
        raise ValueError(f"resolution must be at least 9, got {resolution}")
    unit = _sphere_grid(resolution)
    values = real_spherical_harmonics(l_max, unit)  # (n_theta, n_phi, (l_max+1)^2)
    extent = float(np.abs(values).max()) * 1.05
    traces, options = [], []
    lm = [(deg, order) for deg in range(l_max + 1) for order in range(-deg, deg + 1)]
    for index, (deg, order) in enumerate(lm):
        y = values[..., index]
        vmax = float(np.abs(y).max())
        traces.append(
            go.Surface(
                **_xyz(np.abs(y)[..., None] * unit),
                surfacecolor=_f32(y),
                cmin=-vmax,
                cmax=vmax,
                colorscale=SIGN_COLORSCALE,
                showscale=False,
                name=f"l={deg}, m={order}",
                hovertemplate=f"Y<sub>{deg}</sub><sup>{order}</sup><extra></extra>",
                lighting={"ambient": 0.7, "diffuse": 0.5, "specular": 0.1},
            )
        )
        title = f"|Y<sub>{deg}</sub><sup>{order}</sup>| as radius, sign as colour (blue > 0)"
        options.append((f"l = {deg}, m = {order}", title, (index, index + 1)))
    scene = _scene(np.array([[-extent, extent]] * 3), unit="")
    layout = _menu_layout(traces, options, l * l + l + m, scene, showactive=True)
    alt = (
        f"Real spherical harmonics Y_l^m for l = 0 to {min(l_max, 3)} drawn as closed surfaces: "
        "in each direction the surface lies at a distance |Y_l^m| from the centre and is blue "
        "where Y_l^m is positive and orange where it is negative. Row l holds the 2l+1 functions "
        "m = -l to l. l = 0 is a sphere; the three l = 1 functions are pairs of lobes along "
        "the y, z and x axes (one blue, one orange); l = 2 gives four-lobed clover shapes and, "
        "for m = 0, two lobes along z with a ring around the middle; l = 3 has six or more lobes."
    )
    draw_static = partial(_draw_harmonics_grid, min(l_max, 3))
    figure = go.Figure(data=traces, layout=layout)
    dpi = DISPLAY_DPI * EXPORT_SCALE  # shown at the column's 7.4 in = 740 CSS px
    return InteractiveFigure(figure, draw_static, alt, tight=False, dpi=dpi)


def _draw_harmonics_grid(l_max: int, static) -> None:
    """Matplotlib: one small 3D surface per (l, m), rows l, columns m (the PNG fallback)."""
    from matplotlib import colors

    unit = _sphere_grid(25)
    values = real_spherical_harmonics(l_max, unit)
    columns = 2 * l_max + 1
    width = 7.4  # the website's column at the course's 100 CSS px per inch
    static.set_size_inches(width, width / columns * 1.12 * (l_max + 1))
    colormap = colors.LinearSegmentedColormap.from_list("sign", [c for _, c in SIGN_COLORSCALE])
    for deg in range(l_max + 1):
        lim = 0.8 * np.abs(values[..., deg * deg : (deg + 1) ** 2]).max()
        for order in range(-deg, deg + 1):
            y = values[..., deg * deg + deg + order]
            ax = static.add_subplot(
                l_max + 1, columns, deg * columns + l_max + order + 1, projection="3d"
            )
            ax.plot_surface(
                *np.moveaxis(np.abs(y)[..., None] * unit, -1, 0),
                facecolors=colormap((y / np.abs(y).max() + 1) / 2),
                rstride=1,
                cstride=1,
                linewidth=0,
                antialiased=False,
                shade=False,
            )
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim))
            ax.set_box_aspect((1, 1, 1))
            ax.set_axis_off()
            ax.set_title(f"$Y_{{{deg}}}^{{{order}}}$", fontsize=10, pad=-4)
    static.subplots_adjust(left=0, right=1, bottom=0, top=0.95, wspace=0, hspace=0.12)


# --------------------------------------------------------------------------- neighbour density
def angular_density(directions: np.ndarray, grid: np.ndarray, l_max: int) -> np.ndarray:
    r"""Truncated angular density :math:`\sum_{l \le l_{\max}, m} A_{lm} Y_l^m(\hat{\mathbf r})`
    with :math:`A_{lm} = \sum_j Y_l^m(\hat{\mathbf r}_j)`, on the unit vectors ``grid``.

    As :math:`l_{\max} \to \infty` it tends to :math:`\sum_j \delta(\hat{\mathbf r},
    \hat{\mathbf r}_j)`; its integral over the sphere is the number of directions for every
    :math:`l_{\max}` (only :math:`Y_0^0` survives).
    """
    coefficients = real_spherical_harmonics(l_max, directions).sum(axis=0)
    return real_spherical_harmonics(l_max, grid) @ coefficients


def _neighbourhood(positions, centre, cutoff, l_max, resolution):
    """Distances from atom ``centre``, the mask of its neighbours inside ``cutoff``, the cutoff
    sphere's points (:func:`_sphere_grid`) and the neighbours' :func:`angular_density` on it."""
    vectors = positions - positions[centre]
    distances = np.linalg.norm(vectors, axis=1)
    inside = (distances < cutoff) & (np.arange(len(positions)) != centre)
    unit = _sphere_grid(resolution)
    density = angular_density(vectors[inside], unit, l_max)  # zero without neighbours
    return distances, inside, positions[centre] + cutoff * unit, density


def neighbour_density_figure(
    positions: np.ndarray,
    numbers: Sequence[int],
    centre: int = 0,
    cutoff: float = 5.0,
    l_max: int = 6,
    centres: Sequence[int] | None = None,
    resolution: int = 31,
) -> InteractiveFigure:
    r"""A molecule with the cutoff sphere of one atom, coloured by the neighbour density.

    Parameters
    ----------
    positions
        Atomic positions (n_atoms, 3) in Å.
    numbers
        Atomic numbers (n_atoms,).
    centre
        Index of the atom shown first.
    cutoff
        Cutoff radius :math:`r_c` in Å.
    l_max
        Degree at which the angular density is truncated.
    centres
        Atoms offered in the menu (default: all).
    resolution
        Grid points of the sphere along the polar angle.

    Returns
    -------
    InteractiveFigure
        For each offered centre: the atoms (neighbours inside :math:`r_c` large and opaque, the
        others small and faded), the vectors :math:`\mathbf r_{ij}` from the centre to its
        neighbours, and the sphere of radius :math:`r_c`, coloured by the angular density of the
        neighbours' directions truncated at ``l_max`` (:func:`angular_density`).  A menu
        chooses the centre.
    """
    import plotly.graph_objects as go
    from ase.formula import Formula

    from acecourse.plotting import DISPLAY_DPI, EXPORT_SCALE

    positions, numbers = _check_molecule(positions, numbers)
    n_atoms = len(positions)
    centres = list(range(n_atoms)) if centres is None else [int(c) for c in centres]
    if not centres or any(not 0 <= c < n_atoms for c in centres):
        raise ValueError(f"centres must be atom indices in [0, {n_atoms}), got {centres}")
    if centre not in centres:
        raise ValueError(f"centre {centre} is not among the offered centres {centres}")
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
    symbols, colors, radii = _element_style(numbers)
    pairs = bonds(positions, numbers)
    labels = [f"{s}{symbols[: i + 1].count(s)}" for i, s in enumerate(symbols)]  # C1, C2, O1, ...

    traces, options = [], []
    for c in centres:
        distances, inside, sphere, density = _neighbourhood(positions, c, cutoff, l_max, resolution)
        large = inside | (np.arange(n_atoms) == c)
        vmax = float(np.abs(density).max()) or 1.0
        title = (
            f"cutoff sphere r<sub>c</sub> = {cutoff:g} Å around {labels[c]}: "
            f"{inside.sum()} neighbours, density to l = {l_max}"
        )
        first = len(traces)
        traces += [
            _lines(positions, pairs),
            _lines(
                positions,
                [(c, j) for j in np.nonzero(inside)[0]],
                color="#E69F00",
                width=3,
                dash="dash",
            ),
            _atoms(
                positions,
                np.where(large, 30 * radii / radii.max() + 6, 7),
                [colors[i] if large[i] else "rgba(180,180,180,0.5)" for i in range(n_atoms)],
                [f"{labels[i]}, r = {distances[i]:.2f} Å" for i in range(n_atoms)],
            ),
            go.Surface(
                **_xyz(sphere),
                surfacecolor=_f32(density),
                cmin=-vmax,
                cmax=vmax,
                colorscale="RdBu_r",
                opacity=0.3,
                showscale=True,
                colorbar={"title": {"text": "neighbours per sr"}, "len": 0.6, "thickness": 12},
                hovertemplate="%{surfacecolor:.2f} neighbours per sr<extra></extra>",
            ),
        ]
        options.append((f"centre {labels[c]}", title, (first, len(traces))))
        if c == centre:  # the neighbours the description names
            inside_first = [labels[j] for j in np.nonzero(inside)[0]]
    scene = _scene(_cube(positions.min(0) - cutoff, positions.max(0) + cutoff))
    layout = _menu_layout(traces, options, centres.index(centre), scene)
    draw_static = partial(
        _draw_neighbour_density, positions, colors, radii, pairs, centre, cutoff, l_max
    )
    n_outside = n_atoms - 1 - len(inside_first)
    formula = Formula.from_list(symbols).format("hill")
    alt = (
        f"A molecule of {n_atoms} atoms ({formula}) drawn as balls and sticks, with "
        f"a translucent sphere of radius {cutoff:g} Å centred on atom {labels[centre]}. The "
        f"{len(inside_first)} atoms inside the sphere ({', '.join(inside_first) or 'none'}) "
        "are drawn large and joined to the centre by dashed lines"
        + (f"; the {n_outside} atoms outside are small and grey. " if n_outside else ". ")
        + "The sphere is coloured by the angular density of the neighbours' directions "
        f"truncated at l = {l_max}: red patches mark the directions in which neighbours lie, "
        "blue the ripples of the truncation in between."
    )
    dpi = DISPLAY_DPI * EXPORT_SCALE  # shown at the column's 7.4 in = 740 CSS px
    return InteractiveFigure(
        go.Figure(data=traces, layout=layout), draw_static, alt, tight=False, dpi=dpi
    )


def _draw_neighbour_density(positions, colors, radii, pairs, centre, cutoff, l_max, static):
    """Matplotlib: the first centre's view of :func:`neighbour_density_figure` (PNG fallback)."""
    from matplotlib import colormaps

    static.set_size_inches(7.4, 6.0)  # the website's column, at the course's export scale
    static.subplots_adjust(0, 0.05, 0.93, 1.02)
    # the painter's order: sphere, then sticks and dashes, then atoms (matplotlib's own depth
    # sort would hide the dashes behind the translucent sphere)
    ax = static.add_subplot(projection="3d", computed_zorder=False)
    _, inside, sphere, density = _neighbourhood(positions, centre, cutoff, l_max, 31)
    ax.plot_surface(
        *np.moveaxis(sphere, -1, 0),
        facecolors=colormaps["RdBu_r"]((density / (np.abs(density).max() or 1.0) + 1) / 2),
        rstride=1,
        cstride=1,
        linewidth=0,
        alpha=0.6,
        shade=False,
        zorder=1,
    )
    for i, j in pairs:
        ax.plot(*positions[[i, j]].T, color="0.45", lw=2, zorder=2)
    for j in np.nonzero(inside)[0]:
        ax.plot(*positions[[centre, j]].T, color="#E69F00", lw=1.5, ls="--", zorder=2)
    big = inside | (np.arange(len(positions)) == centre)
    ax.scatter(
        *positions[big].T,
        s=400 * radii[big] / radii.max(),
        c=[colors[i] for i in np.nonzero(big)[0]],
        edgecolor="k",
        depthshade=False,
        zorder=3,
    )
    if (~big).any():
        ax.scatter(*positions[~big].T, s=30, c="0.7", edgecolor="k", depthshade=False, zorder=3)
    _static_cube(ax, positions[centre][:, None] + np.array([-cutoff, cutoff]))


# --------------------------------------------------------------------------- trajectory
def trajectory_figure(
    positions: np.ndarray,
    numbers: Sequence[int],
    time_fs: Sequence[float] | None = None,
    max_frames: int = 200,
    title: str = "molecular dynamics",
) -> InteractiveFigure:
    r"""An animation of a trajectory: atoms and bonds, a play button and a time slider.

    Parameters
    ----------
    positions
        Positions (n_frames, n_atoms, 3) in Å.
    numbers
        Atomic numbers (n_atoms,).
    time_fs
        Time of each frame in fs (default: the frame index).
    max_frames
        At most this many frames are kept, evenly spaced (first and last included); while
        playing, each is shown for :data:`FRAME_MS` (60) ms.
    title
        Title above the figure.

    Returns
    -------
    InteractiveFigure
        Frame ``k`` of the animation holds the atoms and the bonds (those of the first frame,
        :func:`bonds`) at ``positions[k]``; the axes are fixed to the box holding every frame.
        The static image shows the first frame with each atom's path over the whole trajectory.
    """
    import plotly.graph_objects as go

    positions, numbers = _check_molecule(positions, numbers, frames=True)
    n_frames = len(positions)
    times = np.arange(n_frames, dtype=float) if time_fs is None else np.asarray(time_fs, float)
    if times.shape != (n_frames,):
        raise ValueError(f"time_fs must have shape ({n_frames},), got {times.shape}")
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    keep = np.unique(np.linspace(0, n_frames - 1, min(max_frames, n_frames)).round().astype(int))
    positions, times = positions[keep], times[keep]
    symbols, colors, radii = _element_style(numbers)
    pairs = bonds(positions[0], numbers)
    sizes = 30 * radii / radii.max() + 6

    def frame_traces(xyz: np.ndarray) -> list:
        return [_lines(xyz, pairs), _atoms(xyz, sizes, colors, symbols)]

    def label(t: float) -> str:
        return f"{t:.1f} fs" if time_fs is not None else f"frame {int(t)}"

    frames = [
        go.Frame(data=frame_traces(xyz), name=str(k), traces=[0, 1])
        for k, xyz in enumerate(positions)
    ]
    ranges = _cube(positions.reshape(-1, 3).min(0) - 0.8, positions.reshape(-1, 3).max(0) + 0.8)

    def animate(text: str, names, duration: int = 0, redraw: bool = True, **options) -> dict:
        """A button or slider step that animates to the frames ``names`` (``None``: all)."""
        frame = {"duration": duration, "redraw": redraw}
        return {"label": text, "method": "animate", "args": [names, {"frame": frame, **options}]}

    layout = _layout(
        title,
        _scene(ranges),
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "xanchor": "left",
                "y": 0.0,
                "yanchor": "top",
                "pad": {"t": 10},
                "buttons": [
                    animate("▶ play", None, FRAME_MS, fromcurrent=True, transition={"duration": 0}),
                    animate("❚❚ pause", [None], redraw=False, mode="immediate"),
                ],
            }
        ],
        sliders=[
            {
                "active": 0,
                "x": 0.2,
                "len": 0.8,
                "y": 0.0,
                "yanchor": "top",
                "currentvalue": {"prefix": "t = " if time_fs is not None else ""},
                # one step per frame: the step labels would overlap, the current one is shown
                "font": {"color": "rgba(0,0,0,0)"},
                "ticklen": 0,
                "steps": [
                    animate(label(t), [str(k)], mode="immediate") for k, t in enumerate(times)
                ],
            }
        ],
    )
    figure = go.Figure(data=frame_traces(positions[0]), layout=layout, frames=frames)

    def draw_static(static) -> None:
        ax = static.add_subplot(projection="3d")
        for i in range(positions.shape[1]):
            ax.plot(*positions[:, i].T, color=colors[i], lw=0.8, alpha=0.8)
        for i, j in pairs:
            ax.plot(*positions[0, [i, j]].T, color="0.45", lw=2)
        ax.scatter(
            *positions[0].T, s=250 * radii / radii.max(), c=colors, edgecolor="k", depthshade=False
        )
        _static_cube(ax, ranges)
        ax.set_title(f"{title}: first frame and each atom's path", fontsize=10)

    spread = np.sqrt(((positions - positions.mean(axis=0)) ** 2).sum(-1).mean(0))  # per atom, Å
    widest = symbols[int(np.argmax(spread))]
    alt = (
        f"Animation of {len(numbers)} atoms ({''.join(sorted(set(symbols)))}) over "
        f"{len(positions)} frames from {label(times[0])} to {label(times[-1])}, drawn as balls "
        "and sticks with a play button and a time slider. The static image shows the first "
        "frame with the path of every atom over the whole run as a thin line of its colour; "
        f"the atoms move by {spread.min():.2f} to {spread.max():.2f} Å (root mean square about "
        f"their mean positions), most for a {widest} atom."
    )
    return InteractiveFigure(figure, draw_static, alt)
