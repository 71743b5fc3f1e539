"""Analysis steps that combine several library functions (middle layer).

:func:`synthesize_group` fuses a set of reference channels into one channel
(:func:`ensemblex.synthesize`) and measures the result against its references
and the ground-truth factors: the synthesis step of ``ensemblex demo``, usable
on its own.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ._kinds import require_kind

if TYPE_CHECKING:
    from .measures import ObjectiveMeasure
    from .synthesis import Settings

__all__ = ["synthesize_group"]


def _mean_or_none(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if finite.size else None


def synthesize_group(
    fp: xr.Dataset,
    channels: Sequence[Hashable],
    *,
    n_dims: int = 2,
    measure: ObjectiveMeasure | None = None,
    settings: Settings = "fast",
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """Synthesise one channel from ``channels`` and measure it against them and the labels.

    Parameters
    ----------
    fp
        Fingerprints (or Posteriors) holding the reference channels, and the
        ground-truth ``labels`` when known.
    channels
        Ids of the reference channels (e.g. a group of
        :func:`ensemblex.cluster`, from :func:`ensemblex.structure.group_channels`).
    n_dims, measure, settings, steps, seed, progress
        As in :func:`ensemblex.synthesize` (``None``: its defaults).

    Returns
    -------
    tuple
        ``(synthesised posteriors, numbers)``. The numbers (JSON-ready) are the
        reference channels; the synthesised channel's information
        (``info_bits``) and the references' mean (``reference_info_bits``);
        the mean NMI of the synthesised channel with its references
        (``nmi_to_references``) and of the references with each other
        (``reference_nmi_to_each_other``), ``None`` where undefined (a channel
        under ``min_info`` bits, or a single reference); the final mean
        similarity; the optimiser settings used; any warning of
        :func:`~ensemblex.synthesize`; and, with labels, the NMI of the
        synthesised channel with each factor (``label_nmi``).

    Examples
    --------
    >>> from ensemblex.testing import planted_ensemble
    >>> post = planted_ensemble(n_models=3, n_latent=4, n_samples=30, seed=0)
    >>> syn, numbers = synthesize_group(post, [0, 4, 8], steps=50, progress=False)
    >>> numbers["reference_channels"], syn.sizes["latent"], sorted(numbers["label_nmi"])
    ([0, 4, 8], 2, ['z0', 'z1', 'z2'])
    """
    from .fingerprints import fingerprint, label_fingerprints, select_channels
    from .pairwise import pairwise
    from .synthesis import synthesize

    kind = require_kind(fp, ("fingerprints", "posteriors"), "synthesize_group()")
    if kind == "posteriors":
        fp = fingerprint(fp)
    ids = list(channels)
    syn = synthesize(
        fp,
        n_dims=n_dims,
        measure=measure,
        channels=ids,
        settings=settings,
        steps=steps,
        seed=seed,
        progress=progress,
    )
    among = pairwise(select_channels(fp, ids)).compute()
    nmi_refs = np.asarray(among["nmi"].values, dtype=float)
    off_diagonal = nmi_refs[~np.eye(len(nmi_refs), dtype=bool)]
    ref_nmi = np.asarray(syn["reference_nmi"].values, dtype=float)
    numbers: dict[str, Any] = {
        "reference_channels": [int(c) for c in np.asarray(ids)],
        "info_bits": float(syn.attrs["synthesized_info"]),
        "reference_info_bits": float(syn.attrs["mean_reference_info"]),
        # None where the synthesised channel carries under min_info bits: its NMI is
        # undefined there
        "nmi_to_references": float(np.mean(ref_nmi)) if np.isfinite(ref_nmi).all() else None,
        # None for a group of one channel: it has no pair
        "reference_nmi_to_each_other": _mean_or_none(off_diagonal),
        "final_similarity": float(syn.attrs["final_similarity"]),
        "steps": int(syn.attrs["steps"]),
        "optimizer": str(syn.attrs["optimizer"]),
        "learning_rate": float(syn.attrs["learning_rate"]),
        "objective": str(syn.attrs.get("measure", syn.attrs.get("objective"))),
    }
    if syn.attrs.get("warning"):
        numbers["warning"] = str(syn.attrs["warning"])
    if "labels" in fp:
        syn_fp = fingerprint(syn, channels="model")  # the whole n_dims space is one channel
        lab = label_fingerprints(fp["labels"])
        to_labels = pairwise(syn_fp, lab).compute()
        factors = [str(f) for f in lab["factor"].values]
        values = np.asarray(to_labels["nmi"].values, dtype=float)[0]
        # NaN (a channel under min_info bits) is written as None
        numbers["label_nmi"] = {
            f: (float(v) if np.isfinite(v) else None) for f, v in zip(factors, values, strict=True)
        }
    return syn, numbers
