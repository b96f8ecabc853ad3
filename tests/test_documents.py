"""The Markdown documents: short where they must be, every relative link resolves, and every figure in
one place (docs/performance.md)."""

import re
from pathlib import Path

import pytest

from shared.testing.docs import anchor, anchors, relative_links

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    path
    for path in ROOT.rglob("*.md")
    if not {".venv", "node_modules", ".pytest_cache"} & set(path.relative_to(ROOT).parts)
)
README = ROOT / "README.md"
PERFORMANCE = ROOT / "docs" / "performance.md"
QUICK_START_CURL = (
    "curl -X POST localhost:3001/orders -H 'Content-Type: application/json' -d "
    """'{"order":{"customer_id":1,"product_name":"Laptop","quantity":1,"price":1200,"status":"created"}}'"""
)
FIRST_SCREEN = 40  # lines


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_readme_stays_under_300_lines_and_the_bench_readme_under_150():
    assert len(README.read_text().splitlines()) <= 300
    assert len((ROOT / "bench" / "README.md").read_text().splitlines()) <= 150


def test_the_quick_start_is_on_the_readmes_first_screen():
    first_screen = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    for command in ("make run", QUICK_START_CURL, "make test"):
        assert command in first_screen, command


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_every_relative_link_resolves(document):
    text = document.read_text()
    for target in relative_links(text):
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{name(document)}: {target} does not exist"
        if fragment and linked.suffix == ".md":
            assert fragment in anchors(linked.read_text()), f"{name(document)}: no heading for #{fragment}"


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d != PERFORMANCE], ids=name)
def test_figures_live_in_docs_performance_only(document):
    """Ratios to the baseline and dated runs belong in one place; history lives in git."""
    text = document.read_text()
    assert not re.findall(r"\d\.\d+\N{MULTIPLICATION SIGN}", text), (
        f"{name(document)} repeats a measured ratio: link docs/performance.md"
    )
    assert not re.findall(r"\b20\d\d-\d\d-\d\d\b", text), f"{name(document)} carries a dated run"
    assert not re.findall(r"\b(?:first|second|third|\w+th) pass\b", text, re.IGNORECASE), name(document)


def test_anchors_are_what_github_makes_of_headings():
    assert anchor("Faults, and what happens") == "faults-and-what-happens"
    assert anchor("`make soak`: the soak") == "make-soak-the-soak"
    assert anchor("ServiceDown") == "servicedown"
