"""core/ must run headless: importing every core module pulls in no Qt library."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import csknet_studio.core as core


def test_core_modules_import_without_qt():
    names = [m.name for m in pkgutil.walk_packages(core.__path__, prefix="csknet_studio.core.")]
    assert names, "no core modules found"
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'pyqtgraph', 'qdarkstyle', 'qtpy', 'shiboken6') or m.startswith('csknet_studio.ui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core imported Qt modules: {out.stdout}"


def test_every_package_dir_is_declared_in_pyproject():
    """A sub-package missing from [tool.setuptools] packages would vanish from `pip install .`."""
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    cfg = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(cfg["packages"])
    roots = {v: k for k, v in cfg["package-dir"].items()}
    found = set()
    for root_dir, pkg in roots.items():
        for init in (repo / root_dir).rglob("__init__.py"):
            rel = init.parent.relative_to(repo / root_dir)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found <= declared, f"add to pyproject packages: {sorted(found - declared)}"


def test_no_qt_import_statement_in_core_sources():
    """Static twin of the subprocess check: catches imports hidden inside functions too."""
    import ast
    from pathlib import Path

    core_dir = Path(__file__).resolve().parents[2] / "core"
    forbidden = ("PySide6", "pyqtgraph", "qdarkstyle", "qtpy", "shiboken6", "csknet_studio.ui")
    offenders = []
    for py in core_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{py.name}:{node.lineno} {n}" for n in names if n.startswith(forbidden)]
    assert not offenders, offenders
