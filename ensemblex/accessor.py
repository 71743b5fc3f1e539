"""The ``.repinfo`` accessor on ``xr.Dataset``.

Thin by design, as xarray recommends: ``__init__`` only stores the dataset,
and each method checks the dataset kind and calls a plain function that
takes and returns xarray objects. Heavy modules are imported on first use.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr

from ._kinds import require_kind

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["RepInfoAccessor"]


@xr.register_dataset_accessor("repinfo")
class RepInfoAccessor:
    """Information-theoretic analysis of representation spaces, on any ensemblex dataset."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    # -- posteriors -> fingerprints ------------------------------------------------
    def fingerprint(
        self,
        channels: Literal["latent", "model"] | Sequence[Sequence[int]] = "latent",
        *,
        channel_chunk: int | None = None,
        sample_chunk: int | None = None,
    ) -> xr.Dataset:
        """Lazy Bhattacharyya fingerprints of the channels of a Posteriors dataset.

        Parameters
        ----------
        channels
            ``"latent"``: every (model, latent) is a channel (model-major order);
            ``"model"``: each model's whole latent space is one channel;
            or a list of latent-index groups, each a subspace channel of every model.
        channel_chunk, sample_chunk
            Dask chunk sizes along ``channel`` and ``sample_i``.

        Returns
        -------
        xr.Dataset
            Fingerprints: ``bc(channel, sample_i, sample_j)``, lazy.
        """
        require_kind(self._ds, ("posteriors",), "repinfo.fingerprint()")
        from .fingerprints import fingerprint

        return fingerprint(
            self._ds, channels=channels, channel_chunk=channel_chunk, sample_chunk=sample_chunk
        )

    def info(self) -> xr.DataArray:
        """I(X;U) in bits for every channel (Kolchinsky-Tracey lower bound).

        Works on Fingerprints, and on Posteriors (one channel per latent).
        """
        kind = require_kind(self._ds, ("fingerprints", "posteriors"), "repinfo.info()")
        from .fingerprints import fingerprint, info

        fp = fingerprint(self._ds) if kind == "posteriors" else self._ds
        return info(fp)

    # -- fingerprints -> pairwise ----------------------------------------------------
    def pairwise(
        self,
        other: xr.Dataset | None = None,
        *,
        min_info: float = 0.01,
        channel_chunk: int | None = None,
        sample_chunk: int | None = None,
        store: str | Path | None = None,
    ) -> xr.Dataset:
        """All-pairs NMI, VI and joint information between channels (lazy, tiled).

        Parameters
        ----------
        other
            Fingerprints over the same samples to compare against (e.g. labels);
            ``None`` compares the channels with each other.
        min_info
            Channels with less information (bits) get NaN NMI.
        channel_chunk, sample_chunk
            Tile sizes of the Dask graph.
        store
            Path of a Zarr store: tiles are written as they finish and a rerun
            resumes where it stopped.
        """
        require_kind(self._ds, ("fingerprints",), "repinfo.pairwise()")
        from .pairwise import pairwise

        return pairwise(
            self._ds,
            other,
            min_info=min_info,
            channel_chunk=channel_chunk,
            sample_chunk=sample_chunk,
            store=store,
        )

    # -- structure -----------------------------------------------------------------
    def cluster(
        self,
        metric: Literal["nmi", "vi"] = "nmi",
        *,
        min_samples: int = 20,
        min_info: float = 0.01,
        pairwise: xr.Dataset | None = None,
        **optics_kwargs: Any,
    ) -> xr.Dataset:
        """OPTICS hotspots of the channels (paper Sec. 3.3).

        Called on Fingerprints (the pairwise results are computed, or taken from
        ``pairwise``) or directly on a Pairwise dataset. ``optics_kwargs`` go to
        :class:`sklearn.cluster.OPTICS`.
        """
        require_kind(self._ds, ("fingerprints", "pairwise"), "repinfo.cluster()")
        from .structure import cluster

        return cluster(
            self._ds,
            metric=metric,
            min_samples=min_samples,
            min_info=min_info,
            pairwise=pairwise,
            **optics_kwargs,
        )

    def label_nmi(self, labels: xr.Dataset | None = None) -> xr.DataArray:
        """NMI between every channel and every ground-truth factor, ``(channel, factor)``.

        ``labels`` is a label Fingerprints dataset; by default the ``labels``
        variable carried by this dataset is used.
        """
        require_kind(self._ds, ("fingerprints", "posteriors"), "repinfo.label_nmi()")
        from .structure import label_nmi

        return label_nmi(self._ds, labels)

    def udr(
        self,
        similarity: Literal["nmi", "vi", "lasso", "spearman"] = "nmi",
        *,
        kl_threshold: float = 0.01,
        min_info: float = 0.01,
    ) -> xr.DataArray:
        """Unsupervised Disentanglement Ranking score per model (Duan et al. 2020)."""
        require_kind(self._ds, ("posteriors", "fingerprints"), "repinfo.udr()")
        from .udr import udr

        return udr(self._ds, similarity=similarity, kl_threshold=kl_threshold, min_info=min_info)

    # -- synthesis -----------------------------------------------------------------
    def synthesize(
        self,
        n_dims: int = 2,
        *,
        objective: Literal["vi", "nmi", "info"] = "vi",
        channels: Sequence[Hashable] | xr.DataArray | None = None,
        steps: int = 20000,
        learning_rate: float = 3.0,
        optimizer: Literal["sgd", "adam"] = "sgd",
        batch_rows: int | None = None,
        seed: int = 0,
        progress: bool = True,
        info_floor: float | None = None,
    ) -> xr.Dataset:
        """Fuse reference channels into one synthesised channel by gradient descent.

        Parameters are those of :func:`ensemblex.synthesis.synthesize`: ``channels``
        selects the references (ids, or a boolean DataArray on ``channel`` such as
        ``clusters.group == 0``); ``objective`` is ``"vi"`` (mean exp(-VI), the
        default), ``"nmi"`` or ``"info"``; ``info_floor`` (bits) penalises a
        synthesised channel with less information, a guard for the NMI objective.

        Returns a Posteriors dataset (``model=1``, ``latent=n_dims``).
        """
        require_kind(self._ds, ("fingerprints", "posteriors"), "repinfo.synthesize()")
        from .synthesis import synthesize

        return synthesize(
            self._ds,
            n_dims=n_dims,
            objective=objective,
            channels=channels,
            steps=steps,
            learning_rate=learning_rate,
            optimizer=optimizer,
            batch_rows=batch_rows,
            seed=seed,
            progress=progress,
            info_floor=info_floor,
        )

    # -- figures -------------------------------------------------------------------
    def plot_structure(
        self,
        *,
        pairwise: xr.Dataset | None = None,
        path: str | Path | None = None,
    ) -> Any:
        """Fig. 4 layout: reachability, reordered similarity matrix, NMI with factors."""
        require_kind(self._ds, ("clusters",), "repinfo.plot_structure()")
        from .plot import plot_structure

        return plot_structure(self._ds, pairwise=pairwise, path=path)

    def plot_cross(
        self,
        other: xr.Dataset,
        *,
        metric: Literal["nmi", "vi"] = "nmi",
        path: str | Path | None = None,
    ) -> Any:
        """Compare the channels of two ensembles (Fig. 4b), on Fingerprints or Clusters."""
        require_kind(self._ds, ("fingerprints", "clusters"), "repinfo.plot_cross()")
        from .plot import plot_cross

        return plot_cross(self._ds, other, metric=metric, path=path)
