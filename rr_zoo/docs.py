"""README tables generated from the manifest (``python -m rr_zoo.docs --write`` updates README.md)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rr_zoo.atomic import atomic_write
from rr_zoo.manifest import load_manifest

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"
RESULTS_BEGIN, RESULTS_END = "<!-- results-table:begin -->", "<!-- results-table:end -->"


def _find(entry, task: str, dataset: str | None = None, baseline: str | None = None) -> dict | None:
    for m in entry.metrics:
        if m["task"] == task and (dataset is None or m["dataset"] == dataset) and m.get("baseline") == baseline:
            return m
    return None


def _fmt(m: dict | None) -> str:
    if m is None:
        return "–"
    std = f" ± {m['std']:.2f}" if m.get("std") is not None else ""
    return f"{m['value']:.2f}{std}"


def _metric(entry, task: str, dataset: str | None = None, baseline: str | None = None) -> str:
    return _fmt(_find(entry, task, dataset, baseline))


def _trained_recipe(entry) -> dict:
    return (entry.provenance or {}).get("recipe", entry.recipe)


def zoo_table() -> str:
    """Markdown table of every entry (status, recipe, size, measured and paper results)."""
    rows = ["| entry | timm name | data | K | epochs | params | status | linear (ours) | paper |",
            "|---|---|---|---|---|---|---|---|---|"]
    for entry in sorted(load_manifest().entries.values(), key=lambda e: (not e.published, e.name)):
        recipe = _trained_recipe(entry)
        paper = "; ".join(f"{p['task']} {p['dataset']} {p['value']}" for p in entry.paper_results) or "–"
        rows.append(
            f"| `{entry.name}` | `{entry.timm_name}` | {recipe['dataset']} | {recipe['k']} | {recipe['epochs']} | "
            f"{entry.num_params:,} | {entry.status} | {_metric(entry, 'linear', recipe['dataset'])} | {paper} |")
    return "\n".join(rows)


RESULT_COLUMNS = (("linear", None), ("knn", None), ("retrieval", None), ("linear", "random_init"),
                  ("linear", "supervised"))


def results_table() -> str:
    """Published entries: what they were trained with and how they score, each number with its command."""
    rows = ["| entry | data | K | epochs | train wall time | linear | kNN | retrieval P@10 | random init (linear) "
            "| supervised (linear) | paper, same backbone + data |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for entry in sorted(load_manifest().entries.values(), key=lambda e: e.name):
        if not entry.published:
            continue
        recipe = _trained_recipe(entry)
        found = [_find(entry, task, recipe["dataset"], baseline) for task, baseline in RESULT_COLUMNS]
        wall = (entry.provenance or {}).get("wall_time_s")
        paper = "; ".join(f"{p['task']} {p['value']}" for p in entry.paper_results if p["dataset"] == entry.dataset)
        rows.append(f"| `{entry.name}` | {recipe['dataset']} | {recipe['k']} | {recipe['epochs']} | "
                    f"{'–' if wall is None else f'{wall / 60:.0f} min'} | " + " | ".join(map(_fmt, found))
                    + f" | {paper or 'not in the main text'} |")
        commit = entry.provenance.get("code_commit")
        at = f" (code commit {commit[:7]})" if commit else ""
        commands.append(f"- `{entry.name}` pretraining{at}: `{entry.provenance['command']}`")
        for (task, baseline), m in zip(RESULT_COLUMNS, found):
            if m is not None:
                commands.append(f"- `{entry.name}` {task}{f' ({baseline})' if baseline else ''}: `{m['command']}`")
    return ("\n".join(rows) + "\n\n<details><summary>Commands that produce each number</summary>\n\n"
            + "\n".join(commands) + "\n\n</details>")


def _replace(text: str, begin: str, end: str, body: str) -> str:
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)


def update_readme(path: Path) -> bool:
    """Replace the tables between their markers in README; returns True if anything changed."""
    text = path.read_text()
    new = _replace(_replace(text, BEGIN, END, zoo_table()), RESULTS_BEGIN, RESULTS_END, results_table())
    if new != text:
        atomic_write(path, new)
    return new != text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args()
    if args.write:
        print("updated" if update_readme(Path(args.readme)) else "up to date")
    else:
        print(zoo_table() + "\n\n" + results_table())
