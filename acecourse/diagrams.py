"""Diagrams made by code: the ACE pipeline, one MACE layer with its tensor shapes, the design space.

Every diagram is a matplotlib figure of boxes and arrows, built offline; ``scripts/make_diagrams.py``
writes them to ``figures/`` as SVG.  The MACE diagram takes its tensor shapes from an actual forward
pass of :class:`acecourse.mace.CourseMACE` (forward hooks on its blocks), so it cannot drift from
the model: each shape label is a text artist with ``gid="shape:<stage>"``, and the SVG file carries
the shapes as JSON in its description, which ``tests/test_diagrams.py`` compares with a new forward
pass.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from acecourse.plotting import FIGURES_DIR

__all__ = [
    "MACE_STAGES",
    "ace_pipeline_figure",
    "course_mace_config",
    "design_space_map",
    "ethanol_inputs",
    "format_shape",
    "linear_body_order",
    "mace_layer_figure",
    "mace_layer_shapes",
    "save_svg",
    "shape_labels",
    "shapes_description",
    "svg_description",
    "svg_text_sizes",
    "texts_description",
]

_NODE = "#dbe9f6"  # boxes acting on atoms (nodes)
_EDGE = "#fde3c8"  # boxes acting on pairs (edges)
_DATA = "#e6e6e6"  # inputs and outputs
_MIX = "#d9f0d3"  # the product basis and updates

_SCRIPT = re.compile(r"\$[^$]*[_^][^$]*\$")


def _font_size(text: str) -> float:
    """11 pt, or 13 pt for a text with sub- or superscripts (mathtext draws them at 0.7 × 13)."""
    return 13.0 if _SCRIPT.search(text) else 11.0


# --------------------------------------------------------------------------------------------
# drawing primitives
# --------------------------------------------------------------------------------------------
class _Canvas:
    """An axes in data units with named boxes and arrows that start and end on box borders."""

    def __init__(self, figsize: tuple[float, float], xlim: float, ylim: float) -> None:
        self.fig, self.ax = plt.subplots(figsize=figsize)
        self.ax.set_xlim(0, xlim)
        self.ax.set_ylim(0, ylim)
        self.ax.axis("off")
        self.boxes: dict[str, tuple[float, float, float, float]] = {}

    def box(self, name: str, x: float, y: float, w: float, h: float, text: str,
            color: str = _NODE, formula: str | None = None) -> None:
        """A rounded box; ``formula``, if given, goes on the lower half, ``text`` on the upper.

        Texts are drawn at :func:`_font_size`: large enough that their sub- and superscripts are
        as large as the smallest plain text.
        """
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                         boxstyle="round,pad=0.0,rounding_size=0.12",
                                         facecolor=color, edgecolor="#333333", linewidth=1.0))
        alone = formula is None
        self.ax.text(x, y if alone else y + h / 4, text, ha="center", va="center",
                     fontsize=_font_size(text), linespacing=1.35 if alone else 1.25)
        if not alone:
            self.ax.text(x, y - h / 5, formula, ha="center", va="center",
                         fontsize=_font_size(formula), linespacing=1.6)
        self.boxes[name] = (x, y, w, h)

    def _border(self, name: str, toward: tuple[float, float]) -> tuple[float, float]:
        x, y, w, h = self.boxes[name]
        dx, dy = toward[0] - x, toward[1] - y
        scale = min((w / 2) / abs(dx) if dx else np.inf, (h / 2) / abs(dy) if dy else np.inf)
        return x + scale * dx, y + scale * dy

    def arrow(self, start: str, end: str, label: str | None = None, gid: str | None = None,
              offset: tuple[float, float] = (0.12, 0.0), ha: str = "left",
              via: list[tuple[float, float]] | None = None,
              label_at: tuple[float, float] | None = None) -> None:
        """Arrow from box ``start`` to box ``end`` (through the corner points ``via``), labelled.

        The label sits at ``label_at``, or else at the middle of the last straight piece moved
        by ``offset``.
        """
        via = list(via or [])
        p0 = self._border(start, via[0] if via else self.boxes[end][:2])
        p1 = self._border(end, via[-1] if via else self.boxes[start][:2])
        points = [p0, *via]
        for a, b in itertools.pairwise(points):
            self.ax.plot([a[0], b[0]], [a[1], b[1]], color="#333333", lw=1.1)
        p_from = points[-1]
        self.ax.add_patch(FancyArrowPatch(p_from, p1, arrowstyle="-|>", mutation_scale=11,
                                          color="#333333", lw=1.1, shrinkA=0, shrinkB=1))
        if label is not None:
            mx, my = label_at or ((p_from[0] + p1[0]) / 2 + offset[0],
                                  (p_from[1] + p1[1]) / 2 + offset[1])
            self.ax.text(mx, my, label, ha=ha, va="center", fontsize=10, family="monospace",
                         color="#7a1f00", gid=gid,
                         bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})


def format_shape(shape: tuple[int, ...]) -> str:
    """The label of a tensor shape, e.g. ``(9, 256, 16)`` or ``(9,)``: Python's tuple notation."""
    return str(tuple(int(s) for s in shape))


def texts_description(fig: plt.Figure) -> str:
    """JSON of every non-empty visible text of ``fig`` (titles, labels, box texts, tick labels),
    sorted: the description of its SVG file, which stores its texts as paths, so that a committed
    file can be compared with a new drawing."""
    fig.canvas.draw()  # tick labels exist only once the figure is drawn
    texts = sorted(t.get_text() for t in fig.findobj(mpl.text.Text)
                   if t.get_text().strip() and t.get_visible())
    return json.dumps({"texts": texts}, ensure_ascii=False)


def shape_labels(fig: plt.Figure) -> dict[str, str]:
    """The shape labels drawn in ``fig``: ``{stage: text}`` for every text with ``gid="shape:..."``."""
    return {t.get_gid().removeprefix("shape:"): t.get_text() for t in fig.findobj(mpl.text.Text)
            if (t.get_gid() or "").startswith("shape:")}


# --------------------------------------------------------------------------------------------
# (a) the ACE pipeline
# --------------------------------------------------------------------------------------------
def ace_pipeline_figure() -> plt.Figure:
    """Positions → neighbour density → atomic base A → invariants B → energy (Phase 1).

    One box per row, top to bottom, so that the figure fits a 740 px column with its smallest
    text (the sub- and superscripts of the formulas) at 9 px or more; the verb of each step is
    written next to its arrow and the chapter that builds each box to its right.
    """
    width, rows = 7.4, 5
    box_w, box_h, pitch = 4.3, 0.82, 1.3
    height = pitch * (rows - 1) + box_h + 0.3
    canvas = _Canvas((width, height), width, height)
    x = 2.35
    steps = [
        ("positions", _DATA, "neighbours of atom $i$",
         "$\\mathbf{r}_{ij} = \\mathbf{r}_j - \\mathbf{r}_i$,  $r_{ij} < r_c$", ""),
        ("density", _NODE, "neighbour density",
         "$\\rho_i(\\mathbf{r}) = \\sum_j \\delta(\\mathbf{r} - \\mathbf{r}_{ij})$",
         "chapter 1.1"),
        ("A", _NODE, "atomic base",
         "$A_{i,nlm} = \\sum_j R_{n}(r_{ij})\\,Y_l^m(\\hat{\\mathbf{r}}_{ij})$",
         "chapter 1.1"),
        ("B", _MIX, "invariants: products of $\\nu$ factors $A$",
         "$B_{i} = \\sum_{\\mathbf{m}} C_{\\mathbf{lm}}\\,\\mathbf{A}_{i,\\mathbf{nlm}}$",
         "chapter 1.2"),
        ("E", _DATA, "energy", "$E = \\sum_i \\sum_B c_B\\, B_i$", "chapter 1.3"),
    ]
    ys = [height - 0.15 - box_h / 2 - pitch * k for k in range(rows)]
    for (name, color, text, formula, chapter), y in zip(steps, ys):
        canvas.box(name, x, y, box_w, box_h, text, color=color, formula=formula)
        if chapter:
            canvas.ax.text(x + box_w / 2 + 0.15, y, chapter, ha="left", va="center",
                           fontsize=11, color="#555555")
    verbs = ["gather", "project on $R_n Y_l^m$", "multiply, couple to $L=0$", "linear fit"]
    for (a, *_), (b, *_), verb, y0, y1 in zip(steps, steps[1:], verbs, ys, ys[1:]):
        canvas.arrow(a, b)
        canvas.ax.text(x + 0.15, (y0 + y1) / 2, verb, ha="left", va="center", fontsize=13,
                       color="#444444", style="italic")
    return canvas.fig


# --------------------------------------------------------------------------------------------
# (b) one MACE layer, with the shapes of a forward pass
# --------------------------------------------------------------------------------------------
MACE_STAGES = {
    "h_in": "node features h^(t-1) entering the layer",
    "edge_vectors": "edge vectors r_i - r_j (mace-torch's convention, -r_ij)",
    "Y": "spherical harmonics Y(-r_ij) of every edge",
    "radial_basis": "Bessel functions times the envelope",
    "radial_weights": "radial MLP output: one weight per channel and coupling path",
    "h_up": "node features after linear_up",
    "h_j": "the sender's features on every edge",
    "messages": "channel-wise tensor product on every edge",
    "summed": "sum over the neighbours j of each centre i",
    "A": "atomic base A_i (channels x (l_max+1)^2)",
    "sc": "residual: element-dependent linear map of h^(t-1)",
    "m": "symmetric contraction: the message m_i",
    "h_lin": "linear map of the message",
    "h_out": "node features h^(t) leaving the layer",
    "E_t": "site energies of this layer's readout",
}
"""The stages whose tensor shapes :func:`mace_layer_shapes` records (``sc`` only for t > 1)."""


def course_mace_config(profile: str = "full"):
    """The :class:`acecourse.mace.MACEConfig` of a training profile (default: the paper's recipe)."""
    from acecourse.mace import MACEConfig
    from acecourse.training import make_config

    train = make_config(profile)
    return MACEConfig(hidden_irreps=train.hidden_irreps, max_ell=train.max_ell,
                      correlation=train.correlation, num_interactions=train.num_interactions,
                      r_max=train.r_max, num_bessel=train.num_bessel,
                      num_polynomial_cutoff=train.num_polynomial_cutoff,
                      MLP_irreps=train.mlp_irreps, radial_MLP=list(train.radial_mlp))


def ethanol_inputs(config):
    """``(positions, element, edge_index)`` of ASE's ethanol geometry (9 atoms, no data files)."""
    from ase.build import molecule

    from acecourse.mace import atoms_to_inputs

    return atoms_to_inputs(molecule("CH3CH2OH"), config.atomic_numbers, config.r_max)


def mace_layer_shapes(config, layer: int = 2) -> dict[str, tuple[int, ...]]:
    """Tensor shapes inside layer ``layer`` (1-based) of a forward pass on ethanol.

    Builds :class:`acecourse.mace.CourseMACE` from ``config`` (e.g. :func:`course_mace_config`,
    the paper's rMD17 recipe), runs it in float64 on ASE's ethanol, and records the input and
    output shapes of the layer's blocks with forward hooks.

    Returns
    -------
    dict
        ``{stage: shape}`` for the stages of :data:`MACE_STAGES`, in that order.

    Raises
    ------
    ValueError
        If ``layer`` is not between 1 and ``config.num_interactions``.
    """
    import torch

    from acecourse.dtypes import default_dtype
    from acecourse.mace import CourseMACE

    if not 1 <= layer <= config.num_interactions:
        raise ValueError(f"layer must be 1..{config.num_interactions}, got {layer}")
    with default_dtype(torch.float64):
        model = CourseMACE(config)
        interaction, product = model.interactions[layer - 1], model.products[layer - 1]
        seen: dict[str, tuple[int, ...]] = {}

        def record(stage, first_input=False):  # a hook storing the block's output or 1st input
            def hook(module, inputs, output):
                seen[stage] = tuple((inputs[0] if first_input else output).shape)
            return hook

        # hooks on the blocks of a model that lives only here: no need to remove them
        interaction.radial_mlp.register_forward_hook(record("radial_weights"))
        interaction.linear_up.register_forward_hook(record("h_up"))
        interaction.conv_tp.register_forward_hook(record("h_j", first_input=True))
        interaction.conv_tp.register_forward_hook(record("messages"))
        interaction.linear.register_forward_hook(record("summed", first_input=True))
        product.symmetric_contraction.register_forward_hook(record("m"))
        product.linear.register_forward_hook(record("h_lin"))
        if interaction.residual:
            interaction.skip.register_forward_hook(record("sc"))
        keep: dict = {}
        with torch.no_grad():
            model(*ethanol_inputs(config), compute_forces=False, intermediates=keep)
    stored = {"h_in": f"h_{layer - 1}", "edge_vectors": "edge_vectors", "Y": "edge_sh",
              "radial_basis": "edge_radial", "A": f"A_{layer}", "h_out": f"h_{layer}",
              "E_t": f"node_energy_{layer}"}  # stage: key of the model's intermediates
    seen.update({stage: tuple(keep[key].shape) for stage, key in stored.items()})
    return {stage: seen[stage] for stage in MACE_STAGES if stage in seen}


def mace_layer_figure(shapes: dict[str, tuple[int, ...]], layer: int = 2,
                      last: bool = True) -> plt.Figure:
    """Data flow of one MACE layer, each arrow labelled with the shape of the tensor it carries.

    ``shapes`` comes from :func:`mace_layer_shapes`; a layer without ``sc`` (the first layer of
    mace-torch's ``MACE``) is drawn with its element-dependent linear map on the message.
    ``last`` says whether it is the model's last layer (whose readout is an MLP when ``layer > 1``).
    Grey boxes are inputs and outputs, blue boxes act on atoms (nodes), orange boxes on pairs
    (edges), green boxes are the product basis and the update.  The figure is 10.2 inches wide,
    so that a 740 px column shows its smallest text (sub- and superscripts) at 9 px or more.
    """
    t = layer
    residual = "sc" in shapes
    label = {k: format_shape(v) for k, v in shapes.items()}
    c = _Canvas((10.2, 14.2), 10.2, 14.2)
    x_node, x_edge, x_radial, x_mid, x_right = 1.75, 5.1, 8.4, 4.9, 8.65
    y_in, y_y, y_mlp, y_tp, y_sum, y_a, y_prod, y_lin, y_bottom = (
        13.6, 11.95, 10.2, 8.55, 7.05, 5.7, 4.05, 2.25, 0.85)
    c.box("h_in", x_node, y_in, 3.0, 0.85,
          f"node features $h^{{({t - 1})}}_i$\n(output of layer {t - 1})" if t > 1
          else "node features $h^{(0)}_i$\n(element embedding)", color=_DATA)
    c.box("r", x_radial, y_in, 3.3, 0.85, "edges $j \\to i$ with $r_{ij} < r_c$\n"
          "vectors $\\mathbf{r}_i - \\mathbf{r}_j$ (mace)", color=_DATA)
    c.box("up", x_node, y_y, 3.0, 0.75, "linear_up\n(mixes channels)", color=_NODE)
    c.box("Y", x_edge, y_y, 3.0, 0.85, "spherical harmonics\n"
          "$Y_{l}^{m}(-\\hat{\\mathbf{r}}_{ij})$, $l \\leq l_{\\max}$", color=_EDGE)
    c.box("bessel", x_radial, y_y, 3.2, 1.2, "Bessel basis $\\times$ envelope\n"
          "$(2/r_c)^{1/2}\\,\\sin(n\\pi r_{ij}/r_c)$\n$\\times\\, f_c(r_{ij})/r_{ij}$",
          color=_EDGE)
    c.box("gather", x_node, y_mlp, 3.0, 0.85, "copy to edges:\n$h_j$ on every edge $j \\to i$",
          color=_EDGE)
    c.box("mlp", x_radial, y_mlp, 3.2, 0.85,
          f"radial MLP $R^{{({t})}}_{{k\\eta}}(r_{{ij}})$\nchannel $k$, path $\\eta$",
          color=_EDGE)
    c.box("tp", x_edge, y_tp, 4.6, 1.2, "channel-wise tensor product\n"
          "$R(r_{ij})\\,[\\,Y(-\\hat{\\mathbf{r}}_{ij}) \\otimes h_j\\,]$\n"
          "one weight per channel and path", color=_EDGE)
    c.box("sum", x_mid, y_sum, 4.2, 0.6, "sum over neighbours $j \\in \\mathcal{N}(i)$",
          color=_NODE)
    c.box("A", x_mid, y_a, 4.2, 0.85 if residual else 1.2,
          "linear ($K\\times K$ per path), $/\\bar N$"
          + ("" if residual else "\nlinear chosen by $z_i$")
          + f"\n$\\rightarrow$ atomic base $A^{{({t})}}_{{i,klm}}$", color=_NODE)
    c.box("prod", x_mid, y_prod, 3.9, 1.5, "symmetric contraction:\n"
          "products of up to $\\nu$ factors $A$\nweights $W_{zk\\eta}$ of element $z$\n"
          "$\\rightarrow$ message $m_i$", color=_MIX)
    c.box("lin", x_mid, y_lin, 1.9, 0.6, "linear", color=_MIX)
    c.box("out", x_right, y_lin, 2.7, 0.85 if residual else 0.6, f"$h^{{({t})}}_i$"
          + ("\n= linear + residual" if residual else ""), color=_DATA)
    c.box("readout", x_right, y_prod, 2.7, 0.85, f"readout $\\mathcal{{R}}_{t}$\n"
          + ("one-hidden-layer MLP" if last and t > 1 else "linear"), color=_DATA)
    c.box("E", x_right, y_sum, 2.7, 0.6, f"site energy $E^{{({t})}}_i$", color=_DATA)
    c.arrow("h_in", "up", label["h_in"], "shape:h_in")
    c.arrow("r", "Y", label["edge_vectors"], "shape:edge_vectors", offset=(-0.12, 0),
            ha="right", via=[(x_edge, y_in)])
    c.arrow("r", "bessel")
    c.arrow("up", "gather", label["h_up"], "shape:h_up")
    c.arrow("bessel", "mlp", label["radial_basis"], "shape:radial_basis")
    c.arrow("gather", "tp", label["h_j"], "shape:h_j", via=[(x_node, y_tp)],
            label_at=(x_node + 0.12, (y_mlp + y_tp) / 2 - 0.1))
    c.arrow("Y", "tp", label["Y"], "shape:Y")
    c.arrow("mlp", "tp", label["radial_weights"], "shape:radial_weights",
            via=[(x_radial, y_tp)], label_at=(x_radial + 0.12, (y_mlp + y_tp) / 2 - 0.1))
    c.arrow("tp", "sum", label["messages"], "shape:messages", via=[(x_mid, y_tp - 0.6)])
    c.arrow("sum", "A", label["summed"], "shape:summed")
    c.arrow("A", "prod", label["A"], "shape:A")
    c.arrow("prod", "lin", label["m"], "shape:m")
    c.arrow("lin", "out", label["h_lin"], "shape:h_lin", offset=(0.0, 0.3), ha="center")
    c.arrow("out", "readout", label["h_out"], "shape:h_out")
    c.arrow("readout", "E", label["E_t"], "shape:E_t")
    if residual:
        c.box("skip", x_node, y_prod, 2.5, 0.85,
              "residual: linear map\nchosen by element $z_i$", color=_NODE)
        c.arrow("h_in", "skip", via=[(0.12, y_in), (0.12, y_prod)])
        c.arrow("skip", "out", label["sc"], "shape:sc", ha="center",
                via=[(x_node, y_bottom), (x_right, y_bottom)], label_at=(x_mid, y_bottom))
    return c.fig


# --------------------------------------------------------------------------------------------
# (c) the design-space map
# --------------------------------------------------------------------------------------------
def linear_body_order(nu: int, layers: int) -> int:
    """Body order of ``h^(T)`` with linear updates: ``b_T = nu * b_{T-1} + 1``, ``b_0 = 1``.

    Raises ``ValueError`` for ``nu < 1`` or ``layers < 0``.
    """
    if nu < 1 or layers < 0:
        raise ValueError(f"need nu >= 1 and layers >= 0, got nu={nu}, layers={layers}")
    order = 1
    for _ in range(layers):
        order = nu * order + 1
    return order


def design_space_map(max_layers: int = 6, max_nu: int = 4) -> plt.Figure:
    """The (T, ν) plane: every cell shows the body order b_T; published models are placed on it.

    Placements (sources in chapter 04/02): linear ACE for molecules, T = 1 with ν = 3 and 4;
    NequIP, ν = 1 with T = 5 on rMD17 (gated updates); BOTNet, ν = 1 with linear updates, for
    any T; MACE, ν = 3 and T = 2.
    """
    layers = np.arange(1, max_layers + 1)
    nus = np.arange(1, max_nu + 1)
    orders = np.array([[linear_body_order(int(nu), int(t)) for t in layers] for nu in nus])
    fig, ax = plt.subplots(figsize=(8.3, 5.6))
    ax.imshow(np.log10(orders), origin="lower", cmap="Blues", alpha=0.55, aspect="auto",
              extent=(0.5, max_layers + 0.5, 0.5, max_nu + 0.5), vmin=0,
              vmax=np.log10(orders.max()) * 1.3)
    for i, nu in enumerate(nus):
        for j, t in enumerate(layers):
            ax.text(t + 0.3, nu - 0.3, str(orders[i, j]), ha="right", va="bottom", fontsize=10,
                    color="#1a1a1a", gid=f"order:{nu},{t}")
    ax.set_xticks(layers)
    ax.set_yticks(nus)
    ax.tick_params(labelsize=11)
    ax.set_xlabel("number of layers $T$", fontsize=12)
    ax.set_ylabel("correlation order $\\nu$", fontsize=12)
    ax.grid(False)
    for edge in np.arange(0.5, max_layers + 1):
        ax.axvline(edge, color="white", lw=1.5)
    for edge in np.arange(0.5, max_nu + 1):
        ax.axhline(edge, color="white", lw=1.5)
    ax.plot(layers, np.ones(max_layers), "-", color="#009E73", lw=7, alpha=0.35,
            solid_capstyle="round", zorder=2)
    ax.text(0.62, 1.3, "BOTNet: $\\nu=1$, linear updates, body order $T+1$ exactly", ha="left",
            va="center", fontsize=10, color="#00573f", gid="model:BOTNet")
    markers = [  # (T, nu, name, colour, text offset)
        (1, 3, "linear ACE", "#D55E00", (0.12, 0.12)),
        (1, 4, "linear ACE", "#D55E00", (0.12, 0.12)),
        (2, 3, "MACE", "#CC79A7", (0.12, 0.12)),
        (5, 1, "NequIP (rMD17)", "#0072B2", (0.0, 0.17)),
    ]
    for t, nu, name, color, (dx, dy) in markers:
        ax.plot(t, nu, "o", ms=13, mfc=color, mec="black", zorder=3)
        ax.text(t - 0.38 + dx, nu + dy, name, ha="left", va="center", fontsize=10.5, color=color,
                fontweight="bold", gid=f"model:{name}", zorder=4)
    ax.text(4.95, 0.6, "gated updates: unbounded", ha="center", va="center", fontsize=10,
            color="#0072B2")
    ax.set_title("Body order $b_T$ of $h^{(T)}$ with linear updates:\n"
                 "$b_T = \\nu\\, b_{T-1} + 1$, $b_0 = 1$", fontsize=13)
    ax.set_xlim(0.5, max_layers + 0.5)
    ax.set_ylim(0.5, max_nu + 0.5)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def save_svg(fig: plt.Figure, name: str, description: str = "",
             directory: Path | None = None) -> Path:
    """Write ``fig`` to ``figures/<name>.svg`` reproducibly (no date, fixed ids) and return it.

    ``description`` is stored in the SVG's metadata (read it back with :func:`svg_description`).
    """
    if "/" in name or "." in name:
        raise ValueError(f"give a bare figure name without folder or extension, got {name!r}")
    target = Path(directory or FIGURES_DIR)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.svg"
    with mpl.rc_context({"svg.hashsalt": "acecourse", "svg.fonttype": "path"}):
        fig.savefig(path, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Description": description})
    return path


def svg_description(path: Path) -> str:
    """The description stored by :func:`save_svg` in an SVG file ("" when there is none)."""
    return ElementTree.parse(path).getroot().findtext(".//{*}description") or ""


def svg_text_sizes(path: Path) -> tuple[float, list[float]]:
    """The width of an SVG file and the font size of every glyph it draws, both in user units.

    :func:`save_svg` draws texts as glyph paths (``svg.fonttype = "path"``): every glyph is a
    ``<use>`` of a path defined once at 100 units per font size (matplotlib's ``FONT_SCALE``),
    placed under scaled groups.  A glyph's font size is therefore 100 times the product of the
    scale factors from the root to its ``<use>``; sub- and superscripts of mathtext come out
    0.7 times smaller, as they are drawn.  A page that shows the file ``width`` user units wide
    in a column of ``c`` pixels renders a glyph of size ``s`` about ``s * min(1, c / width)``
    pixels tall (a file wider than the column is scaled down; one narrower is not counted as
    scaled up).
    """
    root = ElementTree.parse(path).getroot()
    xlink = "{http://www.w3.org/1999/xlink}href"

    def scale(transform: str | None) -> float:
        factor = 1.0
        for kind, args in re.findall(r"(\w+)\(([^)]*)\)", transform or ""):
            values = [float(a) for a in re.split(r"[\s,]+", args.strip()) if a]
            if kind == "scale":
                factor *= abs(values[0])
            elif kind == "matrix":
                factor *= float(np.hypot(values[0], values[1]))
        return factor

    glyphs = {element.get("id") for element in root.iterfind(".//{*}path")
              if element.get("transform") == "scale(0.015625)"}  # 64 units per glyph unit
    sizes: list[float] = []

    def walk(element, factor: float) -> None:
        if element.tag.endswith("}defs"):
            return
        factor *= scale(element.get("transform"))
        if element.tag.endswith("}use") and (element.get(xlink) or "").lstrip("#") in glyphs:
            sizes.append(round(100.0 * factor, 6))
        for child in element:
            walk(child, factor)

    walk(root, 1.0)
    width = float(re.match(r"[0-9.]+", root.get("width", "0")).group())
    return width, sizes


def shapes_description(shapes: dict[str, tuple[int, ...]], layer: int) -> str:
    """JSON of a layer's shapes, as stored in the MACE diagram's SVG description."""
    return json.dumps({"layer": layer, "shapes": {k: list(v) for k, v in shapes.items()}})
