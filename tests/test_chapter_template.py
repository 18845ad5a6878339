"""The template a new chapter starts from (``book/chapter_template.ipynb``) runs and has the
course's rhythm: the opening box, folded imports, a glued number, an assert, a captioned figure,
a folded executed solution and the references."""

from __future__ import annotations

import nbformat
from conftest import ROOT
from kernel_env import kernel_process_environment
from nbclient import NotebookClient

TEMPLATE = ROOT / "book" / "chapter_template.ipynb"


def test_template_executes_and_has_the_chapter_rhythm() -> None:
    nb = nbformat.read(TEMPLATE, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for part in (
        "```{admonition} In this chapter",
        "{glue:text}",
        "{dropdown} Solution",
        "## Exercises",
        "```{bibliography}",
        "laptop CPU",
    ):
        assert part in text, part
    tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
    assert tags[0] == ["hide-cell"] and ["hide-input"] in tags
    assert any("assert " in c.source and not c.metadata.get("tags") for c in nb.cells)
    assert any("figure" in c.metadata.get("mystnb", {}) for c in nb.cells)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(TEMPLATE.parent)}},
    )
    client.execute(env=kernel_process_environment())
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("name") == "stderr" or o.output_type == "error"]
