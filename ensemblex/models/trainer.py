"""Train an ensemble of VAEs as one vectorised model.

All K members live in one TensorFlow graph (weights with a leading member
axis, see :mod:`ensemblex.models.layers`) and one custom ``tf.function``
training step updates them all with the package's Adam
(:mod:`ensemblex.models.optim`). Members are independent: member k's loss
depends on member k's weights only, Adam is elementwise, and everything
random about member k (initial weights, data order, reparameterisation
noise, FactorVAE's shuffles) comes from NumPy generators seeded by its own
seed and the step number. So a member trains the same in an ensemble of
any size as alone (``n_members=1`` with its seed), and a run stopped at a
checkpoint resumes on the same random stream.

Data order: each member walks through its own random permutation of the
data, a new permutation every epoch (``default_rng([seed, 1, epoch])``).

The settings are one :class:`~ensemblex.models.config.TrainConfig`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._checks import check_positive_int
from ..datasets.rows import gather_rows, is_lazy, resize_images, split_data
from ..errors import InputError, InputTypeError
from ._tf import require_tf
from .config import Architecture, TrainConfig
from .ensemble import CONFIG_FILE, Ensemble
from .layers import init_member
from .losses import LossKind, Method
from .optim import Adam
from .vae import discriminator_specs, param_specs

__all__ = ["train_ensemble", "train_posteriors"]

Log = Callable[[str], None]


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


def _stack(specs: Any, seeds: Sequence[int], stream: int) -> dict[str, np.ndarray]:
    members = [init_member(specs, s, stream) for s in seeds]
    return {name: np.stack([m[name] for m in members]) for name, *_ in specs}


class _Trainer:
    """Variables, optimisers and the compiled step of one ensemble."""

    def __init__(self, config: dict[str, Any]) -> None:
        tf = require_tf()
        self.tf = tf
        self.config = config
        k = config["n_members"]
        self.factor = config["method"] == "factor_vae"

        def variables(specs: Any, stream: int) -> dict[str, Any]:
            return {
                n: tf.Variable(v, name=n.replace("/", "_"))
                for n, v in _stack(specs, config["seeds"], stream).items()
            }

        self.params = variables(param_specs(config), 0)
        self.dparams: dict[str, Any] = {}
        if self.factor:
            units = config["options"]["discriminator_units"]
            self.dparams = variables(discriminator_specs(config["latent_dim"], units), 1)
        self.opt = Adam(self.params, learning_rate=config["learning_rate"])
        o = config["options"]
        self.dopt = Adam(
            self.dparams,
            learning_rate=o.get("discriminator_learning_rate", 1e-4),
            beta_1=o.get("discriminator_beta_1", 0.5),
            beta_2=o.get("discriminator_beta_2", 0.9),
        )
        self.step = tf.Variable(0, dtype=tf.int64)
        self.alive = tf.Variable(tf.ones([k], tf.float32))
        self.beta = tf.constant(config["beta"], tf.float32)
        self.train_step = tf.function(self._train_step, autograph=False)

    def checkpoint(self) -> Any:
        return self.tf.train.Checkpoint(
            params=self.params,
            m=self.opt.m,
            v=self.opt.v,
            dparams=self.dparams,
            dm=self.dopt.m,
            dv=self.dopt.v,
            step=self.step,
            alive=self.alive,
        )

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
        t = t_before + 1.0
        self.opt.apply(tape.gradient(objective, list(self.params.values())), t, mask=alive)
        if self.factor:
            dgrads = tape.gradient(d_objective, list(self.dparams.values()))
            self.dopt.apply(dgrads, t, mask=alive)
        self.step.assign_add(1)
        return parts["total"], parts["recon"], parts["kl"]


def _check_resume(directory: Path, config: dict[str, Any]) -> None:
    path = directory / CONFIG_FILE
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


def _check_data(arr: Any, loss: str) -> Any:
    """In-memory data as a numeric, finite NumPy array (lazy data are read per batch)."""
    if is_lazy(arr):
        return arr
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
    return arr


def _config_from(config: TrainConfig | None, settings: Mapping[str, Any]) -> TrainConfig:
    """``config`` (default: :class:`TrainConfig`'s defaults) with the settings given."""
    base = TrainConfig() if config is None else config
    if not isinstance(base, TrainConfig):
        raise InputTypeError(f"config must be a TrainConfig; got {type(base).__name__}.")
    given = {k: v for k, v in settings.items() if v is not None}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    return base.replace(**given) if given else base


def _run(
    trainer: _Trainer,
    arr: Any,
    config: dict[str, Any],
    *,
    manager: Any,
    every: int,
    progress: bool,
) -> np.ndarray:
    """The training loop; the loss history ``(steps run, K)`` (NaN for dropped members)."""
    from .._runtime import progress_bar

    steps, k = config["steps"], config["n_members"]
    start = int(trainer.step.numpy())
    streams = [
        _Stream(s, config["n_data"], config["batch_size"], config["latent_dim"], trainer.factor)
        for s in config["seeds"]
    ]
    alive = trainer.alive.numpy() > 0
    history = np.full((max(steps - start, 0), k), np.nan, dtype=np.float32)
    dummy_perm = np.zeros((k, 1, 1), dtype=np.int32)
    desc = f"{config['method']} x{k}"
    with progress_bar(steps, desc=desc, enabled=progress, initial=min(start, steps)) as bar:
        for step in range(start, steps):
            draws = [s.draw(step) for s in streams]
            idx = np.stack([d[0] for d in draws])
            xb = gather_rows(arr, idx.reshape(-1)).reshape(k, config["batch_size"], *arr.shape[1:])
            eps = np.stack([d[1] for d in draws])
            perm = (
                np.stack([d[2] for d in draws if d[2] is not None])
                if trainer.factor
                else dummy_perm
            )
            total = trainer.train_step(xb, eps, perm)[0].numpy()
            history[step - start] = np.where(alive, total, np.nan)
            bad = alive & ~np.isfinite(total)
            if bad.any():
                alive = _drop_members(trainer, alive, bad, total, step, config["seeds"])
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(
                    loss=f"{float(np.mean(total[alive])):.4g}", members=int(alive.sum())
                )
            bar.update(1)
            if manager is not None and ((step + 1) % every == 0 or step == steps - 1):
                manager.save(checkpoint_number=step + 1)
    return history


def _drop_members(
    trainer: _Trainer,
    alive: np.ndarray,
    bad: np.ndarray,
    total: np.ndarray,
    step: int,
    seeds: Sequence[int],
) -> np.ndarray:
    for i in np.flatnonzero(bad):
        warnings.warn(
            f"ensemble member {i} (seed {seeds[int(i)]}) has a non-finite loss "
            f"({total[i]}) at step {step}; it is excluded from the ensemble.",
            RuntimeWarning,
            stacklevel=4,
        )
    alive = alive & ~bad
    trainer.alive.assign(alive.astype(np.float32))
    if not alive.any():
        raise RuntimeError(
            f"every ensemble member's loss turned non-finite by step {step}; "
            "lower the learning rate or beta."
        )
    return alive


def train_ensemble(
    data: Any,
    config: TrainConfig | None = None,
    *,
    method: Method | None = None,
    n_members: int | None = None,
    latent_dim: int | None = None,
    beta: float | Sequence[float] | None = None,
    architecture: Architecture | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    loss: LossKind | None = None,
    seed: int | Sequence[int] | None = None,
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
    config
        The settings (:class:`~ensemblex.models.TrainConfig`; its data fields
        are not used here). Default: ``TrainConfig()``.
    method, n_members, latent_dim, beta, architecture, steps, batch_size, learning_rate, loss, seed, hidden, activation, options
        Settings that override those of ``config`` (``None``: the config's).
        Defaults and meaning: :class:`~ensemblex.models.TrainConfig` (method
        ``"beta_vae"``, 10 members, 10 latents, β 1, ``"mlp"``, 1,000 Adam
        steps, batch 64, learning rate 1e-4, Bernoulli loss, seed 0).
    checkpoint_dir
        Save a checkpoint there every ``checkpoint_every`` steps (default:
        ``max(100, steps // 10)``) and at the end; rerunning with the same
        directory and settings resumes (a larger ``steps`` continues training).
    progress
        Show progress over steps (a bar on a terminal, plain lines in a log).
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

    The same with a config:

    >>> cfg = TrainConfig(n_members=2, latent_dim=1, beta=0.03, steps=5, learning_rate=1e-3,
    ...                   loss="mse", hidden=(16,))
    >>> train_ensemble(ring, cfg, progress=False).config["hidden"]
    [16]
    """
    cfg = _config_from(
        config,
        {
            "method": method,
            "n_members": n_members,
            "latent_dim": latent_dim,
            "beta": beta,
            "architecture": architecture,
            "steps": steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "loss": loss,
            "seed": seed,
            "hidden": hidden,
            "activation": activation,
            "options": options,
        },
    )
    arr, labels, names, _ = split_data(data)
    if len(arr.shape) < 2:
        raise InputError(f"data must have a sample axis and feature axes; got shape {arr.shape}.")
    record = cfg.resolve(arr.shape[1:], arr.shape[0])
    arr = _check_data(arr, record["loss"])
    trainer = _Trainer(record)
    manager, every = None, 0
    if checkpoint_dir is not None:
        directory = Path(checkpoint_dir)
        _check_resume(directory, record)
        ckpt = trainer.checkpoint()
        manager = trainer.tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=1)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        every = check_positive_int(
            "checkpoint_every", checkpoint_every or max(100, record["steps"] // 10)
        )
    history = _run(trainer, arr, record, manager=manager, every=every, progress=progress)
    kept = [int(i) for i in np.flatnonzero(trainer.alive.numpy() > 0)]
    weights = {n: v.numpy()[kept] for n, v in trainer.params.items()}
    return Ensemble(
        record, weights, members=kept, history=history[:, kept], labels=labels, factor_names=names
    )


def train_posteriors(
    config: TrainConfig | None = None,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    dataset_options: Mapping[str, Any] | None = None,
    log: Log | None = None,
) -> xr.Dataset:
    """Train an ensemble on ``config.dataset`` and return the posteriors of every member.

    The training points (``config.n_train``) and the fingerprint sample
    (``config.n_fingerprint`` points) are drawn from the dataset with the
    seeds ``seed`` and ``seed + 1``; the ring trains on random angles and is
    fingerprinted on evenly spaced ones. For a β sweep give
    ``config.sweep(betas)``: ``beta`` is then a coordinate on ``model``.

    Parameters
    ----------
    config
        The settings (default ``TrainConfig()``).
    models_dir
        Save the trained :class:`Ensemble` there.
    progress
        Show training progress.
    dataset_options
        Options of :func:`ensemblex.load_dataset` (e.g. ``path`` for MNIST).
    log
        Where to say what is being trained (``None``: nowhere).

    Returns
    -------
    xr.Dataset
        Posteriors ``(model, latent, sample)`` on ``n_fingerprint`` points,
        with the dataset's ground-truth ``labels``; attrs ``dataset``,
        ``method`` and ``architecture``.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="ring", n_members=2, latent_dim=1, steps=3, batch_size=16,
    ...                   hidden=(8,), n_train=64, n_fingerprint=20)
    >>> post = train_posteriors(cfg.sweep([0.1, 1.0]), progress=False)
    >>> dict(post.sizes), post["beta"].values.tolist()
    ({'model': 4, 'latent': 1, 'sample': 20, 'factor': 1}, [0.1, 0.1, 1.0, 1.0])
    """
    from ..datasets import load_dataset
    from ..posteriors import validate_posteriors

    cfg = TrainConfig() if config is None else config
    if not isinstance(cfg, TrainConfig):
        raise InputTypeError(f"config must be a TrainConfig; got {type(cfg).__name__}.")
    say: Log = log or (lambda _msg: None)
    seed = cfg.member_seeds()[0]
    options = dict(dataset_options or {})
    train_options = dict(options)
    if cfg.dataset == "ring":
        # train on random angles; fingerprint on evenly spaced points around the circle
        train_options.setdefault("spacing", "random")
        options.setdefault("spacing", "even")
    data = load_dataset(cfg.dataset, n_samples=cfg.n_train, seed=seed, **train_options)
    sample = load_dataset(cfg.dataset, n_samples=cfg.n_fingerprint, seed=seed + 1, **options)
    if cfg.image_size is not None:
        data, sample = resize_images(data, cfg.image_size), resize_images(sample, cfg.image_size)
    betas = sorted(set(cfg.member_betas()), key=cfg.member_betas().index)
    say(
        f"training {cfg.n_members} {cfg.method} members (beta "
        f"{', '.join(f'{b:g}' for b in betas)}; latent_dim={cfg.latent_dim}, "
        f"{cfg.architecture}) on {data.sizes['sample']} {cfg.dataset} points for "
        f"{cfg.steps} steps"
    )
    ensemble = train_ensemble(data, cfg, progress=progress)
    if models_dir is not None:
        Path(models_dir).mkdir(parents=True, exist_ok=True)
        ensemble.save(models_dir)
        say(f"saved the models in {models_dir}")
    post = ensemble.posteriors(sample)
    post.attrs.update(
        {"dataset": cfg.dataset, "method": cfg.method, "architecture": cfg.architecture}
    )
    return validate_posteriors(post)
