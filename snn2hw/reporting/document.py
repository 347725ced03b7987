"""A tiny document model rendered to both HTML and Markdown: the report's page format.

:class:`Doc` collects headings, paragraphs, notes, lists, tables and images; :meth:`Doc.html`
renders one self-contained HTML page (inline CSS, images as PNG data URIs, a table of
contents from the level-2 headings) and :meth:`Doc.markdown` the same blocks in Markdown
(tables through :func:`snn2hw.common.tables.markdown_table`, images as links to the PNG files
next to it). Paragraph text may use `code` and **bold**, nothing else.

May import: :mod:`snn2hw.common` only.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snn2hw.common.tables import markdown_table

__all__ = ["Doc"]


@dataclass
class Doc:
    """Blocks of a page, in order; rendered by :meth:`markdown` and :meth:`html`."""

    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        """A highlighted paragraph ('not run', warnings)."""
        self.blocks.append(("note", text))

    def ul(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", list(header), [[str(c) for c in r] for r in rows]))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", path, alt))

    def markdown(self) -> str:
        out: list[str] = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out += ["#" * b[1] + " " + b[2], ""]
            elif kind == "p":
                out += [b[1], ""]
            elif kind == "note":
                out += [f"> **{b[1]}**", ""]
            elif kind == "ul":
                out += [f"- {i}" for i in b[1]] + [""]
            elif kind == "table":
                out += [markdown_table(b[1], b[2]), ""]
            elif kind == "img":
                out += [f"![{b[2]}]({b[1].name})", ""]
        return "\n".join(out)

    def html(self, title: str) -> str:
        body: list[str] = []
        toc: list[str] = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                anchor = _anchor(b[2])
                if b[1] == 2:
                    toc.append(f'<a href="#{anchor}">{html.escape(b[2])}</a>')
                body.append(f'<h{b[1]} id="{anchor}">{html.escape(b[2])}</h{b[1]}>')
            elif kind == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif kind == "note":
                body.append(f'<p class="note">{_inline(b[1])}</p>')
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
                # short cells never wrap (numbers, units, flags); long text does
                rows = "".join(
                    "<tr>" + "".join(
                        f'<td{" class=w" if len(c) > 32 else ""}>{html.escape(c)}</td>'
                        for c in r) + "</tr>"
                    for r in b[2])
                body.append(f'<div class="tw"><table><thead><tr>{head}</tr></thead>'
                            f"<tbody>{rows}</tbody></table></div>")
            elif kind == "img":
                data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(b[2])}" '
                            f'src="data:image/png;base64,{data}"></figure>')
        nav = f'<nav>{" · ".join(toc)}</nav>' if toc else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_CSS}</style></head><body><main>{nav}{''.join(body)}</main></body>"
            "</html>\n"
        )


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;background:#fafafa;
margin:0}main{max-width:1100px;margin:0 auto;padding:1.2em 1.6em 3em;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1.05em;margin-top:1.3em}
p{line-height:1.45}nav{font-size:.85em;color:#555;margin-bottom:1em;line-height:1.6}
nav a{color:#3366aa;text-decoration:none}.note{background:#fff6e0;border-left:4px solid #e0a000;
padding:.4em .8em}.tw{overflow-x:auto}table{border-collapse:collapse;font-size:.82em;
margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;
vertical-align:top;white-space:nowrap}td.w{white-space:normal;min-width:14em}
th{background:#f0f3f7}tbody tr:nth-child(even){background:#fafbfc}
figure{margin:.5em 0 1.2em}img{max-width:100%;height:auto;border:1px solid #eee}
code{background:#f3f3f3;padding:0 .2em}
"""


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** (the only Markdown used in paragraphs)."""
    s = html.escape(text)
    parts = s.split("`")
    s = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
