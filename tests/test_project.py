"""Project hygiene: packaging metadata agrees with the conda environment, the CLI is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "netCDF4": "netcdf4", "matplotlib": "matplotlib-base", "dask[array]": "dask"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip_deps = {CONDA_NAMES.get(_name(r), _name(r)).lower(): r for r in project["dependencies"]}
    conda = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_deps = {_name(d).lower(): d for d in conda["dependencies"] if isinstance(d, str)}
    test_deps = {_name(r).lower() for r in project["optional-dependencies"]["test"]}
    runtime_conda = {k: v for k, v in conda_deps.items() if k not in test_deps | {"python", "pip"}}
    assert set(runtime_conda) == set(pip_deps), "environment.yml and pyproject.toml list different packages"
    for name, conda_req in runtime_conda.items():
        pip_bound = re.search(r">=\s*([\d.]+)", pip_deps[name]).group(1)
        conda_bound = re.search(r">=\s*([\d.]+)", conda_req).group(1)
        assert pip_bound == conda_bound, f"{name}: pyproject wants >={pip_bound}, environment.yml >={conda_bound}"


def test_torch_requirement_is_a_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    assert ">=" in torch_req and "==" not in torch_req


def test_console_script_runs():
    exe = shutil.which("qpe") or str(Path(sys.executable).with_name("qpe"))
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "data" in out.stdout


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r"# 2\..*?\n```(?:bash)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert command in ci, "the README's test command must be what .ci/run runs"


def _module_imports(path: Path, name: str, package: bool, modules: dict) -> set[str]:
    """The qpe modules a module depends on at its top level (imports inside functions are deferred
    on purpose; imports for type checking count: a cycle of types is a cycle of design)."""
    import ast

    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        for item in ast.walk(node) if isinstance(node, (ast.If, ast.Try, ast.With)) else [node]:
            if isinstance(item, ast.Import):
                found |= {a.name for a in item.names if a.name.startswith("qpe")}
            elif isinstance(item, ast.ImportFrom):
                base = item.module or ""
                if item.level:  # relative import
                    parts = name.split(".")[: len(name.split(".")) - item.level + (1 if package else 0)]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("qpe"):  # a submodule, or a name of the package (or module) itself
                    found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in item.names}
    return found


def test_no_import_cycle_inside_qpe():
    modules = {}
    for path in (REPO / "qpe").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (path, package)
    graph = {name: {m for m in _module_imports(path, name, package, modules) if m in modules and m != name}
             for name, (path, package) in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
