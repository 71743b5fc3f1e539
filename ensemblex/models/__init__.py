"""Train VAE ensembles (TensorFlow, the ``train`` extra) and import released models.

TensorFlow loads only when a model function is called; without it those calls
raise ``ImportError`` saying ``pip install 'ensemblex[train]'``.

- :func:`train_ensemble`: K members of the β-VAE family as one vectorised model.
- :class:`Ensemble`: posteriors, decoding, traversals, save; :func:`load_ensemble`.
- :func:`plot_traversals`: latent traversal figure.
- :func:`posteriors_from_savedmodels`: disentanglement_lib-style SavedModels.
"""

from __future__ import annotations

from .losses import METHODS
from .savedmodel import posteriors_from_savedmodels
from .training import Ensemble, load_ensemble, plot_traversals, train_ensemble

__all__ = [
    "METHODS",
    "Ensemble",
    "load_ensemble",
    "plot_traversals",
    "posteriors_from_savedmodels",
    "train_ensemble",
]
