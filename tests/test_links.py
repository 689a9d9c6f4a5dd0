"""Every relative link of the documentation resolves (README.md, docs/*.md, benchmarks/README.md):
the file or folder exists, and a ``#anchor`` names a heading of the target page by GitHub's
slug rules (lower case; letters, digits, ``_``, ``-`` and spaces kept, spaces to ``-``; a
repeated heading gets ``-1``, ``-2``, ...) or an explicit ``<a id="...">``. Links inside code
blocks and code spans are not links; ``http(s)://`` and ``mailto:`` links are not checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's Markdown text (github-slugger on the rendered text)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"(?<![\w])_+|_+(?![\w])", "", text)  # emphasis underscores, not a_b
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page defines: its headings' slugs (repeats numbered) and HTML ids."""
    text = page.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    out = set(HTML_ID.findall(text))
    for _, heading in HEADING.findall(FENCE.sub("", text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    text = _prose(page.read_text(encoding="utf-8"))
    return LINK.findall(text) + REFERENCE.findall(text)


def broken(page: Path, root: Path = ROOT) -> list[str]:
    """``target: why`` for each relative link of ``page`` that does not resolve (or leaves
    ``root``)."""
    out = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            out.append(f"{target}: no such file")
        elif not dest.resolve().is_relative_to(root.resolve()):
            out.append(f"{target}: outside the repository")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            out.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return out


def test_slug_rules():
    assert slug("Sampling strategies (`bench_sample.py`)") == "sampling-strategies-bench_samplepy"
    assert slug("What moves linking: **the demo**") == "what-moves-linking-the-demo"
    assert slug("Paper variants, 100 CPU steps (`config/variants.yaml`)") == \
        "paper-variants-100-cpu-steps-configvariantsyaml"
    assert slug("[docs](docs/x.md) — Δ 5%") == "docs--δ-5"


def test_the_checker_finds_broken_links(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## Twice\n\n## Twice\n\n```\n[no](nothere.md)\n```\n"
                                   "[ok](#twice-1) [bad](#nope) [gone](b.md) `[x](y.md)`\n"
                                   "[web](https://example.org/x) [self](a.md#top)\n")
    assert sorted(broken(tmp_path / "a.md", tmp_path)) == [
        "#nope: no heading with anchor #nope in a.md", "b.md: no such file"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert page.is_file(), page
    bad = broken(page)
    assert not bad, f"{page.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(bad)
