"""The training settings: one typed, frozen :class:`TrainConfig`, checked once.

The settings of a training run travel from the command line and the demo to
:func:`ensemblex.models.train_posteriors` and
:func:`ensemblex.models.train_ensemble`; they are written down here, once,
with their defaults and their checks. What depends on the data (its shape,
whether a conv net fits it) is checked when the data are known, by
:meth:`TrainConfig.resolve`, which gives the JSON-ready record an
:class:`~ensemblex.models.Ensemble` and its checkpoints keep.

Examples
--------
>>> cfg = TrainConfig(n_members=2, latent_dim=3, beta=4.0, steps=50)
>>> cfg.member_betas(), cfg.member_seeds()
([4.0, 4.0], [0, 1])
>>> sweep = cfg.sweep([1.0, 16.0])
>>> sweep.n_members, sweep.beta
(4, (1.0, 1.0, 16.0, 16.0))
>>> TrainConfig(steps=-1)
Traceback (most recent call last):
...
ensemblex.errors.InputError: steps must be an integer >= 0; got -1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._checks import check_option, check_positive_int, check_probability
from .._version import __version__
from ..datasets import DATASETS
from ..errors import InputError, InputTypeError
from .losses import METHODS, LossKind, Method

if TYPE_CHECKING:
    from ..datasets import DatasetName

__all__ = ["ARCHITECTURES", "Architecture", "TrainConfig"]

Architecture = Literal["mlp", "conv"]
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")
_LOSSES = ("bernoulli", "mse")
_DATASETS = DATASETS  # the registry in ensemblex.datasets

#: each method's settings and their defaults (``options=`` overrides them)
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "beta_vae": {},
    "beta_tcvae": {},
    "annealed_vae": {"c_max": 25.0, "iteration_threshold": None},
    "dip_vae_i": {"lambda_d_factor": 10.0},
    "dip_vae_ii": {"lambda_d_factor": 1.0},
    "factor_vae": {
        "discriminator_units": [1000] * 6,
        "discriminator_learning_rate": 1e-4,
        "discriminator_beta_1": 0.5,
        "discriminator_beta_2": 0.9,
    },
}


def _per_member(name: str, value: Any, k: int, kind: type) -> list[Any]:
    values = np.atleast_1d(np.asarray(value))
    if values.ndim != 1 or values.size not in (1, k):
        raise InputError(f"{name} must be one value or one per member ({k}); got {value!r}.")
    if values.size == 1:
        values = np.repeat(values, k)
    return [kind(v) for v in values.tolist()]


def _as_tuple(value: Any, kind: type) -> Any:
    """A scalar as it is; a sequence as a tuple of ``kind`` (hashable, frozen)."""
    if isinstance(value, str) or np.ndim(value) == 0:
        return kind(value) if value is not None else None
    return tuple(kind(v) for v in np.asarray(value).reshape(-1).tolist())


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, with its default.

    The model and its optimisation are read by
    :func:`~ensemblex.models.train_ensemble`; the data fields (``dataset``,
    ``image_size``, ``n_train``, ``n_fingerprint``) only by
    :func:`~ensemblex.models.train_posteriors`.

    Attributes
    ----------
    method
        ``"beta_vae"``, ``"beta_tcvae"``, ``"annealed_vae"``, ``"dip_vae_i"``,
        ``"dip_vae_ii"`` or ``"factor_vae"`` (:mod:`ensemblex.models.losses`).
    n_members
        Ensemble size K.
    latent_dim
        Latent dimensions per member.
    beta
        The method's strength, one value or one per member: β (beta_vae,
        beta_tcvae), γ (annealed_vae, factor_vae), λ_od (dip_vae).
        :meth:`sweep` trains ``n_members`` per value of a β sweep.
    architecture
        ``"mlp"`` or ``"conv"`` (:mod:`ensemblex.models.vae`).
    steps, batch_size, learning_rate
        Adam steps, batch per member and learning rate (paper: 1e-4 / 64 for
        images; the ring toy: 1e-3 / 2048).
    loss
        ``"bernoulli"`` (summed over pixels) or ``"mse"`` (mean over
        features); ``None``: ``"mse"`` for the ring, ``"bernoulli"`` otherwise.
    seed
        Member k's seed is ``seed + k``; or one seed per member.
    hidden, activation
        MLP hidden layers (default 256, 256) and activation (``tanh`` for
        MLPs, ``relu`` in the conv net).
    options
        Method settings (:data:`METHOD_OPTIONS`): ``c_max``,
        ``iteration_threshold`` (annealed_vae), ``lambda_d_factor`` (dip_vae),
        ``discriminator_*`` (factor_vae).
    dataset
        The dataset of :func:`ensemblex.load_dataset` to train on.
    image_size
        Shrink the images to ``image_size`` square first (block pooling).
    n_train, n_fingerprint
        Training points, and the points the posteriors are evaluated on.
    """

    method: Method = "beta_vae"
    n_members: int = 10
    latent_dim: int = 10
    beta: float | tuple[float, ...] = 1.0
    architecture: Architecture = "mlp"
    steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-4
    loss: LossKind | None = None
    seed: int | tuple[int, ...] = 0
    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    options: Mapping[str, Any] | None = field(default=None, hash=False, compare=True)
    dataset: DatasetName = "dsprites"
    image_size: int | None = None
    n_train: int = 20000
    n_fingerprint: int = 500

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        check_option("method", self.method, METHODS)
        check_option("architecture", self.architecture, ARCHITECTURES)
        if self.loss is not None:
            check_option("loss", self.loss, _LOSSES)
        check_option("dataset", self.dataset, _DATASETS)
        k = check_positive_int("n_members", self.n_members)
        put("n_members", k)
        put("latent_dim", check_positive_int("latent_dim", self.latent_dim))
        put("steps", check_positive_int("steps", self.steps, minimum=0))
        put("batch_size", check_positive_int("batch_size", self.batch_size))
        lr = check_probability("learning_rate", self.learning_rate, high=math.inf)
        if lr <= 0:
            raise InputError(f"learning_rate must be > 0; got {self.learning_rate!r}.")
        put("learning_rate", lr)
        put("beta", _as_tuple(self.beta, float))
        for b in self.member_betas():
            if not (math.isfinite(b) and b >= 0):
                raise InputError(f"beta must be finite and >= 0; got {self.beta!r}.")
        put("seed", _as_tuple(self.seed, int))
        self.member_seeds()  # one or one per member
        if self.hidden is not None:
            put("hidden", tuple(check_positive_int("hidden", h) for h in self.hidden))
        if self.activation is not None and not isinstance(self.activation, str):
            raise InputTypeError(
                f"activation must be a name such as 'tanh'; got {self.activation!r}."
            )
        opts = METHOD_OPTIONS[self.method]
        unknown = set(self.options or {}) - set(opts)
        if unknown:
            raise InputError(
                f"unknown option(s) {sorted(unknown)} for method {self.method!r}; it takes "
                f"{sorted(opts) or 'none'}."
            )
        put("options", None if self.options is None else dict(self.options))
        if self.image_size is not None:
            put("image_size", check_positive_int("image_size", self.image_size))
        put("n_train", check_positive_int("n_train", self.n_train))
        put("n_fingerprint", check_positive_int("n_fingerprint", self.n_fingerprint))

    # -- derived settings -------------------------------------------------------------

    @property
    def resolved_loss(self) -> LossKind:
        """The loss: ``loss``, or by the dataset (``"mse"`` for the ring)."""
        if self.loss is not None:
            return self.loss
        return "mse" if self.dataset == "ring" else "bernoulli"

    def member_betas(self) -> list[float]:
        """β of each member (``n_members`` values)."""
        return _per_member("beta", self.beta, self.n_members, float)

    def member_seeds(self) -> list[int]:
        """Seed of each member: ``seed + k``, or the seeds given one per member."""
        if isinstance(self.seed, tuple):
            return _per_member("seed", self.seed, self.n_members, int)
        return [int(self.seed) + i for i in range(self.n_members)]

    def sweep(self, betas: Sequence[float]) -> TrainConfig:
        """``n_members`` members per value of ``betas``, all in one ensemble.

        Members are β-major: the first ``n_members`` have ``betas[0]``.
        """
        values = [float(b) for b in np.atleast_1d(np.asarray(betas, dtype=float))]
        if not values:
            raise InputError("give at least one beta.")
        return replace(
            self,
            n_members=self.n_members * len(values),
            beta=tuple(b for b in values for _ in range(self.n_members)),
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def resolve(self, data_shape: Sequence[int], n_data: int) -> dict[str, Any]:
        """The JSON-ready record of a run on data of per-sample ``data_shape``.

        Checks what depends on the data: a conv net needs images whose sides
        are multiples of 4. This dict is :attr:`Ensemble.config` and what a
        checkpoint folder compares a resumed run against.

        Examples
        --------
        >>> rec = TrainConfig(n_members=1, architecture="conv").resolve([8, 8], 100)
        >>> rec["activation"], rec["hidden"], rec["data_shape"]
        ('relu', [256, 256], [8, 8])
        >>> TrainConfig(architecture="conv").resolve([6, 6], 100)
        Traceback (most recent call last):
        ...
        ensemblex.errors.InputError: architecture='conv' needs images (sample, y, x[, channel]) with y and x divisible by 4; got per-sample shape (6, 6). Use 'mlp', or load_dataset('digits', size=16)/pad the images.
        """
        shape = [int(s) for s in data_shape]
        if self.architecture == "conv" and (
            len(shape) not in (2, 3) or shape[0] % 4 or shape[1] % 4
        ):
            raise InputError(
                "architecture='conv' needs images (sample, y, x[, channel]) with y and x "
                f"divisible by 4; got per-sample shape {tuple(shape)}. Use 'mlp', or "
                "load_dataset('digits', size=16)/pad the images."
            )
        if n_data < 1:
            raise InputError("data has no samples.")
        opts = dict(METHOD_OPTIONS[self.method])
        opts.update(self.options or {})
        if self.method == "annealed_vae" and opts["iteration_threshold"] is None:
            opts["iteration_threshold"] = max(self.steps, 1)
        return {
            "ensemblex_version": __version__,
            "method": self.method,
            "n_members": self.n_members,
            "latent_dim": self.latent_dim,
            "beta": self.member_betas(),
            "seeds": self.member_seeds(),
            "architecture": self.architecture,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "loss": self.resolved_loss,
            "data_shape": shape,
            "n_data": int(n_data),
            "hidden": [256, 256] if self.hidden is None else list(self.hidden),
            "activation": self.activation or ("tanh" if self.architecture == "mlp" else "relu"),
            "options": opts,
        }


#: the names of :class:`TrainConfig`'s fields
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
