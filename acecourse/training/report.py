"""What chapter 03_mace_architecture/04_training_mace shows from the committed GPU artifacts.

Bookkeeping kept out of the chapter's main flow: :func:`h200_speeds` gathers the H200 step and
epoch times of every loop from their files, :func:`read_chain` reads the chain of GPU windows
(``chain.csv``, written by ``scripts/device/window.py``) and :func:`chain_figure` draws it
against the published errors.  The chapter asserts what its prose says about them.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from acecourse.training.stock import epoch_times_from_log

CHAIN = Path("artifacts/mace_ethanol/chain")
"""The chain's folder, relative to the repository root."""


def read_chain(chain_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``chain_dir/chain.csv`` (numbers as numbers); [] when there is none."""
    path = Path(chain_dir) / "chain.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def h200_speeds(h200_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Step and epoch times of each training loop measured on the H200 (batch 5 unless said).

    Keys: ``stock`` (mace-torch's ``mace_run_train``, median epoch of its log after the first,
    validation included; its ms per step is that epoch time over the course's steps per
    epoch), ``eager`` and ``graph5`` (the course's loop without and with the CUDA graph),
    ``graph20`` (with the graph, batch 20) and ``pair`` (with the graph, the mean of two runs
    sharing the GPU).  Each value has ``label``, ``batch``, ``ms_per_step``, ``epoch_s``,
    ``source`` and ``device``; the course's loops also ``cuda_graph_used``.
    """
    h200 = Path(h200_dir)

    def read(name: str) -> dict:
        return json.loads((h200 / name).read_text())

    bench5 = read("benchmark_e3nn_eager_vs_graph_batch5.json")
    bench20 = read("benchmark_e3nn_graph_batch20.json")
    pair = [read(f"benchmark_two_processes_at_once_{i}.json") for i in (1, 2)]
    device = bench5["device"]

    def loop(label: str, batch: int, timings: list[dict], source: str = "") -> dict[str, Any]:
        return {
            "label": label,
            "batch": batch,
            "ms_per_step": float(np.mean([t["median_ms_per_step"] for t in timings])),
            "epoch_s": float(np.mean([t["epoch_s_from_median"] for t in timings])),
            "cuda_graph_used": all(t["cuda_graph_used"] for t in timings),
            "source": source or f"benchmark: median step × {timings[0]['steps_per_epoch']}",
            "device": device,
        }

    steps = bench5["backends"]["e3nn+graph"]["steps_per_epoch"]
    stock = epoch_times_from_log((h200 / "stock_mace_run_train_e3nn.log").read_text())
    stock_s = float(np.median(stock[1:]))
    return {
        "stock": {
            "label": "stock `mace_run_train` (validation included)",
            "batch": 5,
            "ms_per_step": 1e3 * stock_s / steps,
            "epoch_s": stock_s,
            "source": f"its log, median of epochs 2-{len(stock)}",
            "device": device,
        },
        "eager": loop("course loop, eager", 5, [bench5["backends"]["e3nn"]]),
        "graph5": loop("course loop + CUDA graph", 5, [bench5["backends"]["e3nn+graph"]]),
        "graph20": loop("course loop + CUDA graph", 20, [bench20["backends"]["e3nn+graph"]]),
        "pair": loop("course loop + CUDA graph, each of two runs at once", 5,
                     [p["backends"]["e3nn+graph"] for p in pair],
                     "two benchmarks at once, mean of the two"),
    }  # fmt: skip


def chain_figure(
    chain: list[dict[str, Any]],
    paper: dict[str, float],
    others: dict[str, dict[str, float]],
    figsize: tuple[float, float] = (7.4, 4.6),
):
    """Test force and energy MAE of each chain row against the cumulative GPU minutes.

    ``paper`` maps ``forces_mae_meV_per_A`` and ``energy_mae_meV`` to the paper's values (black
    lines); ``others`` maps the same keys to ``{label: value}`` of further reference lines
    (orange, dotted then dashed, drawn over the wider paper line so that a value equal to the
    paper's stays visible; its legend entry says so).  The rows give
    ``test_forces_mae_meV_per_A`` and ``test_energy_mae_meV``.  Rows with ``improved == 0``
    (the window kept its start weights) are drawn as open circles.  Each panel's legend, below
    it, names the window, or the range of windows, drawn.  Returns the figure (constrained layout, so it
    may be resized).
    """
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    minutes = [r["cumulative_gpu_min"] for r in chain]
    kept = [r for r in chain if r.get("improved", 1) == 0]
    first, last = chain[0]["window"], chain[-1]["window"]
    drawn = f"window w{first}" if len(chain) == 1 else f"windows w{first}-w{last}"
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, ref, ylabel in [
        (axes[0], "forces_mae_meV_per_A", "test force MAE (meV/Å)"),
        (axes[1], "energy_mae_meV", "test energy MAE (meV/molecule)"),
    ]:
        key, refs = f"test_{ref}", others.get(ref, {})
        maes = [r[key] for r in chain]
        ax.plot(minutes, maes, "o-", color="C0", label=f"{drawn} (float64 test)")
        if kept:
            ax.plot([r["cumulative_gpu_min"] for r in kept], [r[key] for r in kept], "o",
                    mfc="white", color="C0", label="window kept its start weights")  # fmt: skip
        for r in chain:
            ax.annotate(f"w{r['window']}", (r["cumulative_gpu_min"], r[key]),
                        textcoords="offset points", xytext=(4, 4))  # fmt: skip
        ax.axhline(paper[ref], color="k", lw=2.5, label="MACE paper")
        for (label, value), style in zip(refs.items(), (":", "--")):
            same = " (= MACE paper)" if np.isclose(value, paper[ref]) else ""
            ax.axhline(value, color="C1", ls=style, lw=1.2, label=label + same)
        values = [*maes, paper[ref], *refs.values()]
        ax.set(xlabel="cumulative GPU minutes", ylabel=ylabel, yscale="log",
               xlim=(0, max(minutes) * 1.2 + 1), ylim=(min(values) / 1.6, max(values) * 1.8))  # fmt: skip
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        # below the panel: a legend inside would cover the first windows, top left
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.17))
    fig.get_layout_engine().set(w_pad=0.1, wspace=0.08)
    return fig
