"""The ``.repinfo`` accessor on ``xr.Dataset``.

Thin by design, as xarray recommends: ``__init__`` only stores the dataset,
and each method checks the dataset kind and calls a plain function that
takes and returns xarray objects, with the same parameters (names, defaults)
as that function. Heavy modules are imported on first use.

The NMI-or-VI choice is ``measure=`` everywhere, as in the functions; the
older names (``metric=``, ``similarity=``, ``objective=``) still work for a
release and warn (``FutureWarning``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import xarray as xr

from ._kinds import require_kind
from ._reference_store import DEFAULT_MEMORY_BYTES
from .estimators import MIN_INFO
from .measures import resolve_alias
from .udr import KL_THRESHOLD

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .measures import ClusterMeasure, ObjectiveMeasure
    from .models import Ensemble
    from .structure import ClusterMethod
    from .synthesis import Optimizer, Settings
    from .udr import UDRMeasure

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
        min_info: float = MIN_INFO,
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
        measure: ClusterMeasure | None = None,
        *,
        min_samples: int | Literal["auto"] = "auto",
        min_info: float = MIN_INFO,
        pairwise: xr.Dataset | None = None,
        cluster_method: ClusterMethod = "xi",
        xi: float = 0.05,
        max_eps: float = float("inf"),
        eps: float | None = None,
        min_cluster_size: int | float | None = None,
        predecessor_correction: bool = True,
        keep_similarity: bool | None = None,
        metric: ClusterMeasure | None = None,
        xi_window: int | Literal["auto"] = "auto",
    ) -> xr.Dataset:
        """OPTICS hotspots of the channels (paper Sec. 3.3).

        Called on Fingerprints (the pairwise results are computed, or taken
        from ``pairwise``) or directly on a Pairwise dataset. The parameters
        are those of :func:`ensemblex.cluster`: ``measure`` is ``"nmi"`` (the
        default; distance ``-ln NMI``) or ``"vi"``; ``min_samples="auto"``
        grows with the number of models, and so does ``xi_window="auto"``,
        the number of points over which the xi method measures steepness (the
        rules used are in the attrs). ``metric`` is the deprecated name of
        ``measure``.

        Returns
        -------
        xr.Dataset
            Clusters: ``group``, ``central``, OPTICS ``ordering`` and
            ``reachability`` per channel.
        """
        require_kind(self._ds, ("fingerprints", "pairwise"), "repinfo.cluster()")
        from .structure import cluster

        chosen = resolve_alias(
            measure, "nmi", old_name="metric", old_value=metric, function="repinfo.cluster()"
        )
        return cluster(
            self._ds,
            chosen,  # type: ignore[arg-type]
            min_samples=min_samples,
            min_info=min_info,
            pairwise=pairwise,
            cluster_method=cluster_method,
            xi=xi,
            max_eps=max_eps,
            eps=eps,
            min_cluster_size=min_cluster_size,
            predecessor_correction=predecessor_correction,
            keep_similarity=keep_similarity,
            xi_window=xi_window,
        )

    def describe_groups(self, *, pairwise: xr.Dataset | None = None) -> pd.DataFrame:
        """One row per group of a Clusters dataset: what the group is and what it carries.

        Columns ``group``, ``size``, ``models`` (in how many models it recurs),
        ``bits``, ``coherence`` (mean similarity of its members; needs
        ``pairwise`` unless the clusters kept their similarity),
        ``central_model``, ``central_latent``, ``best_factors``, ``best_nmi``
        (see :func:`ensemblex.describe_groups`).
        """
        require_kind(self._ds, ("clusters",), "repinfo.describe_groups()")
        from .structure import describe_groups

        return describe_groups(self._ds, pairwise=pairwise)

    def label_nmi(
        self, labels: xr.Dataset | xr.DataArray | None = None, *, pairs: bool = False
    ) -> xr.DataArray:
        """NMI between every channel and every ground-truth factor, ``(channel, factor)``.

        ``labels`` is a label Fingerprints dataset (or labels ``(factor,
        sample)``); by default the ``labels`` variable carried by this dataset
        is used. ``pairs=True`` adds every pair of factors ``"<a>+<b>"``
        (the NMI with their joint label).
        """
        require_kind(self._ds, ("fingerprints", "posteriors"), "repinfo.label_nmi()")
        from .structure import label_nmi

        return label_nmi(self._ds, labels, pairs=pairs)

    def udr(
        self,
        measure: UDRMeasure | None = None,
        *,
        kl_threshold: float = KL_THRESHOLD,
        min_info: float = MIN_INFO,
        similarity: UDRMeasure | None = None,
    ) -> xr.DataArray:
        """Unsupervised Disentanglement Ranking score per model (Duan et al. 2020).

        ``measure`` is the similarity between latents: ``"nmi"`` (the default),
        ``"vi"``, or UDR's own ``"lasso"`` and ``"spearman"``.
        ``similarity`` is its deprecated name. See :func:`ensemblex.udr`.
        """
        require_kind(self._ds, ("posteriors", "fingerprints"), "repinfo.udr()")
        from .udr import udr

        chosen = resolve_alias(
            measure, "nmi", old_name="similarity", old_value=similarity, function="repinfo.udr()"
        )
        return udr(
            self._ds,
            measure=chosen,  # type: ignore[arg-type]
            kl_threshold=kl_threshold,
            min_info=min_info,
        )

    # -- synthesis -----------------------------------------------------------------
    def synthesize(
        self,
        n_dims: int = 2,
        *,
        measure: ObjectiveMeasure | None = None,
        channels: Sequence[Hashable] | xr.DataArray | None = None,
        settings: Settings = "fast",
        steps: int | None = None,
        learning_rate: float | None = None,
        optimizer: Optimizer | None = None,
        batch_rows: int | None = None,
        seed: int = 0,
        progress: bool = True,
        info_floor: float | None = None,
        min_info: float = MIN_INFO,
        reference_batch: int | None = None,
        reference_memory: int = DEFAULT_MEMORY_BYTES,
        objective: ObjectiveMeasure | None = None,
    ) -> xr.Dataset:
        """Fuse reference channels into one synthesised channel by gradient descent.

        Parameters are those of :func:`ensemblex.synthesize`: ``channels``
        selects the references (ids, or a boolean DataArray on ``channel`` such as
        ``clusters.group == 0``); ``measure`` is ``"vi"`` (mean exp(-VI), the
        default), ``"nmi"`` or ``"info"``; ``settings`` picks the optimiser
        preset (``"fast"``: converges in minutes on a CPU; ``"paper"``: the
        paper's SGD), which ``steps``, ``learning_rate`` and ``optimizer``
        override; ``info_floor`` (bits) penalises a synthesised channel with
        less information, a guard for the NMI objective; ``reference_memory``
        (bytes) bounds the references held in memory, the rest is read from a
        temporary file. ``objective`` is the deprecated name of ``measure``.

        Returns a Posteriors dataset (``model=1``, ``latent=n_dims``).
        """
        require_kind(self._ds, ("fingerprints", "posteriors"), "repinfo.synthesize()")
        from .synthesis import synthesize

        chosen = resolve_alias(
            measure,
            "vi",
            old_name="objective",
            old_value=objective,
            function="repinfo.synthesize()",
        )
        return synthesize(
            self._ds,
            n_dims=n_dims,
            measure=chosen,  # type: ignore[arg-type]
            channels=channels,
            settings=settings,
            steps=steps,
            learning_rate=learning_rate,
            optimizer=optimizer,
            batch_rows=batch_rows,
            seed=seed,
            progress=progress,
            info_floor=info_floor,
            min_info=min_info,
            reference_batch=reference_batch,
            reference_memory=reference_memory,
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
        measure: ClusterMeasure | None = None,
        path: str | Path | None = None,
        metric: ClusterMeasure | None = None,
    ) -> Any:
        """Compare the channels of two ensembles (Fig. 4b), on Fingerprints or Clusters.

        ``measure`` is ``"nmi"`` (the default) or ``"vi"``; ``metric`` is its
        deprecated name.
        """
        require_kind(self._ds, ("fingerprints", "clusters"), "repinfo.plot_cross()")
        from .plot import plot_cross

        chosen = resolve_alias(
            measure, "nmi", old_name="metric", old_value=metric, function="repinfo.plot_cross()"
        )
        return plot_cross(self._ds, other, measure=chosen, path=path)  # type: ignore[arg-type]

    def plot_nmi_vi(
        self,
        *,
        path: str | Path | None = None,
        max_pairs: int = 200_000,
        seed: int = 0,
    ) -> Any:
        """NMI against exp(-VI) for the pairs of informative channels (paper Fig. 12).

        On a Pairwise dataset; at most ``max_pairs`` pairs are drawn (seeded).
        """
        require_kind(self._ds, ("pairwise",), "repinfo.plot_nmi_vi()")
        from .plot import plot_nmi_vi

        return plot_nmi_vi(self._ds, path=path, max_pairs=max_pairs, seed=seed)

    def plot_group_traversals(
        self,
        ensemble: Ensemble,
        *,
        n_steps: int = 7,
        span: float = 2.0,
        path: str | Path | None = None,
        seed: int = 0,
        pairwise: xr.Dataset | None = None,
    ) -> Any:
        """Decoded latent traversals of each group's central channel (paper Figs. 4c, 11).

        On a Clusters dataset, with the trained ``ensemble`` its channels come
        from: one row per group (the central channel and a seeded random
        member), labelled with the group's :meth:`describe_groups` line.
        """
        require_kind(self._ds, ("clusters",), "repinfo.plot_group_traversals()")
        from .plot import plot_group_traversals

        return plot_group_traversals(
            ensemble, self._ds, n_steps=n_steps, span=span, path=path, seed=seed, pairwise=pairwise
        )
