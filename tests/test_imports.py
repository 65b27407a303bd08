"""The project's imports go one way, and no file edits ``sys.path`` to find the project.

Every import statement of ``rr_zoo/`` and ``training/`` counts, wherever it stands (module level,
inside a function, behind a condition); only imports under ``if TYPE_CHECKING:`` are left out, as
they never run. An edge goes from a module to the project module it names (``from pkg import
sub`` names ``pkg.sub`` when that is a module, else ``pkg``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rr_zoo", "training")
# every folder of Python the project runs from a checkout (tests too: they find the project as any module does)
PROJECT_FOLDERS = (*PACKAGES, "benchmarks", "examples", "tests")
# files that put a folder OUTSIDE the project on sys.path, and why
FOREIGN_PATHS = {
    "rr_zoo/launch.py": "runs timm's train.py from a clone of timm: its folder comes first, as for `python train.py`",
    "training/bench/original_driver.py": "imports the original repository's modules from its clone (--repo)",
}


def module_name(path: Path) -> str:
    """``rr_zoo/models/__init__.py`` -> ``rr_zoo.models``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the packages."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _typing_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` (at ``path``) imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _typing_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import rr_zoo.models.conv4` names that module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_imports_inside_functions():
    graph = import_graph()
    assert "rr_zoo.samples" in graph["rr_zoo.viz"]  # imported inside sample_images()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    graph = import_graph()
    found = [c for c in cycles(graph) if any(m.split(".")[0] == package for m in c)]
    detail = "; ".join(" <-> ".join(c) + " (" + ", ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) + ")"
                       for c in found)
    assert not found, f"import cycles in {package}/: {detail}"


def _edits_sys_path(tree: ast.AST) -> list[int]:
    """Lines that change sys.path (insert/append/extend/assignment) or add a site dir."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner == "sys.path" and node.func.attr in ("insert", "append", "extend")) or \
                    node.func.attr == "addsitedir":
                lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(t).startswith("sys.path") for t in targets):
                lines.append(node.lineno)
    return lines


def test_no_file_edits_sys_path_to_find_the_project():
    files = [ROOT / "hubconf.py", *(p for folder in PROJECT_FOLDERS for p in sorted((ROOT / folder).rglob("*.py")))]
    offenders = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        lines = _edits_sys_path(ast.parse(path.read_text(), rel))
        if lines and rel not in FOREIGN_PATHS:
            offenders.append(f"{rel}:{','.join(map(str, lines))}")
    assert not offenders, (f"sys.path edited in {offenders}: run the file as a module from the checkout root "
                           "(python -m benchmarks.NAME) instead")
    for rel in FOREIGN_PATHS:  # the allowance goes when the file goes
        assert (ROOT / rel).is_file(), f"{rel} no longer exists; drop it from FOREIGN_PATHS"


def test_training_is_a_package_the_wheel_leaves_out():
    """``training`` is a regular package of the checkout; ``pip install .`` installs ``rr_zoo`` only."""
    import tomllib
    from setuptools import find_packages

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    installed = find_packages(str(ROOT), include=found.get("include", ("*",)), exclude=found.get("exclude", ()))
    assert "rr_zoo" in installed and all(name.split(".")[0] == "rr_zoo" for name in installed), installed
    folders = {p.parent for p in (ROOT / "training").rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders of training/ without __init__.py: {missing}"
