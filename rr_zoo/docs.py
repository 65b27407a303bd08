"""Tables generated from the manifest (``python -m rr_zoo.docs --write``): in README.md the zoo's entries with
their releases and each entry's default release with its measurements and transfer results; in docs/results.md
every release's. Each number comes with the command that produces it."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from rr_zoo.atomic import atomic_write
from rr_zoo.manifest import load_manifest, metric_input_key

BEGIN, END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"
RESULTS_BEGIN, RESULTS_END = "<!-- results-table:begin -->", "<!-- results-table:end -->"
TRANSFER_BEGIN, TRANSFER_END = "<!-- transfer-table:begin -->", "<!-- transfer-table:end -->"
SEEDS_BEGIN, SEEDS_END = "<!-- seeds-table:begin -->", "<!-- seeds-table:end -->"
AGREE_PT = 1.0  # two pretraining seeds "agree" when every measurement differs by at most this many points


def _find(metrics, task: str, dataset: str | None = None, baseline: str | None = None,
          like: dict | None = None) -> dict | None:
    """The first metric of ``task`` on ``dataset`` (a bound if ``baseline``); with ``like``, one whose images were
    fed as ``like``'s were (side, precision) if there is one."""
    found = [m for m in metrics
             if m["task"] == task and (dataset is None or m["dataset"] == dataset) and m.get("baseline") == baseline]
    same = [m for m in found if like is not None and metric_input_key(m) == metric_input_key(like)]
    return (same or found or [None])[0]


def _fmt(m: dict | None) -> str:
    if m is None:
        return "–"
    std = f" ± {m['std']:.2f}" if m.get("std") is not None else ""
    return f"{m['value']:.2f}{std}"


def _entries():
    return sorted(load_manifest().entries.values(), key=lambda e: (not e.published, e.name))


def _releases(entry):
    """The entry's releases, default first, then the rest by tag."""
    return sorted(entry.releases.values(), key=lambda r: (r.tag != entry.default_release, r.tag))


def zoo_table() -> str:
    """Markdown table of every entry: the paper's recipe (the default for retraining), size, releases, paper."""
    rows = ["| entry | timm name | paper recipe (data, K, epochs) | params | releases (timm name; * = default) "
            "| paper |",
            "|---|---|---|---|---|---|"]
    for entry in _entries():
        r = entry.recipe
        paper = "; ".join(f"{p['task']} {p['dataset']} {p['value']}" for p in entry.paper_results
                          if not p.get("baseline")) or "–"
        releases = "<br>".join(f"`{entry.release_name(rel.tag)}`{'*' if rel.tag == entry.default_release else ''}"
                               for rel in _releases(entry)) or "unpublished"
        rows.append(f"| `{entry.name}` | `{entry.timm_name}` | {r['dataset']}, {r['k']}, {r['epochs']} | "
                    f"{entry.num_params:,} | {releases} | {paper} |")
    return "\n".join(rows)


BOUND_NAMES = {"random_init": "random init", "supervised": "supervised"}  # paper bounds, as the table names them
RESULT_COLUMNS = (("linear", None), ("knn", None), ("retrieval", None), ("linear", "random_init"),
                  ("linear", "supervised"))


def results_table(default_only: bool = False) -> str:
    """Releases: what each was trained with and how it scores, each number with its command.

    Args:
        default_only: Only each entry's default release (README); else every release (docs/results.md).
    """
    rows = ["| release (timm name) | entry | data | K | epochs | precision | train wall time | linear | kNN "
            "| retrieval P@10 | random init (linear) | supervised (linear) | paper, same backbone + data |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for entry in sorted(load_manifest().entries.values(), key=lambda e: e.name):
        for release in _releases(entry):
            if default_only and release.tag != entry.default_release:
                continue
            name = entry.release_name(release.tag)
            recipe = release.recipe
            found = [_find(release.metrics, task, recipe["dataset"], baseline) for task, baseline in RESULT_COLUMNS]
            wall = release.provenance.get("wall_time_s")
            paper = "; ".join(f"{BOUND_NAMES.get(p.get('baseline'), p['task'])} {p['value']}"
                              for p in entry.paper_results if p["dataset"] == entry.dataset)
            default = " (default)" if release.tag == entry.default_release else ""
            rows.append(f"| `{name}`{default} | `{entry.name}` | {recipe['dataset']} | {recipe['k']} | "
                        f"{recipe['epochs']} | {release.provenance.get('precision', '–')} | "
                        f"{'–' if wall is None else f'{wall / 60:.0f} min'} | " + " | ".join(map(_fmt, found))
                        + f" | {paper or 'not in the main text'} |")
            commit = release.provenance.get("code_commit")
            at = f" (code commit {commit[:7]})" if commit else ""
            parts = [f"pretraining{at}: `{release.provenance['command']}`"]
            parts += [f"{task}{f' ({baseline})' if baseline else ''}: `{m['command']}`"
                      for (task, baseline), m in zip(RESULT_COLUMNS, found) if m is not None]
            commands.append(f"- `{name}`: " + "; ".join(parts))
    return ("\n".join(rows) + "\n\n<details><summary>Commands that produce each number</summary>\n\n"
            + "\n".join(commands) + "\n\n</details>")


def transfer_table(default_only: bool = False, manifest=None) -> str:
    """Domain transfer (pretrained on one dataset, linear probe on another): every release's transfer metrics,
    each next to the random-init bound on the same data and the paper's number, with the commands.

    Args:
        default_only: Only each entry's default release (README); else every release (docs/results.md).
        manifest: The :class:`~rr_zoo.manifest.Manifest` to read (default: the package's).
    """
    rows = ["| release (timm name) | pretrained on | linear probe on | images | linear | random init (linear) "
            "| paper, same backbone + data |",
            "|---|---|---|---|---|---|---|"]
    commands = []
    for entry in sorted((manifest or load_manifest()).entries.values(), key=lambda e: e.name):
        for release in _releases(entry):
            if default_only and release.tag != entry.default_release:
                continue
            for m in release.metrics:
                if m["task"] != "transfer" or m.get("baseline"):
                    continue
                bound = _find(release.metrics, "transfer", m["dataset"], "random_init", like=m)
                paper = "; ".join(f"{p['value']}" for p in entry.paper_results
                                  if p["dataset"] == m["dataset"] and not p.get("baseline"))
                fed = m.get("input") or {}
                images = fed.get("resize", "as stored") if fed.get("resize") != "none" else "as stored"
                name = entry.release_name(release.tag)
                rows.append(f"| `{name}` | {release.recipe['dataset']} | {m['dataset']} | {images} | {_fmt(m)} | "
                            f"{_fmt(bound)} | {paper or 'not in the paper'} |")
                parts = [f"transfer to {m['dataset']}: `{m['command']}`"]
                if bound is not None:
                    parts.append(f"random init: `{bound['command']}`")
                commands.append(f"- `{name}`: " + "; ".join(parts))
    if not commands:
        return "No release has a transfer measurement yet."
    return ("\n".join(rows) + "\n\n<details><summary>Commands that produce each number</summary>\n\n"
            + "\n".join(commands) + "\n\n</details>")


def _seed(release) -> int:
    return int(release.recipe.get("seed") or 0)


def seed_groups(entry) -> list[list]:
    """The entry's releases that differ only in their pretraining seed (same recipe, epochs trained, precision and
    parent; fields recorded by some releases and not others, the recipe's ``entry`` and its unset (None) options,
    do not count), in groups of two or more, one release per seed (the first by tag), ordered by seed."""
    groups: dict[str, dict[int, object]] = {}
    for release in sorted(entry.releases.values(), key=lambda r: r.tag):
        prov = release.provenance
        key = json.dumps({"recipe": {k: v for k, v in release.recipe.items()
                                     if k not in ("seed", "entry") and v is not None},
                          "epochs_trained": prov.get("epochs_trained"), "precision": prov.get("precision"),
                          "parent": release.parent}, sort_keys=True)
        groups.setdefault(key, {}).setdefault(_seed(release), release)
    return [[g[s] for s in sorted(g)] for g in groups.values() if len(g) > 1]


SEED_COLUMNS = ("linear", "knn")
SEED_NAMES = {"linear": "linear", "knn": "kNN"}


def seeds_table(manifest=None) -> str:
    """Pretraining variance: releases trained with one recipe and different seeds, each seed's linear and kNN
    accuracy, the spread (largest minus smallest) and whether the seeds agree within ``AGREE_PT`` points.

    Args:
        manifest: The :class:`~rr_zoo.manifest.Manifest` to read (default: the package's).
    """
    rows = ["| entry | recipe (data, K, epochs) | pretraining seed | release (timm name) | code commit | linear "
            "| kNN |",
            "|---|---|---|---|---|---|---|"]
    verdicts, commands = [], []
    for entry in sorted((manifest or load_manifest()).entries.values(), key=lambda e: e.name):
        for group in seed_groups(entry):
            r = group[0].recipe
            spreads = []
            first = {task: _find(group[0].metrics, task, r["dataset"]) for task in SEED_COLUMNS}
            per_release = [[_find(rel.metrics, task, r["dataset"], like=first[task]) for task in SEED_COLUMNS]
                           for rel in group]
            for release, found in zip(group, per_release):
                seed = _seed(release)
                name = entry.release_name(release.tag)
                commit = (release.provenance.get("code_commit") or "–")[:7]
                rows.append(f"| `{entry.name}` | {r['dataset']}, {r['k']}, {r['epochs']} | {seed} "
                            f"| `{name}` | {commit} | " + " | ".join(map(_fmt, found)) + " |")
                commands.append(f"- `{name}`: " + "; ".join(
                    [f"pretraining: `{release.provenance['command']}`"]
                    + [f"{task}: `{m['command']}`" for task, m in zip(SEED_COLUMNS, found) if m is not None]))
            for i, task in enumerate(SEED_COLUMNS):  # measured on the same input (side, precision) for every seed
                found = [metrics[i] for metrics in per_release]
                if all(m is not None and metric_input_key(m) == metric_input_key(first[task]) for m in found):
                    values = [m["value"] for m in found]
                    spreads.append((task, round(max(values) - min(values), 2)))
            if not spreads:
                verdicts.append(f"- `{entry.name}`, {len(group)} seeds: no measurement common to every seed yet.")
                continue
            agree = all(d <= AGREE_PT for _, d in spreads)
            verdicts.append(f"- `{entry.name}`, {len(group)} seeds: spread (largest minus smallest) "
                            + ", ".join(f"{SEED_NAMES[t]} {d:.2f} pt" for t, d in spreads)
                            + f": {'within' if agree else 'not within'} {AGREE_PT:g} pt.")
    if len(rows) == 2:
        return "Every release so far comes from one pretraining seed."
    return ("\n".join(rows) + "\n\n" + "\n".join(verdicts)
            + "\n\n<details><summary>Commands that produce each number</summary>\n\n" + "\n".join(commands)
            + "\n\n</details>")


def _replace(text: str, begin: str, end: str, body: str) -> str:
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)


def update_readme(path: Path, results: Path | None = None) -> bool:
    """Replace the generated tables between their markers: README (the zoo, each entry's default release) and
    ``results`` (every release; default: docs/results.md beside README). Returns True if anything changed."""
    results = results or path.parent / "docs" / "results.md"
    changed = False
    for file, tables in ((path, ((BEGIN, END, zoo_table()), (RESULTS_BEGIN, RESULTS_END, results_table(True)),
                                 (TRANSFER_BEGIN, TRANSFER_END, transfer_table(True)),
                                 (SEEDS_BEGIN, SEEDS_END, seeds_table()))),
                         (results, ((RESULTS_BEGIN, RESULTS_END, results_table()),
                                    (TRANSFER_BEGIN, TRANSFER_END, transfer_table()),
                                    (SEEDS_BEGIN, SEEDS_END, seeds_table())))):
        text = file.read_text()
        new = text
        for begin, end, body in tables:
            new = _replace(new, begin, end, body)
        if new != text:
            atomic_write(file, new)
            changed = True
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md and docs/results.md in place")
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args()
    if args.write:
        print("updated" if update_readme(Path(args.readme)) else "up to date")
    else:
        print(zoo_table() + "\n\n" + results_table() + "\n\n" + transfer_table() + "\n\n" + seeds_table())
