"""The API reference (docs/api.rst) lists every public name and accessor method."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import ensemblex as ex
from ensemblex.accessor import RepInfoAccessor

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


def _listed() -> set[str]:
    """The entries of the autosummary tables, as written (``fingerprint``, ``RepInfoAccessor.udr``)."""
    return set(re.findall(r"^   ([A-Za-z_][\w.]*)$", API.read_text(), flags=re.MULTILINE))


def test_every_public_function_is_in_the_api_reference():
    missing = sorted(set(ex.__all__) - {"__version__"} - _listed())
    assert not missing, f"add these ensemblex.__all__ names to docs/api.rst: {missing}"


def test_every_accessor_method_is_in_the_api_reference():
    methods = {
        f"RepInfoAccessor.{name}"
        for name, _ in inspect.getmembers(RepInfoAccessor, inspect.isfunction)
        if not name.startswith("_")
    }
    missing = sorted(methods - _listed())
    assert not missing, f"add these accessor methods to docs/api.rst: {missing}"
    assert "RepInfoAccessor" in _listed()
