"""The course's shared display helpers."""

from acecourse.plotting import markdown_table


def test_markdown_table_rows_and_escaped_bars():
    text = markdown_table(["a", "b"], [[1, "x|y"], [2.5, None]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| 2.5 | None |"]
