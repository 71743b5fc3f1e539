"""The package's shape: pure math at the bottom, xarray in the middle, accessor on top.

Imports only go down, and the module graph has no cycles. Both are checked on
the source with ``ast``, over *every* import (module level, inside functions
and methods, inside ``try``), so a violation is caught even where it would
not fail at run time. Imports under ``if TYPE_CHECKING:`` never run: they
count for the layers (an annotation that names an upper layer is still a
dependency on it) but not for import cycles.

The layers (``CONTRIBUTING.md`` explains them):

- bottom (``BOTTOM``): pure array math, no xarray, no Dask, imports only the
  bottom;
- middle (every module not listed here): xarray/Dask, imports the bottom and
  the middle;
- top (``TOP``): user-facing accessor, report and figures, imports anything
  below the entry points;
- entry points (``ENTRY``): the command line and the demo. Only other entry
  points and the package's lazy ``__init__`` may import them.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

import ensemblex as ex

PACKAGE = Path(ex.__file__).parent
ROOT = "ensemblex"

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
    "optics_xi",
    "_kernels",
    "_reference_store",
}
#: user-facing layers that nothing in the middle or bottom may import
TOP = {"accessor", "report", "plot"}
#: entry points: orchestration only; nothing but another entry point (and the
#: package ``__init__``, which resolves ``run_demo`` lazily) may import them
ENTRY = {"cli", "demo"}


# -- reading imports ------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One module an import statement loads, and where the statement is."""

    target: str  # dotted name: "xarray", "ensemblex.models.training", ...
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    """``ensemblex/models/vae.py`` -> ``ensemblex.models.vae``; a package -> its name."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([ROOT, *parts])


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _is_module(dotted: str) -> bool:
    """Whether ``ensemblex.a.b`` is a module or package of this source tree."""
    if dotted == ROOT:
        return True
    if not dotted.startswith(ROOT + "."):
        return False
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes in the body of an ``if TYPE_CHECKING:`` block."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.body:
                for sub in ast.walk(stmt):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        found.add(id(sub))
    return found


def _parse_imports(source: str, module: str, *, package: bool = False) -> list[Import]:
    """Every module the source of ``module`` imports, anywhere in the file.

    ``from a.b import c`` loads ``a.b`` and, when ``c`` is a submodule,
    ``a.b.c``. ``importlib.import_module("ensemblex.x")`` with a literal name
    counts too. Relative imports are resolved against ``module``
    (``package=True`` when the source is a package's ``__init__``).
    """
    tree = ast.parse(source)
    type_only = _type_only_nodes(tree)
    here = module.split(".") if package else module.split(".")[:-1]
    found: list[Import] = []

    def add(target: str, node: ast.AST) -> None:
        found.append(Import(target, getattr(node, "lineno", 0), id(node) in type_only))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                parent = ".".join([*base, *([node.module] if node.module else [])])
            else:
                parent = node.module or ""
            submodules = [f"{parent}.{a.name}" for a in node.names]
            submodules = [m for m in submodules if _is_module(m)]
            for target in submodules:
                add(target, node)
            if len(submodules) < len(node.names):  # names from the module itself
                add(parent, node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            add(node.args[0].value, node)
    return found


def _imports(path: Path) -> list[Import]:
    return _parse_imports(path.read_text(), _module_name(path), package=_is_package(path))


def _layer_of(dotted: str) -> str:
    """The first name below the package: ``ensemblex.models.vae`` -> ``models``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _internal_edges(path: Path, *, with_type_only: bool) -> set[str]:
    """The ensemblex modules that importing ``path`` runs (the import graph's edges).

    Importing ``ensemblex.a.b`` from outside package ``ensemblex.a`` first runs
    ``ensemblex.a``'s ``__init__``, so that package is an edge too; a package
    the importer already sits in is not (it is being imported already).
    """
    module = _module_name(path)
    own = module.split(".") if _is_package(path) else module.split(".")[:-1]
    own_packages = {".".join(own[:k]) for k in range(1, len(own) + 1)}
    edges: set[str] = set()
    for imp in _imports(path):
        if imp.type_only and not with_type_only:
            continue
        if imp.target != ROOT and not imp.target.startswith(ROOT + "."):
            continue
        parts = imp.target.split(".")
        for k in range(1, len(parts) + 1):
            name = ".".join(parts[:k])
            if (k == len(parts) or name not in own_packages) and _is_module(name):
                edges.add(name)
    edges.discard(module)
    return edges


MODULES = sorted(PACKAGE.rglob("*.py"))


# -- the helpers see what they must --------------------------------------------------


def test_every_kind_of_import_is_seen():
    source = """
from typing import TYPE_CHECKING
import xarray as xr
from . import estimators as est, __version__
from .models import training
from .models.training import train_ensemble
from .errors import InputError

if TYPE_CHECKING:
    from .plot import Figure

def f():
    from .cli import main
    import dask.array as da

class A:
    def m(self):
        try:
            from .demo import run_demo
        except ImportError:
            pass

def g():
    importlib.import_module("ensemblex.report")
"""
    found = {(i.target, i.type_only) for i in _parse_imports(source, "ensemblex.synthesis")}
    assert found == {
        ("typing", False),
        ("xarray", False),
        ("ensemblex.estimators", False),  # `from . import module`
        ("ensemblex", False),  # `from . import name`
        ("ensemblex.models.training", False),
        ("ensemblex.errors", False),
        ("ensemblex.plot", True),  # under TYPE_CHECKING
        ("ensemblex.cli", False),  # function level
        ("dask.array", False),
        ("ensemblex.demo", False),  # method level, inside try
        ("ensemblex.report", False),  # importlib with a literal name
    }
    relative = {i.target for i in _parse_imports("from ..errors import X", "ensemblex.models.vae")}
    assert relative == {"ensemblex.errors"}
    init = {i.target for i in _parse_imports("from . import vae", "ensemblex.models", package=True)}
    assert init == {"ensemblex.models.vae"}


def test_import_graph_edges():
    """Importing a submodule from outside its package runs the package first."""
    edges = _internal_edges(PACKAGE / "demo.py", with_type_only=True)
    assert "ensemblex.models" in edges  # demo imports from ensemblex.models.*
    assert "ensemblex" not in edges  # its own package: being imported already
    inside = _internal_edges(PACKAGE / "models" / "__init__.py", with_type_only=True)
    assert "ensemblex.models" not in inside and "ensemblex" not in inside


# -- layers --------------------------------------------------------------------------


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    name = _module_name(path)
    layer = _layer_of(name)
    imports = _imports(path)
    internal = {(_layer_of(i.target), i.line) for i in imports if i.target.startswith(ROOT + ".")}
    external = {(i.target.split(".")[0], i.line) for i in imports if not i.target.startswith(ROOT)}

    def where(found: set[tuple[str, int]], names: set[str]) -> list[str]:
        return sorted(f"{n} (line {line})" for n, line in found if n in names)

    if layer == "__init__":
        return  # the package facade: imports the accessor, resolves the rest lazily
    if layer in BOTTOM:
        bad = where(external, {"xarray", "dask", "distributed"})
        assert not bad, f"{name} is pure array math but imports {bad}"
        above = where(internal, {n for n, _ in internal} - BOTTOM)
        assert not above, f"{name} (bottom layer) imports {above}"
    if layer not in ENTRY:
        entry = where(internal, ENTRY)
        assert not entry, f"{name} imports the entry points {entry}: only cli/demo may"
    if layer not in TOP | ENTRY:
        upward = where(internal, TOP)
        assert not upward, f"{name} (middle layer) imports the top layer: {upward}"


# -- cycles --------------------------------------------------------------------------


def _graph(*, with_type_only: bool = False) -> dict[str, set[str]]:
    return {_module_name(p): _internal_edges(p, with_type_only=with_type_only) for p in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (first node repeated at the end) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for comp in components:
        start = min(comp)
        # breadth-first search for the shortest path back to start inside the component
        parents: dict[str, str] = {}
        frontier = [start]
        done = False
        while frontier and not done:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ()) & comp):
                    if w == start:
                        path = [v]
                        while path[-1] != start:
                            path.append(parents[path[-1]])
                        cycles.append([start, *reversed(path[:-1]), start])
                        done = True
                        break
                    if w not in parents:
                        parents[w] = v
                        nxt.append(w)
                if done:
                    break
            frontier = nxt
    return cycles


def test_cycle_finder_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    """No module imports, even inside a function, a module that imports it back."""
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# -- constants written once -----------------------------------------------------------


def _mentions_min_info(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        text = None
        if isinstance(sub, ast.Name):
            text = sub.id
        elif isinstance(sub, ast.Attribute):
            text = sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            text = sub.value
        elif isinstance(sub, ast.arg | ast.keyword):
            text = sub.arg
        if text and "min_info" in text.lower().replace("-", "_"):
            return True
    return False


def _is_001(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0.01 and type(node.value) is float


def _min_info_literals(source: str) -> list[int]:
    """Lines where the literal 0.01 stands for ``min_info``.

    A default of a parameter named ``*min_info*``, a keyword ``min_info=0.01``,
    an assignment to a ``min_info`` name, attribute or key, a comparison
    with ``min_info``, a dict entry ``"min_info": 0.01`` and a call that names
    ``min_info`` and passes 0.01 (``attrs.get("min_info", 0.01)``,
    ``add_argument("--min-info", default=0.01)``).
    """
    tree = ast.parse(source)
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arguments):
            pos = [*node.posonlyargs, *node.args]
            for arg, default in zip(
                pos[len(pos) - len(node.defaults) :], node.defaults, strict=True
            ):
                if _is_001(default) and _mentions_min_info(arg):
                    lines.add(default.lineno)
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if _is_001(kw_default) and _mentions_min_info(arg):
                    lines.add(kw_default.lineno)  # type: ignore[union-attr]
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            is_definition = [getattr(t, "id", None) for t in targets] == ["MIN_INFO"]
            if (
                _is_001(node.value)
                and any(_mentions_min_info(t) for t in targets)
                and not is_definition
            ):
                lines.add(node.lineno)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_001(o) for o in operands) and any(_mentions_min_info(o) for o in operands):
                lines.add(node.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if _is_001(value) and key is not None and _mentions_min_info(key):
                    lines.add(value.lineno)
        elif isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords)]
            if any(_is_001(v) for v in values) and (
                any(_mentions_min_info(a) for a in node.args)
                or any(_mentions_min_info(k) for k in node.keywords)
                or _mentions_min_info(node.func)
            ):
                lines.add(node.lineno)
    return sorted(lines)


def test_min_info_literal_finder():
    source = """
MIN_INFO = 0.01
def f(x, min_info=0.01, *, y=0.01): ...
def g(*, min_info: float = 0.01, lr=0.01): ...
a = attrs.get("min_info", 0.01)
p.add_argument("--min-info", type=float, default=0.01)
cfg = {"min_info": 0.01, "noise": 0.01}
if min_info == 0.01: ...
self.min_info = 0.01
call(min_info=0.01)
h(noise=0.01)
"""
    assert _min_info_literals(source) == [3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_min_info_literal_only_where_defined(path):
    """``estimators.MIN_INFO`` is the one place the 0.01 bits threshold is written."""
    lines = _min_info_literals(path.read_text())
    assert not lines, (
        f"{_module_name(path)} writes min_info's 0.01 on lines {lines}: "
        "use ensemblex.estimators.MIN_INFO"
    )


def test_min_info_is_defined_once():
    from ensemblex.estimators import MIN_INFO

    assert MIN_INFO == 0.01
    defined = [
        _module_name(p)
        for p in MODULES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            getattr(t, "id", None) == "MIN_INFO"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        and _is_001(node.value)
    ]
    assert defined == ["ensemblex.estimators"]


# -- the public API -------------------------------------------------------------------


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
