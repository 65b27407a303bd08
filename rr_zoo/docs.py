"""README tables generated from the manifest (``python -m rr_zoo.docs --write`` updates README.md)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rr_zoo.manifest import load_manifest

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"


def _metric(entry, task: str, dataset: str | None = None) -> str:
    for m in entry.metrics:
        if m["task"] == task and (dataset is None or m["dataset"] == dataset):
            std = f" ± {m['std']:.2f}" if m.get("std") is not None else ""
            return f"{m['value']:.2f}{std}"
    return "–"


def zoo_table() -> str:
    """Markdown table of every entry (status, recipe, size, measured and paper results)."""
    rows = ["| entry | timm name | data | K | epochs | params | status | linear (ours) | paper |",
            "|---|---|---|---|---|---|---|---|---|"]
    for entry in sorted(load_manifest().entries.values(), key=lambda e: (not e.published, e.name)):
        recipe = (entry.provenance or {}).get("recipe", entry.recipe)
        paper = "; ".join(f"{p['task']} {p['dataset']} {p['value']}" for p in entry.paper_results) or "–"
        rows.append(
            f"| `{entry.name}` | `{entry.timm_name}` | {recipe['dataset']} | {recipe['k']} | {recipe['epochs']} | "
            f"{entry.num_params:,} | {entry.status} | {_metric(entry, 'linear', entry.dataset)} | {paper} |")
    return "\n".join(rows)


def update_readme(path: Path) -> bool:
    """Replace the table between the markers in README; returns True if it changed."""
    text = path.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{zoo_table()}\n{END}", text, flags=re.S)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args()
    if args.write:
        print("updated" if update_readme(Path(args.readme)) else "up to date")
    else:
        print(zoo_table())
