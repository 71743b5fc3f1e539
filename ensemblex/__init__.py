"""ensemblex: compare the information content of probabilistic representation spaces.

The public API is short; heavy modules load on first use::

    import ensemblex as ex
    post = ex.posteriors(mean, logvar)           # (model, latent, sample)
    fp = post.repinfo.fingerprint()             # lazy Bhattacharyya matrices
    pw = fp.repinfo.pairwise()                  # all-pairs NMI, VI (Dask)
    cl = pw.repinfo.cluster()                   # OPTICS hotspots
"""

from __future__ import annotations

import importlib
from typing import Any

from . import accessor as _accessor  # registers the ``.repinfo`` accessor
from ._version import __version__

# Functions that share their module's name are imported eagerly: importing the
# submodule would otherwise shadow a lazily resolved function of the same name.
from .pairwise import pairwise
from .posteriors import posteriors
from .udr import udr

_LAZY = {
    "fingerprint": "fingerprints",
    "label_fingerprints": "fingerprints",
    "concat_fingerprints": "fingerprints",
    "validate_fingerprints": "fingerprints",
    "info": "fingerprints",
    "cluster": "structure",
    "label_nmi": "structure",
    "describe_groups": "structure",
    "plot_structure": "plot",
    "plot_cross": "plot",
    "plot_synthesis": "plot",
    "plot_information": "plot",
    "plot_nmi_vi": "plot",
    "plot_group_traversals": "plot",
    "run_demo": "demo",
    "synthesize": "synthesis",
    "synthesize_group": "steps",
    "ring_uniformity": "synthesis",
    "ring_learners": "synthesis",
    "ring_fusion": "synthesis",
    "open_dataset": "io",
    "save": "io",
    "load_dataset": "datasets",
    "iter_dsprites": "datasets",
    "train_ensemble": "models",
    "train_posteriors": "models",
    "TrainConfig": "models",
    "load_ensemble": "models",
    "Ensemble": "models",
    "plot_traversals": "plot",
    "posteriors_from_savedmodels": "models",
}

__all__ = ["__version__", "pairwise", "posteriors", "udr", *_LAZY]

del _accessor


#: submodules that are attributes on first use, as ``numpy.testing`` (``ex.testing``)
_SUBMODULES = ("testing",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ensemblex' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])
