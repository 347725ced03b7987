"""Everything the repository cites is in the repository.

* No tracked file under the project's folders cites the team-internal specification note
  (which users of the repository do not have); the arithmetic, sources and NIR conventions
  it held live in ``docs/`` and are cited from there.
* Every ``docs/<name>.md`` path cited in code, targets, tests, docs or the README exists.
* Every section citation names a heading of that file: ``docs/qgraph.md "LIF step"``,
  ``docs/qgraph.md ("LIF step")``, ``[docs/lava.md](lava.md) "Conv in Lava"`` or an anchor
  ``docs/sources.md#loihi-energy`` (GitHub's heading slugs).

The checker is a pair of small functions; ``test_checker_*`` feed it fake text to show it
catches a broken citation.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("snn2hw", "tests", "targets", "docs", "examples", "benchmarks", "README.md")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".rst", ".cfg", ".ini", ".yaml", ".yml", ".json"}
THIS_FILE = Path(__file__).resolve()

# Built from pieces so that this file does not match itself.
_NOTE = "SP" + "EC"
FORBIDDEN = re.compile(rf"\b{_NOTE}(?:\.md\b|\s*§)")

# docs/<name>.md, optionally #anchor, optionally a markdown link target, then optionally a
# quoted section name (after whitespace, possibly inside parentheses).
CITATION = re.compile(
    r"docs/(?P<file>[A-Za-z0-9_.-]+\.md)"
    r"(?:#(?P<anchor>[A-Za-z0-9_-]+))?"
    r"(?:\]\([^)\s]*\))?"
    r"(?:[ \t]+\(?\"(?P<section>[A-Za-z0-9`][^\"\n]*)\")?"
)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def tracked_files() -> list[Path]:
    """Tracked text files under the scanned folders (all files if git is unavailable)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--", *SCANNED],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        paths = [ROOT / p for p in out]
    except (OSError, subprocess.CalledProcessError):
        paths = []
        for name in SCANNED:
            p = ROOT / name
            paths += [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """Heading texts of a markdown document (outside fenced code blocks)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            out.append(m.group(2))
    return out


def _section_names(heading: str) -> set[str]:
    """A heading may be cited with or without a trailing parenthetical and backticks:
    "On-disk format (version 1)" is cited as "On-disk format"."""
    plain = heading.replace("`", "")
    names = {heading, plain}
    for h in (heading, plain):
        stripped = re.sub(r"\s*\([^()]*\)\s*$", "", h)
        if stripped:
            names.add(stripped)
    return names


def check_citations(text: str, docs: dict[str, str]) -> list[str]:
    """Problems with the ``docs/...`` citations in ``text``; ``docs`` maps a file name in
    docs/ to its markdown. Empty list: every cited file, section and anchor exists."""
    problems = []
    for m in CITATION.finditer(text):
        name, anchor, section = m.group("file", "anchor", "section")
        if name not in docs:
            problems.append(f"docs/{name} does not exist")
            continue
        heads = headings(docs[name])
        if anchor is not None and anchor not in {slug(h) for h in heads}:
            problems.append(f"docs/{name}#{anchor}: no heading with that anchor")
        if section is not None:
            known = set().union(*(_section_names(h) for h in heads)) if heads else set()
            if section not in known:
                problems.append(f'docs/{name} "{section}": no such heading')
    return problems


def find_forbidden(text: str) -> list[int]:
    """1-based line numbers of lines citing the internal note."""
    return [i for i, line in enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)]


def _docs() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}


# ----- the checker on fake text ------------------------------------------------------------
FAKE_DOCS = {
    "fake.md": "# Title\n\n## LIF step\ntext\n\n## On-disk format (version 1)\n"
    "```\n## not a heading\n```\n### Loihi 2 energy and latency\n"
}


@pytest.mark.parametrize(
    "text",
    [
        'see docs/fake.md "LIF step"',
        'see docs/fake.md ("LIF step")',
        'see docs/fake.md "On-disk format"',
        'see [docs/fake.md](fake.md) "On-disk format (version 1)"',
        "see docs/fake.md#loihi-2-energy-and-latency",
        "see docs/fake.md, LIF step",
        'compile(code, "docs/fake.md", "exec")',
    ],
)
def test_checker_accepts_valid_citations(text):
    assert check_citations(text, FAKE_DOCS) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('see docs/fake.md "LIF stepp"', "no such heading"),
        ('see docs/fake.md ("Dense weight preparation")', "no such heading"),
        ('see docs/fake.md "not a heading"', "no such heading"),
        ("see docs/fake.md#loihi-energy", "no heading with that anchor"),
        ('see docs/missing.md "LIF step"', "does not exist"),
        ("see docs/missing.md", "does not exist"),
    ],
)
def test_checker_rejects_broken_citations(text, expected):
    problems = check_citations(text, FAKE_DOCS)
    assert len(problems) == 1 and expected in problems[0], problems


def test_checker_finds_the_internal_note():
    assert find_forbidden(f"ok\nsee {_NOTE}.md §2\nalso {_NOTE} §5: x\n{_NOTE}IFIC") == [2, 3]
    assert find_forbidden('docs/qgraph.md "LIF step"') == []


def test_slug_matches_github():
    assert slug("Loihi 2 energy and latency") == "loihi-2-energy-and-latency"
    assert slug("On-disk format (version 1)") == "on-disk-format-version-1"
    assert slug("Timing: the one-step connection delay") == "timing-the-one-step-connection-delay"


# ----- the repository ---------------------------------------------------------------------
def test_no_citation_of_the_internal_note():
    hits = []
    for path in tracked_files():
        if path.resolve() == THIS_FILE:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{path.relative_to(ROOT)}:{n}" for n in find_forbidden(text)]
    assert not hits, (
        "cite the project's docs (docs/qgraph.md, docs/nir.md, docs/lava.md, "
        "docs/sources.md) instead of the internal note:\n" + "\n".join(hits)
    )


def test_every_cited_doc_and_section_exists():
    docs = _docs()
    problems = []
    for path in tracked_files():
        if path.resolve() == THIS_FILE:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{path.relative_to(ROOT)}: {p}" for p in check_citations(text, docs)]
    assert not problems, "\n".join(problems)


def test_docs_cite_their_sources():
    """The pages that replace the internal note exist and name their original sources."""
    docs = _docs()
    for name, must in {
        "qgraph.md": ["lava-nc 0.10.0", "PyLifModelBitAcc", "AbstractPyDenseModelBitAcc"],
        "lava.md": ["lava-nc 0.10.0", "Extractor", "set_start_method"],
        "nir.md": ["nir", "1.0.8", "export_nir.py", "to_nir.py", "sinabs/nir.py"],
        "sources.md": ["Davies", "Table 2", "Horowitz", "1812.01739", "assumption"],
    }.items():
        assert name in docs, f"docs/{name} is missing"
        for word in must:
            assert word in docs[name], f"docs/{name} does not mention {word!r}"
