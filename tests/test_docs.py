"""The documentation: README length, relative links and anchors, generated benchmark tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted([REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", REPO_ROOT / "benchmarks" / "README.md",
                    *(REPO_ROOT / "docs").glob("*.md")])
README_MAX_LINES = 200
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where Markdown links render."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", _prose_keep_code(path.read_text()), flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


def _prose_keep_code(text: str) -> str:
    """The text outside fenced code blocks (headings keep their inline code, as GitHub's anchors do)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _links(path: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(path.read_text())) if not re.match(r"[a-z]+:", t)]


def test_doc_files_found():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in DOC_FILES}
    assert {"README.md", "CONTRIBUTING.md", "benchmarks/README.md", "docs/timm.md", "docs/training.md"} <= names


def test_readme_is_short():
    lines = (REPO_ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"


def test_readme_opens_with_install_and_test_commands():
    text = (REPO_ROOT / "README.md").read_text()
    first_block = re.search(r"^```bash\n(.*?)^```", text, flags=re.S | re.M).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2 and "python -m rr_zoo demo" in commands[0] and "pip install" in commands[0]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines(), f"README's test command {commands[1]!r} is not the one .ci/run runs"


def broken_links(doc: Path) -> list[str]:
    """Relative links of a Markdown file whose file, or whose ``#anchor`` in a Markdown file, does not exist."""
    broken = []
    for target in _links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(doc):
    broken = broken_links(doc)
    assert not broken, f"{doc.relative_to(REPO_ROOT)}: broken links: {'; '.join(broken)}"


def test_link_check_catches_missing_files_and_anchors(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("# Top part\n[ok](x.md#top-part) [gone](docs/nothing.md) `[code](not/a/link.md)` ![pic](a.png) "
                   "[web](https://a.b/c) [bad anchor](#nowhere)\n```\n[fenced](fenced.md)\n```\n")
    (tmp_path / "a.png").write_bytes(b"")
    assert _links(doc) == ["x.md#top-part", "docs/nothing.md", "a.png", "#nowhere"]
    assert [b.split()[0] for b in broken_links(doc)] == ["docs/nothing.md", "#nowhere"]


def test_anchor_slugs():
    doc = REPO_ROOT / "docs" / "training.md"
    assert {"memory", "dry-run", "compile---compile-auto-the-default"} <= _anchors(doc)


@pytest.mark.parametrize("name", sorted(__import__("benchmarks.tables", fromlist=["TABLES"]).TABLES))
def test_benchmark_tables_are_generated_from_their_json(name):
    from benchmarks.tables import README, block, render

    assert block(README.read_text(), name) == render(name), (
        f"benchmarks/README.md table {name!r} is stale: python -m benchmarks.tables --write")
