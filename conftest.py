"""pytest set-up for the whole repository: the doctests of ``ensemblex/`` and ``tests/``.

Docstring examples that need TensorFlow (the optional ``train`` extra) are
reported as skipped, not failed, where TensorFlow cannot be imported. The
test is the exception the example raised: an ``ImportError`` of
``tensorflow`` itself, or the library's
:class:`ensemblex.errors.MissingExtraError` naming the ``train`` extra (which
ensemblex raises *from* that ``ImportError``). Every other failure is
reported as it is, and where TensorFlow imports, these examples run.

Test fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import doctest
import importlib.util
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from _pytest.doctest import DoctestItem

SKIP_REASON = "this example needs TensorFlow: pip install 'ensemblex[train]'"


def tensorflow_missing() -> bool:
    """Whether ``import tensorflow`` fails here (without importing it when it is present)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is None
    return importlib.util.find_spec("tensorflow") is None


def needs_missing_tensorflow(err: BaseException | None) -> bool:
    """Whether ``err``, or an exception it was raised from, says TensorFlow is missing."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ImportError):
            if (err.name or "").split(".")[0] == "tensorflow":
                return True
            if "ensemblex[train]" in str(err) and tensorflow_missing():
                return True
        err = err.__cause__ or err.__context__
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Report a doctest that failed only because TensorFlow is missing as skipped."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.when == "call"
        and report.failed
        and isinstance(item, DoctestItem)
        and call.excinfo is not None
        and isinstance(call.excinfo.value, doctest.UnexpectedException)
        and needs_missing_tensorflow(call.excinfo.value.exc_info[1])
    ):
        report.outcome = "skipped"
        path, line, _ = item.reportinfo()
        report.longrepr = (str(path), (line or 0) + 1, f"Skipped: {SKIP_REASON}")
