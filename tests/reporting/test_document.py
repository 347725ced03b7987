"""The report's page format: one block list, rendered to Markdown and self-contained HTML."""

from __future__ import annotations

from snn2hw.common.tables import markdown_table
from snn2hw.reporting.document import Doc


def _doc() -> Doc:
    doc = Doc()
    doc.h(1, "Title")
    doc.h(2, "Energy & latency")
    doc.p("Use `snn2hw energy` for **modelled** numbers <here>.")
    doc.note("not run")
    doc.ul([])  # an empty list adds nothing
    doc.ul(["a", "b"])
    doc.table(["what", "value"], [["x|y", 1], ["long " * 10, 2.5]])
    return doc


def test_markdown_uses_the_shared_table_renderer() -> None:
    md = _doc().markdown()
    table = markdown_table(["what", "value"], [["x|y", "1"], ["long " * 10, "2.5"]])
    assert md == "\n".join([
        "# Title", "", "## Energy & latency", "",
        "Use `snn2hw energy` for **modelled** numbers <here>.", "",
        "> **not run**", "", "- a", "- b", "", table, "",
    ])
    assert "| x\\|y | 1 |" in md


def test_html_is_escaped_with_toc_code_bold_and_wrapping_long_cells() -> None:
    page = _doc().html("T <1>")
    assert page.startswith("<!DOCTYPE html>") and "<title>T &lt;1&gt;</title>" in page
    assert '<nav><a href="#energy---latency">Energy &amp; latency</a></nav>' in page
    assert ("<p>Use <code>snn2hw energy</code> for <strong>modelled</strong> numbers "
            "&lt;here&gt;.</p>") in page
    assert '<p class="note">not run</p>' in page
    assert page.count("<ul>") == 1
    assert "<td>x|y</td>" in page and "<td class=w>long " in page
