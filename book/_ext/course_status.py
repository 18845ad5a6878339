"""Sphinx extension: the front page's "where the course stands", read from the artifacts.

The front page (``book/intro.md``) says how close the course's own training runs came to the MACE
paper's rMD17 ethanol result.  Those numbers change whenever a run or a GPU window is committed,
so they are never typed by hand: this extension reads them from ``artifacts/mace_ethanol/`` when
the build starts and gives them to the pages as MyST substitutions (``{{ status_forces_mae }}``):

``status_forces_mae``
    the best test force MAE (meV/Å, one decimal) of the committed runs of the ``full`` recipe:
    every row of ``chain/chain.csv`` (its ``test_forces_mae_meV_per_A`` after
    ``cumulative_epochs``) and every run folder with ``test_metrics.json``, ``config.json`` and
    ``metrics.csv`` (the epochs it trained: the last row of ``metrics.csv``) whose command used
    ``--profile full``;
``status_epochs``
    the epochs that run had trained;
``status_recipe_epochs``
    the ``full`` recipe's epoch count (``max_epochs`` of ``acecourse.training.config``'s
    ``FULL_RECIPE``, read without importing torch);
``status_run``
    where that result lies (``artifacts/mace_ethanol/...``);
``status_recipe_note``
    empty when that run trained the recipe's model, else a short clause that says it trained an
    earlier model and how the recipe's model differs (after a change of the recipe the chain
    restarts: its old rows move to ``chain/previous_*.csv``, read here as earlier results).

A run folder trained the recipe's model when its ``config.json`` agrees with ``FULL_RECIPE`` on
:data:`MODEL_KEYS`; the rows of ``chain/chain.csv`` always do (the chain follows the recipe).

A missing or unreadable artifact is a build error (the page would otherwise state nothing).
"""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "mace_ethanol"
CONFIG = ROOT / "acecourse" / "training" / "config.py"
#: Settings that make a model the recipe's (a run may shorten the epochs or the stages).
MODEL_KEYS = ("num_interactions", "max_ell", "hidden_irreps", "correlation", "mlp_irreps", "r_max")


class StatusError(RuntimeError):
    """The artifacts do not say where the course stands."""


def full_recipe(config_file: Path = CONFIG) -> dict:
    """``FULL_RECIPE`` of ``acecourse/training/config.py`` (a dict literal there)."""
    tree = ast.parse(config_file.read_text())
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "FULL_RECIPE" for t in targets if t):
            recipe = ast.literal_eval(node.value)
            if "max_epochs" in recipe:
                return recipe
    raise StatusError(f"no FULL_RECIPE with max_epochs in {config_file}")


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _last_epoch(metrics_csv: Path) -> int:
    with metrics_csv.open(newline="") as f:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(f) if row.get("epoch")]
    if not epochs:
        raise StatusError(f"{metrics_csv}: no epoch")
    return max(epochs)


def committed_results(artifacts: Path = ARTIFACTS, recipe: dict | None = None) -> list[dict]:
    """Every committed test force MAE of the ``full`` recipe, with its epochs, its place and the
    model settings in which it differs from the recipe's (``{}``: the recipe's model)."""
    recipe = full_recipe() if recipe is None else recipe
    results = []
    for chain in sorted((artifacts / "chain").glob("*.csv")):
        current = chain.name == "chain.csv"
        with chain.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get("window") == "window":  # a repeated header line
                    continue
                try:
                    mae = float(row["test_forces_mae_meV_per_A"])
                    epochs = int(float(row["cumulative_epochs"]))
                except (KeyError, TypeError, ValueError):
                    continue
                results.append(
                    {
                        "mae": mae,
                        "epochs": epochs,
                        "where": f"{_shown(chain)} (window {row.get('window')})",
                        "differs": {} if current else {"model": ("an earlier recipe", None)},
                    }
                )
    for metrics in sorted(artifacts.glob("**/test_metrics.json")):
        run = metrics.parent
        if not ((run / "run.json").is_file() and (run / "metrics.csv").is_file()):
            continue
        command = str(json.loads((run / "run.json").read_text()).get("command", ""))
        if "--profile full" not in command:
            continue
        mae = float(json.loads(metrics.read_text())["forces_mae_meV_per_A"])
        config_file = run / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        differs = {
            key: (config.get(key), recipe[key])
            for key in MODEL_KEYS
            if key in recipe and config.get(key) != recipe[key]
        }
        results.append(
            {
                "mae": mae,
                "epochs": _last_epoch(run / "metrics.csv"),
                "where": _shown(run),
                "differs": differs,
            }
        )
    return results


def status(artifacts: Path = ARTIFACTS, config_file: Path = CONFIG) -> dict[str, str]:
    """The substitutions of the front page (see the module docstring)."""
    recipe = full_recipe(config_file)
    results = committed_results(artifacts, recipe)
    if not results:
        raise StatusError(f"no committed test force MAE of the full recipe under {artifacts}")
    # the recipe's own model first; an earlier model only while the restarted chain has no row
    best = min(results, key=lambda r: (bool(r["differs"]), r["mae"], r["epochs"]))
    note = ""
    if best["differs"]:
        changes = [
            f"`{key}` `{old}` where the recipe now has `{new}`"
            for key, (old, new) in best["differs"].items()
            if new is not None
        ]
        note = ", with an earlier model of the recipe" + (
            f" ({'; '.join(changes)})" if changes else ""
        )
    return {
        "status_forces_mae": f"{best['mae']:.1f}",
        "status_epochs": f"{best['epochs']:,}",
        "status_recipe_epochs": f"{int(recipe['max_epochs']):,}",
        "status_run": best["where"],
        "status_recipe_note": note,
    }


def _on_config_inited(app, config) -> None:
    values = dict(getattr(config, "myst_substitutions", None) or {})
    values.update(status())
    config.myst_substitutions = values


def setup(app):
    app.connect("config-inited", _on_config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
