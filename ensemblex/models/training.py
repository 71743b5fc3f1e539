"""Train an ensemble of VAEs as one vectorised model; the :class:`Ensemble` it gives.

All K members live in one TensorFlow graph (weights with a leading member
axis, see :mod:`ensemblex.models.layers`) and one custom ``tf.function``
training step updates them all. Members are independent: member k's loss
depends on member k's weights only, Adam is elementwise, and everything
random about member k (initial weights, data order, reparameterisation
noise, FactorVAE's shuffles) comes from NumPy generators seeded by its own
seed and the step number. So a member trains the same in an ensemble of
any size as alone (``n_members=1`` with its seed), and a run stopped at a
checkpoint resumes on the same random stream.

Data order: each member walks through its own random permutation of the
data, a new permutation every epoch (``default_rng([seed, 1, epoch])``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from .._checks import check_option, check_positive_int, check_probability
from .._version import __version__
from ..errors import InputError, InputTypeError
from ._tf import require_tf
from .layers import init_member
from .losses import METHODS, LossKind, Method
from .vae import discriminator_specs, param_specs

__all__ = ["Ensemble", "load_ensemble", "plot_traversals", "train_ensemble"]

Architecture = Literal["mlp", "conv"]

_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
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
_ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
_CONFIG_FILE = "config.json"


# -- data ------------------------------------------------------------------------------


class _RenderedRows:
    """Lazy dSprites images: rows are rendered on demand from their flat indices.

    Gathering a random batch from the Dask-backed full set would compute whole
    chunks; rendering just the rows of the batch is exact and cheap.
    """

    def __init__(self, flat_indices: np.ndarray, size: int) -> None:
        self.flat = np.asarray(flat_indices, dtype=np.int64)
        self.size = int(size)
        self.shape = (self.flat.size, self.size, self.size)
        self.dtype = np.dtype(np.uint8)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        from ..datasets.dsprites import render_dsprites

        return render_dsprites(self.flat[idx], self.size)


def _split_data(data: Any) -> tuple[Any, Any, Any, Any]:
    """``(array (N, ...), labels (F, N) or None, factor names or None, sample ids or None)``."""
    if isinstance(data, xr.Dataset):
        for name in ("images", "x"):
            if name in data.data_vars:
                arr = data[name].transpose("sample", ...).data
                if (
                    name == "images"
                    and hasattr(arr, "dask")
                    and data.attrs.get("dataset") == "dsprites"
                    and "sample" in data.coords
                ):
                    arr = _RenderedRows(data["sample"].values, arr.shape[-1])
                break
        else:
            raise InputError(
                "data must hold 'images' (sample, y, x) or 'x' (sample, feature), as "
                f"load_dataset returns; got variables {sorted(map(str, data.data_vars))}."
            )
        labels = names = None
        if "labels" in data.data_vars:
            labels = np.asarray(data["labels"].transpose("factor", "sample").values)
            names = list(data["factor"].values) if "factor" in data.coords else None
        ids = data["sample"].values if "sample" in data.coords else None
        return arr, labels, names, ids
    if isinstance(data, xr.DataArray):
        data = data.data
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    return data, None, None, None


def _gather(arr: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``arr`` as float32; Dask arrays compute only the rows needed."""
    if isinstance(arr, _RenderedRows):
        return arr.rows(idx).astype(np.float32)
    if hasattr(arr, "dask"):
        uniq, inverse = np.unique(idx, return_inverse=True)
        return np.asarray(arr[uniq].compute(), dtype=np.float32)[inverse]
    return np.asarray(arr[idx], dtype=np.float32)


class _Stream:
    """One member's random stream: data order, noise and shuffles by (seed, step)."""

    def __init__(self, seed: int, n: int, batch: int, latent: int, shuffles: bool) -> None:
        self.seed, self.n, self.batch, self.latent, self.shuffles = seed, n, batch, latent, shuffles
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            rng = np.random.default_rng([self.seed, 1, epoch])
            self._perms[epoch] = rng.permutation(self.n)
        return self._perms[epoch]

    def draw(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        pos = step * self.batch + np.arange(self.batch)
        epoch, offset = np.divmod(pos, self.n)
        idx = np.empty(self.batch, dtype=np.int64)
        for e in np.unique(epoch):
            sel = epoch == e
            idx[sel] = self._perm(int(e))[offset[sel]]
        rng = np.random.default_rng([self.seed, 2, step])
        eps = rng.standard_normal((self.batch, self.latent), dtype=np.float32)
        perm = None
        if self.shuffles:
            perm = np.argsort(rng.random((self.latent, self.batch)), axis=1).T.astype(np.int32)
        return idx, eps, perm


# -- configuration ---------------------------------------------------------------------


def _per_member(name: str, value: Any, k: int, kind: type) -> list[Any]:
    values = np.atleast_1d(np.asarray(value))
    if values.ndim != 1 or values.size not in (1, k):
        raise InputError(f"{name} must be one value or one per member ({k}); got {value!r}.")
    if values.size == 1:
        values = np.repeat(values, k)
    return [kind(v) for v in values.tolist()]


def _make_config(
    arr: Any,
    *,
    method: str,
    n_members: int,
    latent_dim: int,
    beta: Any,
    architecture: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    loss: str,
    seed: Any,
    hidden: Sequence[int] | None,
    activation: str | None,
    options: Mapping[str, Any] | None,
) -> dict[str, Any]:
    check_option("method", method, METHODS)
    check_option("architecture", architecture, ("mlp", "conv"))
    check_option("loss", loss, ("bernoulli", "mse"))
    k = check_positive_int("n_members", n_members)
    latent_dim = check_positive_int("latent_dim", latent_dim)
    steps = check_positive_int("steps", steps, minimum=0)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_probability("learning_rate", learning_rate, high=math.inf)
    betas = _per_member("beta", beta, k, float)
    for b in betas:
        if not (math.isfinite(b) and b >= 0):
            raise InputError(f"beta must be finite and >= 0; got {beta!r}.")
    if np.ndim(seed) == 0:
        seeds = [int(seed) + i for i in range(k)]
    else:
        seeds = _per_member("seed", seed, k, int)
    if len(arr.shape) < 2:
        raise InputError(f"data must have a sample axis and feature axes; got shape {arr.shape}.")
    data_shape = [int(s) for s in arr.shape[1:]]
    if architecture == "conv" and (
        len(data_shape) not in (2, 3) or data_shape[0] % 4 or data_shape[1] % 4
    ):
        raise InputError(
            "architecture='conv' needs images (sample, y, x[, channel]) with y and x "
            f"divisible by 4; got per-sample shape {tuple(data_shape)}. Use 'mlp', or "
            "load_dataset('digits', size=16)/pad the images."
        )
    if arr.shape[0] < 1:
        raise InputError("data has no samples.")
    opts = dict(_DEFAULT_OPTIONS[method])
    unknown = set(options or {}) - set(opts)
    if unknown:
        raise InputError(
            f"unknown option(s) {sorted(unknown)} for method {method!r}; it takes "
            f"{sorted(opts) or 'none'}."
        )
    opts.update(options or {})
    if method == "annealed_vae" and opts["iteration_threshold"] is None:
        opts["iteration_threshold"] = max(steps, 1)
    if hidden is None:
        hidden = [256, 256]
    return {
        "ensemblex_version": __version__,
        "method": method,
        "n_members": k,
        "latent_dim": latent_dim,
        "beta": betas,
        "seeds": seeds,
        "architecture": architecture,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "loss": loss,
        "data_shape": data_shape,
        "n_data": int(arr.shape[0]),
        "hidden": [int(h) for h in hidden],
        "activation": activation or ("tanh" if architecture == "mlp" else "relu"),
        "options": opts,
    }


def _stack(specs: Any, seeds: Sequence[int], stream: int) -> dict[str, np.ndarray]:
    members = [init_member(specs, s, stream) for s in seeds]
    return {name: np.stack([m[name] for m in members]) for name, *_ in specs}


# -- the trainer -----------------------------------------------------------------------


class _Trainer:
    """Variables, Adam state and the compiled step of one ensemble."""

    def __init__(self, config: dict[str, Any]) -> None:
        tf = require_tf()
        self.tf = tf
        self.config = config
        k = config["n_members"]
        self.factor = config["method"] == "factor_vae"
        self.params = {
            n: tf.Variable(v, name=n.replace("/", "_"))
            for n, v in _stack(param_specs(config), config["seeds"], 0).items()
        }
        self.dparams: dict[str, Any] = {}
        if self.factor:
            dspecs = discriminator_specs(
                config["latent_dim"], config["options"]["discriminator_units"]
            )
            self.dparams = {
                n: tf.Variable(v, name=n.replace("/", "_"))
                for n, v in _stack(dspecs, config["seeds"], 1).items()
            }
        self.m = {n: tf.Variable(tf.zeros_like(v)) for n, v in self.params.items()}
        self.v = {n: tf.Variable(tf.zeros_like(v)) for n, v in self.params.items()}
        self.dm = {n: tf.Variable(tf.zeros_like(v)) for n, v in self.dparams.items()}
        self.dv = {n: tf.Variable(tf.zeros_like(v)) for n, v in self.dparams.items()}
        self.step = tf.Variable(0, dtype=tf.int64)
        self.alive = tf.Variable(tf.ones([k], tf.float32))
        self.beta = tf.constant(config["beta"], tf.float32)
        self.train_step = tf.function(self._train_step, autograph=False)

    def checkpoint(self) -> Any:
        return self.tf.train.Checkpoint(
            params=self.params,
            m=self.m,
            v=self.v,
            dparams=self.dparams,
            dm=self.dm,
            dv=self.dv,
            step=self.step,
            alive=self.alive,
        )

    def _adam(
        self, params: dict, grads: list, ms: dict, vs: dict, lr: float, b1: float, b2: float, t: Any
    ) -> None:
        tf = self.tf
        eps = _ADAM["epsilon"]
        alpha = lr * tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
        for (name, p), g in zip(params.items(), grads, strict=True):
            mask = tf.reshape(self.alive > 0, [-1] + [1] * (len(p.shape) - 1))
            g = tf.zeros_like(p) if g is None else tf.where(mask, g, 0.0)
            m, v = ms[name], vs[name]
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            p.assign_sub(tf.where(mask, alpha * m / (tf.sqrt(v) + eps), 0.0))

    def _train_step(self, x: Any, eps: Any, perm: Any) -> tuple[Any, Any, Any]:
        from .losses import discriminator_loss, method_loss, shuffle_codes
        from .vae import decode, discriminator, encode

        tf = self.tf
        cfg = self.config
        t_before = tf.cast(self.step, tf.float32)
        alive = self.alive > 0
        with tf.GradientTape(persistent=self.factor) as tape:
            mean, logvar = encode(self.params, x, cfg)
            z = mean + tf.exp(0.5 * logvar) * eps
            out = decode(self.params, z, cfg)
            disc_logits = discriminator(self.dparams, z) if self.factor else None
            parts = method_loss(
                cfg["method"],
                x,
                out,
                mean,
                logvar,
                z,
                self.beta,
                loss=cfg["loss"],
                step=t_before,
                options=cfg["options"],
                disc_logits=disc_logits,
            )
            objective = tf.reduce_sum(tf.where(alive, parts["total"], 0.0))
            if self.factor:
                z_fixed = tf.stop_gradient(z)
                d_loss = discriminator_loss(
                    discriminator(self.dparams, z_fixed),
                    discriminator(self.dparams, shuffle_codes(z_fixed, perm)),
                )
                d_objective = tf.reduce_sum(tf.where(alive, d_loss, 0.0))
        grads = tape.gradient(objective, list(self.params.values()))
        t = t_before + 1.0
        self._adam(
            self.params,
            grads,
            self.m,
            self.v,
            cfg["learning_rate"],
            _ADAM["beta_1"],
            _ADAM["beta_2"],
            t,
        )
        if self.factor:
            o = cfg["options"]
            dgrads = tape.gradient(d_objective, list(self.dparams.values()))
            self._adam(
                self.dparams,
                dgrads,
                self.dm,
                self.dv,
                o["discriminator_learning_rate"],
                o["discriminator_beta_1"],
                o["discriminator_beta_2"],
                t,
            )
        self.step.assign_add(1)
        return parts["total"], parts["recon"], parts["kl"]


def _check_resume(directory: Path, config: dict[str, Any]) -> None:
    path = directory / _CONFIG_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=1))
        return
    saved = json.loads(path.read_text())
    ignore = {"steps", "ensemblex_version"}
    diff = sorted(
        k for k in set(saved) | set(config) if k not in ignore and saved.get(k) != config.get(k)
    )
    if diff:
        raise InputError(
            f"checkpoint_dir {str(directory)!r} holds a run with other settings "
            f"({', '.join(diff)} differ); use a new checkpoint_dir to start afresh."
        )
    saved["steps"] = config["steps"]
    path.write_text(json.dumps(saved, indent=1))


def train_ensemble(
    data: Any,
    *,
    method: Method = "beta_vae",
    n_members: int = 10,
    latent_dim: int = 10,
    beta: float | Sequence[float] = 1.0,
    architecture: Architecture = "mlp",
    steps: int = 1000,
    batch_size: int = 64,
    learning_rate: float = 1e-4,
    loss: LossKind = "bernoulli",
    seed: int | Sequence[int] = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    options: Mapping[str, Any] | None = None,
    checkpoint_every: int | None = None,
) -> Ensemble:
    """Train ``n_members`` VAEs at once, as one vectorised model.

    Parameters
    ----------
    data
        A dataset from :func:`ensemblex.load_dataset` (``images`` or ``x``; labels
        are kept for :meth:`Ensemble.posteriors`) or an array ``(sample, ...)``.
        Values in [0, 1] for the Bernoulli loss. NumPy or Dask (Dask data are
        read batch by batch).
    method
        ``"beta_vae"``, ``"beta_tcvae"``, ``"annealed_vae"``, ``"dip_vae_i"``,
        ``"dip_vae_ii"`` or ``"factor_vae"`` (losses: :mod:`ensemblex.models.losses`).
    n_members
        Ensemble size K.
    latent_dim
        Latent dimensions per member.
    beta
        The method's strength, one value or one per member (a sweep in one
        graph): β (beta_vae, beta_tcvae), γ (annealed_vae, factor_vae),
        λ_od (dip_vae).
    architecture
        ``"mlp"`` or ``"conv"`` (:mod:`ensemblex.models.vae`).
    steps, batch_size, learning_rate
        Adam steps, batch per member, Adam learning rate (paper: 1e-4 / 64 for
        images; the ring toy: 1e-3 / 2048).
    loss
        ``"bernoulli"`` (summed over pixels) or ``"mse"`` (mean over features).
    seed
        Member k's seed is ``seed + k``; or give one seed per member. A member
        trained alone with its seed gives the same losses.
    checkpoint_dir
        Save a checkpoint there every ``checkpoint_every`` steps (default:
        ``max(100, steps // 10)``) and at the end; rerunning with the same
        directory and settings resumes (a larger ``steps`` continues training).
    progress
        Show a progress bar over steps.
    hidden, activation
        MLP hidden layers (default 256, 256) and activation (``tanh`` for
        MLPs, ``relu`` in the conv net).
    options
        Method settings: ``c_max`` (25), ``iteration_threshold`` (``steps``)
        for annealed_vae; ``lambda_d_factor`` (10 for dip_vae_i, 1 for
        dip_vae_ii); ``discriminator_units`` (six layers of 1000),
        ``discriminator_learning_rate`` (1e-4), ``discriminator_beta_1`` (0.5),
        ``discriminator_beta_2`` (0.9) for factor_vae.
    checkpoint_every
        Steps between checkpoints.

    Returns
    -------
    Ensemble
        The trained members. A member whose loss turns NaN or infinite is
        reported by index in a warning and left out.

    Examples
    --------
    >>> from ensemblex.datasets import load_dataset
    >>> ring = load_dataset("ring", n_samples=256, spacing="random")
    >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, beta=0.03, steps=5,
    ...                      batch_size=64, learning_rate=1e-3, loss="mse", progress=False,
    ...                      hidden=[16])
    >>> dict(ens.posteriors(ring).sizes)
    {'model': 2, 'latent': 1, 'sample': 256, 'factor': 1}
    """
    arr, labels, names, _ = _split_data(data)
    config = _make_config(
        arr,
        method=method,
        n_members=n_members,
        latent_dim=latent_dim,
        beta=beta,
        architecture=architecture,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        loss=loss,
        seed=seed,
        hidden=hidden,
        activation=activation,
        options=options,
    )
    if not (hasattr(arr, "dask") or isinstance(arr, _RenderedRows)):
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.number):
            raise InputTypeError(f"data must be numeric; got dtype {arr.dtype}.")
        if not np.isfinite(arr).all():
            raise InputError("data has NaN or infinite values; training needs finite data.")
        if loss == "bernoulli" and (arr.min() < 0 or arr.max() > 1):
            raise InputError(
                "loss='bernoulli' needs data in [0, 1]; got values in "
                f"[{arr.min()}, {arr.max()}]. Rescale, or use loss='mse'."
            )
    trainer = _Trainer(config)
    tf = trainer.tf
    manager = None
    if checkpoint_dir is not None:
        directory = Path(checkpoint_dir)
        _check_resume(directory, config)
        ckpt = trainer.checkpoint()
        manager = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=1)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        every = checkpoint_every or max(100, steps // 10)
        every = check_positive_int("checkpoint_every", every)
    start = int(trainer.step.numpy())
    k = config["n_members"]
    streams = [
        _Stream(s, config["n_data"], config["batch_size"], config["latent_dim"], trainer.factor)
        for s in config["seeds"]
    ]
    alive = trainer.alive.numpy() > 0
    history = np.full((max(steps - start, 0), k), np.nan, dtype=np.float32)
    dummy_perm = np.zeros((k, 1, 1), dtype=np.int32)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=steps,
        initial=min(start, steps),
        disable=not progress,
        desc=f"{method} x{k}",
        unit="step",
    )
    try:
        for step in range(start, steps):
            draws = [s.draw(step) for s in streams]
            idx = np.stack([d[0] for d in draws])
            xb = _gather(arr, idx.reshape(-1)).reshape(k, config["batch_size"], *arr.shape[1:])
            eps = np.stack([d[1] for d in draws])
            perm = (
                np.stack([d[2] for d in draws if d[2] is not None])
                if trainer.factor
                else dummy_perm
            )
            total, _, _ = trainer.train_step(xb, eps, perm)
            total = total.numpy()
            history[step - start] = np.where(alive, total, np.nan)
            bad = alive & ~np.isfinite(total)
            if bad.any():
                for i in np.flatnonzero(bad):
                    warnings.warn(
                        f"ensemble member {i} (seed {config['seeds'][i]}) has a non-finite loss "
                        f"({total[i]}) at step {step}; it is excluded from the ensemble.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                alive &= ~bad
                trainer.alive.assign(alive.astype(np.float32))
                if not alive.any():
                    raise RuntimeError(
                        f"every ensemble member's loss turned non-finite by step {step}; "
                        "lower the learning rate or beta."
                    )
            if progress and (step % 10 == 0 or step == steps - 1):
                bar.set_postfix(loss=float(np.mean(total[alive])), members=int(alive.sum()))
            bar.update(1)
            if manager is not None and ((step + 1) % every == 0 or step == steps - 1):
                manager.save(checkpoint_number=step + 1)
    finally:
        bar.close()
    kept = [int(i) for i in np.flatnonzero(alive)]
    weights = {n: v.numpy()[kept] for n, v in trainer.params.items()}
    return Ensemble(
        config, weights, members=kept, history=history[:, kept], labels=labels, factor_names=names
    )


# -- the trained ensemble --------------------------------------------------------------


class Ensemble:
    """K trained VAEs (the members kept after training) and their settings.

    Attributes
    ----------
    config : dict
        The training settings (JSON-serialisable).
    weights : dict of str to np.ndarray
        Encoder/decoder weights, each with a leading member axis.
    members : list of int
        Index of each kept member in the trained ensemble (members whose loss
        turned non-finite are left out).
    history : np.ndarray
        Loss per step and kept member, ``(steps, n_members)`` (this run only).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        weights: Mapping[str, np.ndarray],
        *,
        members: Sequence[int] | None = None,
        history: np.ndarray | None = None,
        labels: Any = None,
        factor_names: Sequence[Any] | None = None,
    ) -> None:
        self.config = dict(config)
        self.weights = {n: np.asarray(v, dtype=np.float32) for n, v in weights.items()}
        k = next(iter(self.weights.values())).shape[0]
        self.members = list(range(k)) if members is None else [int(m) for m in members]
        self.history = np.zeros((0, k), np.float32) if history is None else np.asarray(history)
        self._labels = labels
        self._factor_names = factor_names
        self._fns: dict[str, Any] = {}

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<Ensemble {c['method']} x{len(self)} ({c['architecture']}, latent_dim="
            f"{c['latent_dim']}, data {tuple(c['data_shape'])})>"
        )

    def __len__(self) -> int:
        return len(self.members)

    @property
    def seeds(self) -> list[int]:
        """Seed of each kept member."""
        return [self.config["seeds"][m] for m in self.members]

    @property
    def betas(self) -> list[float]:
        """β (the method's strength) of each kept member."""
        return [self.config["beta"][m] for m in self.members]

    # compiled functions, built on first use
    def _fn(self, name: str) -> Any:
        if name not in self._fns:
            tf = require_tf()
            from .vae import decode, encode

            params = {n: tf.constant(v) for n, v in self.weights.items()}
            cfg = self.config
            if name == "encode":
                self._fns[name] = tf.function(lambda x: encode(params, x, cfg), autograph=False)
            else:
                self._fns[name] = tf.function(lambda z: decode(params, z, cfg), autograph=False)
        return self._fns[name]

    def encode(self, data: Any, *, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances of every member: ``(K, N, L)`` each.

        >>> from ensemblex.datasets import load_dataset
        >>> ring = load_dataset("ring", n_samples=64)
        >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
        ...                      batch_size=8, loss="mse", progress=False)
        >>> mean, logvar = ens.encode(ring)
        >>> mean.shape
        (2, 64, 1)
        """
        arr, *_ = _split_data(data)
        shape = tuple(self.config["data_shape"])
        if tuple(arr.shape[1:]) != shape:
            raise InputError(f"data samples must have shape {shape}; got {tuple(arr.shape[1:])}.")
        batch_size = check_positive_int("batch_size", batch_size)
        k = len(self)
        means, logvars = [], []
        fn = self._fn("encode")
        for start in range(0, arr.shape[0], batch_size):
            xb = _gather(arr, np.arange(start, min(start + batch_size, arr.shape[0])))
            xb = np.broadcast_to(xb[None], (k, *xb.shape))
            m, lv = fn(np.ascontiguousarray(xb))
            means.append(m.numpy())
            logvars.append(lv.numpy())
        return np.concatenate(means, axis=1), np.concatenate(logvars, axis=1)

    def posteriors(self, data: Any, *, batch_size: int = 512) -> xr.Dataset:
        """The Posteriors dataset ``(model, latent, sample)`` of every member on ``data``.

        Coordinates on ``model``: ``method``, ``beta``, ``seed`` and ``member``
        (index in the trained ensemble). Labels of a dataset from
        :func:`ensemblex.load_dataset` are carried along.

        Examples
        --------
        >>> import numpy as np
        >>> ens = Ensemble({"architecture": "mlp", "latent_dim": 1, "data_shape": [2],
        ...                 "hidden": [], "activation": "tanh", "method": "beta_vae",
        ...                 "beta": [1.0], "seeds": [0]},
        ...                {"enc_out/w": np.ones((1, 2, 2)), "enc_out/b": np.zeros((1, 2)),
        ...                 "dec_out/w": np.ones((1, 1, 2)), "dec_out/b": np.zeros((1, 2))})
        >>> post = ens.posteriors(np.eye(2, dtype="float32"))
        >>> post["mean"].values.tolist(), post["method"].values.tolist()
        ([[[1.0, 1.0]]], ['beta_vae'])
        """
        from ..posteriors import posteriors

        mean, logvar = self.encode(data, batch_size=batch_size)
        _arr, labels, names, ids = _split_data(data)
        coords: dict[Hashable, Any] = {
            "method": [self.config["method"]] * len(self),
            "beta": np.asarray(self.betas, dtype=np.float64),
            "seed": np.asarray(self.seeds, dtype=np.int64),
            "member": np.asarray(self.members, dtype=np.int64),
        }
        if ids is not None:
            coords["sample"] = ("sample", np.asarray(ids))
        post = posteriors(
            np.transpose(mean, (0, 2, 1)),
            np.transpose(logvar, (0, 2, 1)),
            labels=labels,
            factor_names=names if labels is not None else None,
            coords=coords,
        )
        post.attrs["architecture"] = self.config["architecture"]
        return post

    def decode(self, z: Any, *, model: int | None = None) -> np.ndarray:
        """Decode latent vectors: probabilities (Bernoulli loss) or values (MSE).

        Parameters
        ----------
        z
            ``(N, L)`` (the same codes for every member) or ``(K, N, L)``.
        model
            Decode with this member only (position in the kept members); ``z``
            is then ``(N, L)`` and the result ``(N, *data_shape)``.

        Returns
        -------
        np.ndarray
            ``(K, N, *data_shape)``, or ``(N, *data_shape)`` with ``model``.

        Examples
        --------
        >>> from ensemblex.datasets import load_dataset
        >>> ring = load_dataset("ring", n_samples=64)
        >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
        ...                      batch_size=8, loss="mse", progress=False)
        >>> ens.decode([[0.0], [1.0], [2.0]]).shape
        (2, 3, 2)
        >>> ens.decode([[0.0]], model=1).shape
        (1, 2)
        """
        tf = require_tf()
        z = np.asarray(z, dtype=np.float32)
        k = len(self)
        latent = self.config["latent_dim"]
        if z.ndim == 2:
            z = np.broadcast_to(z[None], (k, *z.shape))
        if z.ndim != 3 or z.shape[0] != k or z.shape[2] != latent:
            raise InputError(f"z must be (N, {latent}) or ({k}, N, {latent}); got {z.shape}.")
        out = self._fn("decode")(np.ascontiguousarray(z))
        if self.config["loss"] == "bernoulli":
            out = tf.sigmoid(out)
        out = out.numpy()
        if model is not None:
            return out[self._model_index(model)]
        return out

    def _model_index(self, model: int) -> int:
        if not (isinstance(model, int | np.integer) and 0 <= model < len(self)):
            raise InputError(f"model must be an integer in [0, {len(self)}); got {model!r}.")
        return int(model)

    def traverse(self, model: int, latent: int, values: Any, *, base: Any = None) -> np.ndarray:
        """Decode a latent traversal: ``latent`` set to each of ``values``, others at ``base``.

        Parameters
        ----------
        model
            Member (position in the kept members).
        latent
            The latent dimension to vary.
        values
            The values it takes, ``(V,)``.
        base
            The other latents (``(L,)``, e.g. a datum's posterior mean); 0 by default.

        Returns
        -------
        np.ndarray
            ``(V, *data_shape)``.

        Examples
        --------
        >>> from ensemblex.datasets import load_dataset
        >>> ring = load_dataset("ring", n_samples=64)
        >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
        ...                      batch_size=8, loss="mse", progress=False)
        >>> ens.traverse(0, 0, [-1.0, 0.0, 1.0]).shape
        (3, 2)
        """
        model = self._model_index(model)
        n_latent = self.config["latent_dim"]
        if not (isinstance(latent, int | np.integer) and 0 <= latent < n_latent):
            raise InputError(f"latent must be an integer in [0, {n_latent}); got {latent!r}.")
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        z = np.zeros((values.size, n_latent), np.float32)
        if base is not None:
            z[:] = np.asarray(base, dtype=np.float32).reshape(n_latent)
        z[:, latent] = values
        return self.decode(z)[model]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to a folder: ``config.json`` and a TensorFlow checkpoint of the weights (no pickle).

        Reload with :func:`load_ensemble` (see its example).
        """
        tf = require_tf()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": self.config,
            "members": self.members,
            "weights": {n: list(v.shape) for n, v in self.weights.items()},
            "factor_names": None
            if self._factor_names is None
            else [str(f) for f in self._factor_names],
        }
        (folder / _CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        variables = {n.replace("/", "."): tf.Variable(v) for n, v in self.weights.items()}
        tf.train.Checkpoint(weights=variables).write(str(folder / "weights"))
        np.save(folder / "history.npy", self.history, allow_pickle=False)


def load_ensemble(path: str | os.PathLike[str]) -> Ensemble:
    """Load an :class:`Ensemble` written by :meth:`Ensemble.save`.

    >>> import tempfile, numpy as np
    >>> ens = Ensemble({"architecture": "mlp", "latent_dim": 1, "data_shape": [2],
    ...                 "hidden": [], "activation": "tanh", "method": "beta_vae",
    ...                 "beta": [1.0], "seeds": [0], "loss": "mse"},
    ...                {"enc_out/w": np.ones((1, 2, 2)), "enc_out/b": np.zeros((1, 2)),
    ...                 "dec_out/w": np.ones((1, 1, 2)), "dec_out/b": np.zeros((1, 2))})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     ens.save(d)
    ...     load_ensemble(d).weights["enc_out/w"].tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    """
    tf = require_tf()
    folder = Path(path)
    meta_path = folder / _CONFIG_FILE
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{str(folder)!r} holds no saved Ensemble ({_CONFIG_FILE} missing)."
        )
    meta = json.loads(meta_path.read_text())
    if "weights" not in meta:
        raise InputError(
            f"{str(folder)!r} is a training checkpoint_dir, not a saved Ensemble; rerun "
            "train_ensemble with that checkpoint_dir to resume and get the Ensemble."
        )
    variables = {
        n.replace("/", "."): tf.Variable(tf.zeros(shape, tf.float32))
        for n, shape in meta["weights"].items()
    }
    tf.train.Checkpoint(weights=variables).read(str(folder / "weights")).assert_consumed()
    weights = {n: variables[n.replace("/", ".")].numpy() for n in meta["weights"]}
    history_path = folder / "history.npy"
    history = np.load(history_path, allow_pickle=False) if history_path.exists() else None
    return Ensemble(
        meta["config"],
        weights,
        members=meta["members"],
        history=history,
        factor_names=meta.get("factor_names"),
    )


def plot_traversals(
    ensemble: Ensemble,
    *,
    model: int = 0,
    latents: Sequence[int] | None = None,
    values: Any = None,
    base: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Latent traversals of one member (paper Fig. 4c/5) as a matplotlib figure.

    Images: one row per latent, one column per value. Vector data (e.g. the
    ring): one panel per latent, the decoded points coloured by value.

    Parameters
    ----------
    ensemble
        The trained ensemble.
    model
        Member (position in the kept members).
    latents
        Latents to show (default: all).
    values
        Traversal values (default: 9 values in [-2, 2]).
    base
        Value of the other latents (default 0).
    path
        Save the figure there (PNG by the suffix).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from ensemblex.datasets import load_dataset
    >>> ring = load_dataset("ring", n_samples=64)
    >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
    ...                      batch_size=8, loss="mse", progress=False)
    >>> fig = plot_traversals(ens, values=[-1.0, 0.0, 1.0])
    >>> len(fig.axes)            # one panel (and its colour bar) per latent
    2
    """
    # a bare Figure (no pyplot): no GUI backend needed, the user's backend untouched
    from matplotlib.figure import Figure

    n_latent = ensemble.config["latent_dim"]
    latents = list(range(n_latent)) if latents is None else [int(i) for i in latents]
    values = np.linspace(-2.0, 2.0, 9) if values is None else np.asarray(values, float)
    shape = tuple(ensemble.config["data_shape"])
    is_image = len(shape) >= 2
    if is_image:
        fig = Figure(figsize=(0.9 * len(values) + 0.6, 0.9 * len(latents) + 0.4))
        axes = fig.subplots(len(latents), len(values), squeeze=False)
        for r, lat in enumerate(latents):
            imgs = ensemble.traverse(model, lat, values, base=base)
            for c in range(len(values)):
                ax = axes[r, c]
                img = imgs[c]
                ax.imshow(
                    img if img.ndim == 2 or img.shape[-1] == 3 else img[..., 0],
                    cmap="gray",
                    vmin=0,
                    vmax=1,
                )
                ax.set_xticks([])
                ax.set_yticks([])
                if r == len(latents) - 1:
                    ax.set_xlabel(f"{values[c]:.2g}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(f"z{lat}", fontsize=8)
    else:
        fig = Figure(figsize=(3.0 * len(latents), 3.0))
        axes = fig.subplots(1, len(latents), squeeze=False)
        for c, lat in enumerate(latents):
            out = ensemble.traverse(model, lat, values, base=base).reshape(len(values), -1)
            ax = axes[0, c]
            if out.shape[1] >= 2:
                sc = ax.scatter(out[:, 0], out[:, 1], c=values, cmap="viridis", s=15)
                ax.plot(out[:, 0], out[:, 1], lw=0.5, color="gray")
                ax.set_aspect("equal", adjustable="datalim")
            else:
                sc = ax.scatter(values, out[:, 0], c=values, cmap="viridis", s=15)
            fig.colorbar(sc, ax=ax, label=f"z{lat}")
            ax.set_title(f"model {model}, latent {lat}", fontsize=9)
    fig.suptitle(
        f"{ensemble.config['method']} traversals (member seed {ensemble.seeds[model]})", fontsize=9
    )
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
