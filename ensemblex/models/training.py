"""Former home of the trainer and the :class:`Ensemble`, kept so old imports work.

The code now lives in rooms by job: :mod:`ensemblex.models.config` (the
settings), :mod:`ensemblex.models.trainer` (training),
:mod:`ensemblex.models.ensemble` (the trained ensemble) and
:mod:`ensemblex.models.optim` (the optimiser).
"""

from __future__ import annotations

from .config import Architecture, TrainConfig
from .ensemble import Ensemble, load_ensemble
from .trainer import train_ensemble, train_posteriors

__all__ = [
    "Architecture",
    "Ensemble",
    "TrainConfig",
    "load_ensemble",
    "train_ensemble",
    "train_posteriors",
]
