"""The trained ensemble: posteriors, decoding, traversals, save and load.

An :class:`Ensemble` holds the weights of K trained members (a leading member
axis on every weight) and the JSON-ready record of their settings
(:meth:`ensemblex.models.TrainConfig.resolve`). It encodes data into a
Posteriors dataset, decodes latent codes, decodes traversals (drawn by
:func:`ensemblex.plot_traversals`), and saves to a folder of ``config.json``
and a TensorFlow checkpoint: no pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._checks import check_positive_int
from ..datasets.rows import gather_rows, split_data
from ..errors import InputError
from ._tf import require_tf

__all__ = ["CONFIG_FILE", "Ensemble", "load_ensemble"]

#: the settings file of a saved ensemble and of a checkpoint folder
CONFIG_FILE = "config.json"


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
        >>> from ensemblex.models import train_ensemble
        >>> ring = load_dataset("ring", n_samples=64)
        >>> ens = train_ensemble(ring, n_members=2, latent_dim=1, hidden=[4], steps=1,
        ...                      batch_size=8, loss="mse", progress=False)
        >>> mean, logvar = ens.encode(ring)
        >>> mean.shape
        (2, 64, 1)
        """
        arr, *_ = split_data(data)
        shape = tuple(self.config["data_shape"])
        if tuple(arr.shape[1:]) != shape:
            raise InputError(f"data samples must have shape {shape}; got {tuple(arr.shape[1:])}.")
        batch_size = check_positive_int("batch_size", batch_size)
        k = len(self)
        means, logvars = [], []
        fn = self._fn("encode")
        for start in range(0, arr.shape[0], batch_size):
            xb = gather_rows(arr, np.arange(start, min(start + batch_size, arr.shape[0])))
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
        _arr, labels, names, ids = split_data(data)
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
        >>> from ensemblex.models import train_ensemble
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
        >>> from ensemblex.models import train_ensemble
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
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
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
    meta_path = folder / CONFIG_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{str(folder)!r} holds no saved Ensemble ({CONFIG_FILE} missing).")
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
