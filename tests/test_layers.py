"""The package's shape: pure math at the bottom, xarray in the middle, accessor/CLI on top.

Imports only go down. Checked on the source with ``ast``, so a violation is
caught even where it would not fail at run time.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import ensemblex as ex

PACKAGE = Path(ex.__file__).parent

#: pure array math: no xarray, no Dask, nothing above
BOTTOM = {
    "_namespace",
    "_checks",
    "_threads",
    "_version",
    "errors",
    "estimators",
    "measures",
    "optics",
    "_kernels",
}
#: the top: user-facing layers that nothing below may import
TOP = {"accessor", "cli", "demo", "report", "plot"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) if parts else "__init__"


def _imports(path: Path) -> set[str]:
    """Top-level names imported by a module: ``xarray``, ``ensemblex.<module>``..."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    module = _module_name(path)
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name.startswith("ensemblex."):
                    found.add("ensemblex." + name.split(".")[1])
                else:
                    found.add(name.split(".")[0])
            else:
                # relative import: resolve against this module's package
                base = module.split(".")[: max(depth - node.level + 1, 0)]
                target = [*base, *((node.module or "").split(".") if node.module else [])]
                target = [t for t in target if t and t != "__init__"]
                if target:
                    found.add("ensemblex." + target[0])
                else:
                    found.update("ensemblex." + alias.name for alias in node.names)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    name = _module_name(path)
    top_level = name.split(".")[0]
    imported = _imports(path)
    if top_level in BOTTOM:
        assert "xarray" not in imported, f"{name} is pure array math but imports xarray"
        assert "dask" not in imported, f"{name} is pure array math but imports dask"
        above = {m for m in imported if m.startswith("ensemblex.")} - {
            f"ensemblex.{b}" for b in BOTTOM
        }
        assert not above, f"{name} (bottom layer) imports {sorted(above)}"
    elif top_level not in TOP and top_level != "__init__":
        upward = {m for m in imported if m.startswith("ensemblex.")} & {
            f"ensemblex.{t}" for t in TOP
        }
        assert not upward, f"{name} (middle layer) imports the top layer: {sorted(upward)}"


def test_every_public_name_is_a_function_not_a_module():
    for name in ex.__all__:
        if name == "__version__":
            continue
        value = getattr(ex, name)
        assert callable(value) and not inspect.ismodule(value), name
        assert value.__doc__, f"ensemblex.{name} has no docstring"


def test_analysis_runs_without_tensorflow_or_cupy():
    """TensorFlow and CuPy are optional extras: the whole analysis works without them."""
    import subprocess
    import sys

    script = """
import sys
sys.modules["tensorflow"] = None   # importing either now raises ImportError
sys.modules["cupy"] = None
import ensemblex as ex
from ensemblex.testing import planted_ensemble
post = planted_ensemble(n_models=6, n_samples=80, seed=1)
fp = post.repinfo.fingerprint()
cl = fp.repinfo.cluster(min_samples=4)
assert int(cl.group.max()) >= 1
assert post.repinfo.udr().sizes["model"] == 6
cl.repinfo.plot_structure()
try:
    fp.repinfo.synthesize(steps=2)
except ImportError as err:
    assert "ensemblex[train]" in str(err)
else:
    raise AssertionError("synthesize() ran without TensorFlow")
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
