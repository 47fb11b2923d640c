"""The folder tree is the architecture: no environment is named outside ``agent_rl/envs/`` (and ``conf/``),
and each package imports only from the layers below it (README, "Layout")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "agent_rl"
ENV_NAMES = re.compile(r"\b(alfworld|alfred|scienceworld|sciworld|webshop|frozenlake|arith)\b", re.IGNORECASE)
# What each package of agent_rl may import from the others (cli and report are the entry points, on top).
MAY_IMPORT = {
    "rows": set(),
    "envs": set(),
    "algos": {"rows"},
    "methods": {"rows", "algos"},
    "rollout": {"envs"},
    "models": {"envs", "rollout"},
    "training": {"rows", "algos", "methods", "envs", "rollout", "models"},
    "report": {"cli", "training", "envs", "rollout", "models", "rows", "algos", "methods"},
    "cli": {"training", "envs", "rollout", "models", "rows", "algos", "methods", "report"},
}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def env_names_in_code(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Identifiers and string constants (not comments, not docstrings) of ``path`` that name an
    environment (``ALFWORLD_VERBS`` counts: underscores split words)."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.alias):
            text = node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.arg)):
            text = getattr(node, "name", None) or getattr(node, "arg", "")
        else:
            continue
        if ENV_NAMES.search(text.replace("_", " ")):
            hits.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}: {text[:60]!r}")
    return hits


def test_no_environment_is_named_outside_envs():
    hits = [
        h
        for f in sorted(PACKAGE.rglob("*.py"))
        if f.parts[len(PACKAGE.parts)] != "envs"
        for h in env_names_in_code(f)
    ]
    assert hits == []


def test_the_name_check_finds_a_name_in_code_and_not_in_a_docstring(tmp_path):
    """The control: the check above can fail."""
    probe = PACKAGE / "rollout" / "parsing.py"
    assert env_names_in_code(probe) == []  # its docstring names ALFWorld, WebShop and ScienceWorld
    bad = tmp_path / "bad.py"
    bad.write_text('"""ALFWorld in a docstring is fine."""\n# webshop in a comment too\nX = "frozenlake"\n')
    assert [h.split(": ", 1)[1] for h in env_names_in_code(bad, tmp_path)] == ["'frozenlake'"]


def imports_of(package: str) -> dict[str, list[str]]:
    """``{other package: [file, ...]}`` that the modules of ``agent_rl/<package>`` import."""
    found: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent_rl."):
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.module == "agent_rl":
                names = [f"agent_rl.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("agent_rl.")]
            for name in names:
                other = name.split(".")[1]
                if other != package:
                    found.setdefault(other, []).append(path.name)
    return found


def test_each_package_imports_only_from_the_layers_below():
    packages = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(MAY_IMPORT) == packages
    wrong = {
        package: {other: files for other, files in imports_of(package).items() if other not in allowed}
        for package, allowed in MAY_IMPORT.items()
    }
    assert {p: w for p, w in wrong.items() if w} == {}
    assert "rows" in imports_of("algos") and "rows" in imports_of("methods")  # the control: imports are seen
