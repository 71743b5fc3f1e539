"""Doctests that need TensorFlow skip, not fail, where TensorFlow is missing (root conftest.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _root_conftest():
    spec = importlib.util.spec_from_file_location("_root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_a_missing_tensorflow_counts():
    conftest = _root_conftest()
    missing = ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
    assert conftest.needs_missing_tensorflow(missing)
    wrapped = ImportError("needs TensorFlow: pip install 'ensemblex[train]'")
    wrapped.__cause__ = missing
    assert conftest.needs_missing_tensorflow(wrapped)
    assert not conftest.needs_missing_tensorflow(ValueError("a real bug"))
    assert not conftest.needs_missing_tensorflow(ModuleNotFoundError("x", name="xarray"))
    bug = AttributeError("a real bug")
    bug.__context__ = ValueError("also not TensorFlow")
    assert not conftest.needs_missing_tensorflow(bug)


@pytest.mark.slow  # a fresh pytest in a child process
def test_tensorflow_doctest_skips_without_tensorflow():
    script = (
        "import sys; sys.modules['tensorflow'] = None; import pytest; "
        "sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', "
        "'ensemblex/models/_tf.py']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "1 skipped" in out.stdout and "failed" not in out.stdout
    assert "needs TensorFlow" in out.stdout
