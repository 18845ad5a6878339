"""Sphinx extension: number the phases from 0, as their folders and titles are.

``_toc.yml`` numbers the five phase parts (``numbered: 2``: the phase and its chapters), and
``use_multitoc_numbering`` makes the numbering continue from part to part, so Sphinx numbers the
phases 1 to 5.  The course calls them Phase 0 to Phase 4 and keeps their chapters in
``00_fundamentals/01_rotations`` ... ``04_multi_ace_framework/04_next_steps``.  This extension
subtracts one from the first component of every section number after Sphinx has assigned them,
and before it numbers the figures, so that chapter ``03_mace_architecture/04_training_mace`` is
3.4 in the sidebar and its figures are Figure 3.4.1, 3.4.2, ... (``numfig_secnum_depth: 2``).
The front and back matter are not numbered.

A phase's index page ends with its bibliography under a "References" heading; Sphinx would number
that section like a chapter after the phase's chapters (1.4, 3.6, 4.5).  Sections titled
:data:`UNNUMBERED_TITLES` keep no number (in the page and in the tables of contents).

The patched method returns the pages whose *shown* numbers changed since the last build, so an
incremental build rewrites only those (Sphinx's own comparison, of its unshifted numbers with the
shifted ones it saved, would list every numbered page every time).
"""

from __future__ import annotations

from docutils import nodes

FIRST_NUMBER = 0
#: Section titles that are never numbered (a page's bibliography).
UNNUMBERED_TITLES = frozenset({"References", "Bibliography"})


def _shifted(number):
    if not number:
        return number
    first = number[0] - 1 + FIRST_NUMBER if isinstance(number[0], int) else number[0]
    return type(number)([first, *number[1:]])


def _shift_all(env) -> None:
    for numbers in env.toc_secnumbers.values():
        for anchor, number in list(numbers.items()):
            numbers[anchor] = _shifted(number)
    for title in env.titles.values():
        if title.get("secnumber"):
            title["secnumber"] = _shifted(title["secnumber"])
    for toc in env.tocs.values():
        for reference in toc.findall(nodes.reference):
            if reference.get("secnumber"):
                reference["secnumber"] = _shifted(reference["secnumber"])


def _unnumber_references(env) -> None:
    """Drop the numbers of sections titled :data:`UNNUMBERED_TITLES` (every page, every toc)."""
    for docname, toc in env.tocs.items():
        numbers = env.toc_secnumbers.get(docname, {})
        for reference in toc.findall(nodes.reference):
            anchor = reference.get("anchorname")
            if anchor and reference.astext().strip() in UNNUMBERED_TITLES:
                numbers[anchor] = None  # a missing key would fall back to the page number
                reference.attributes.pop("secnumber", None)


def _numbers(env) -> dict:
    """Every page's section numbers as tuples (sphinx-external-toc stores some as lists)."""
    return {
        docname: {anchor: None if n is None else tuple(n) for anchor, n in numbers.items()}
        for docname, numbers in env.toc_secnumbers.items()
    }


def _patch(collector_class) -> None:
    original = collector_class.assign_section_numbers
    if getattr(original, "_course_numbering", False):
        return

    def assign_section_numbers(self, env):
        before = _numbers(env)  # the numbers the pages were last written with (shifted)
        original(self, env)
        _shift_all(env)
        _unnumber_references(env)
        after = _numbers(env)
        # Sphinx compares its unshifted numbers with the shifted ones of the last build, which
        # would rewrite every numbered page on every build; compare the numbers pages show.
        return [docname for docname in after if after[docname] != before.get(docname)]

    assign_section_numbers._course_numbering = True
    collector_class.assign_section_numbers = assign_section_numbers


def _on_builder_inited(app) -> None:
    # sphinx-external-toc replaces Sphinx's toctree collector by its own subclass; patch both
    # (the class whose instance is active is the one that numbers)
    from sphinx.environment.collectors.toctree import TocTreeCollector

    try:
        from sphinx_external_toc.collectors import TocTreeCollectorWithStyles
    except ImportError:  # older sphinx-external-toc: Sphinx's own collector numbers
        TocTreeCollectorWithStyles = None
    if TocTreeCollectorWithStyles is not None:
        _patch(TocTreeCollectorWithStyles)
    else:
        _patch(TocTreeCollector)


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
