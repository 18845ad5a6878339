"""The course's shared display helpers."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from acecourse import plotting
from acecourse.plotting import markdown_table


def test_markdown_table_rows_and_escaped_bars():
    text = markdown_table(["a", "b"], [[1, "x|y"], [2.5, None]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| 2.5 | None |"]


@pytest.mark.parametrize(
    "env, expected",
    [({"ACECOURSE_CI": "1"}, "build"), ({"ACECOURSE_BOOK_BUILD": "1"}, "build"), ({}, "figures")],
)
def test_save_figure_leaves_tracked_figures_alone_in_builds(monkeypatch, tmp_path, env, expected):
    monkeypatch.delenv("ACECOURSE_CI", raising=False)
    monkeypatch.delenv("ACECOURSE_BOOK_BUILD", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(plotting, "FIGURES_DIR", tmp_path / "figures")
    monkeypatch.setattr(plotting, "BUILD_FIGURES_DIR", tmp_path / "build")
    fig = plt.figure()
    path = plotting.save_figure(fig, "probe")
    plt.close(fig)
    assert path == tmp_path / expected / "probe.png" and path.is_file()


def test_figures_go_to_the_repository_never_into_site_packages(tmp_path):
    """An installed package (Colab: pip install from the setup cell's clone) saves into the clone
    that holds the working directory, or into the working directory; a clone saves beside the
    package."""
    clone = tmp_path / "clone"
    (clone / "acecourse").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    (clone / "00_chapter").mkdir()
    installed = tmp_path / "site-packages" / "acecourse" / "plotting.py"
    installed.parent.mkdir(parents=True)
    assert plotting.repository_root(clone / "acecourse" / "plotting.py", tmp_path) == clone
    assert plotting.repository_root(installed, clone / "00_chapter") == clone
    assert plotting.repository_root(installed, tmp_path) is None
    # this working tree: the folder above the package
    assert plotting.FIGURES_DIR == plotting.repository_root() / "figures"
    assert (plotting.FIGURES_DIR.parent / "pyproject.toml").is_file()


def test_show_code_prints_decorator_and_signature_without_the_docstring(capsys) -> None:
    from acecourse.ace.coupling import path_tensor
    from acecourse.plotting import show_code

    show_code(path_tensor)  # decorated with @cache; a docstring of several lines
    shown = capsys.readouterr().out
    assert shown.startswith("@cache\ndef path_tensor(")
    assert '"""' not in shown and "return" in shown
    compile(textwrap.dedent(shown), "shown", "exec")  # valid Python as printed
