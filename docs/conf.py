"""Sphinx configuration of the ensemblex documentation.

Build it from the repository root (``pip install -e ".[docs]"`` first)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Everything is local: no intersphinx, no network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import ensemblex  # noqa: E402

project = "ensemblex"
author = "ensemblex developers"
copyright = "ensemblex developers"
version = release = ensemblex.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

# The quickstart notebook lives in notebooks/, stored without outputs; the
# site renders a copy. It is executed during the build (locally, no network)
# where everything it needs is installed (TensorFlow for its synthesis cell,
# ipykernel), so the page shows its tables and figures; elsewhere it is
# rendered as stored. ENSEMBLEX_DOCS_EXECUTE=0 or 1 forces either.
_NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
if _NOTEBOOK.is_file():
    shutil.copyfile(_NOTEBOOK, DOCS / "quickstart.ipynb")


def _can_execute() -> bool:
    forced = os.environ.get("ENSEMBLEX_DOCS_EXECUTE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "ipykernel"))


nb_execution_mode = "force" if _can_execute() else "off"
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_merge_streams = True
# library log lines (TensorFlow's start-up) and warnings stay out of the page;
# the test suite is where warnings are checked
nb_output_stderr = "remove"

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints", "notes/README.md"]

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"ensemblex {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path: list[str] = []
html_show_sourcelink = False


# numpydoc reports a malformed docstring (an unknown section, say) with a
# Python warning, which Sphinx would only print; make it a Sphinx warning so
# that `-W` fails the build on it, as on any other broken docstring.
def _numpydoc_warnings_are_sphinx_warnings() -> None:
    import warnings

    from sphinx.util import logging as sphinx_logging

    logger = sphinx_logging.getLogger("numpydoc")
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if "numpydoc" in str(filename):
            logger.warning("numpydoc: %s", message)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    warnings.filterwarnings("always", category=UserWarning, module="numpydoc")


def setup(app: object) -> None:
    _numpydoc_warnings_are_sphinx_warnings()
