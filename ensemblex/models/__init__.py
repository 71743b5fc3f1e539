"""Train VAE ensembles (TensorFlow, the ``train`` extra) and import released models.

TensorFlow loads only when a model function is called; without it those calls
raise ``ImportError`` saying ``pip install 'ensemblex[train]'``.

- :class:`TrainConfig`: every training setting, typed and checked once (``config``).
- :func:`train_ensemble`: K members of the β-VAE family as one vectorised model
  (``trainer``); :func:`train_posteriors`: train on a named dataset and
  encode a fingerprint sample.
- :class:`Ensemble`: posteriors, decoding, traversals, save; :func:`load_ensemble`
  (``ensemble``). Traversal figures: :func:`ensemblex.plot_traversals`.
- :func:`posteriors_from_savedmodels`: disentanglement_lib-style SavedModels.
- The one optimiser (Adam, SGD) shared with synthesis: ``optim``.
- :func:`resize_images`: block-pool images to a smaller side.
"""

from __future__ import annotations

from ..datasets.rows import resize_images
from .config import TrainConfig
from .ensemble import Ensemble, load_ensemble
from .losses import METHODS
from .savedmodel import posteriors_from_savedmodels
from .trainer import train_ensemble, train_posteriors

__all__ = [
    "METHODS",
    "Ensemble",
    "TrainConfig",
    "load_ensemble",
    "posteriors_from_savedmodels",
    "resize_images",
    "train_ensemble",
    "train_posteriors",
]
