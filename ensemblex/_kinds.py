"""What kind of ensemblex dataset an ``xr.Dataset`` is, and the attrs we stamp.

Every dataset ensemblex writes carries ``attrs["ensemblex_kind"]`` and
``attrs["ensemblex_version"]``. Datasets written by plain xarray (for
example posteriors of models trained elsewhere) are recognised by their
variables, so they plug in without the attrs.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from ._version import __version__
from .errors import InputTypeError
from .measures import PAIRWISE_VARIABLES

__all__ = ["KINDS", "Kind", "dataset_kind", "require_kind", "stamp"]

Kind = Literal["posteriors", "fingerprints", "pairwise", "clusters"]
KINDS: tuple[str, ...] = get_args(Kind)

_DESCRIPTIONS = {
    "posteriors": "Posteriors: mean and logvar (model, latent, sample)",
    "fingerprints": "Fingerprints: Bhattacharyya matrices bc (channel, sample_i, sample_j)",
    "pairwise": f"Pairwise: {', '.join(PAIRWISE_VARIABLES)} (channel_a, channel_b)",
    "clusters": "Clusters: OPTICS hotspots of channels",
}

# what to do to get from one kind to the one a method needs
_HOW = {
    ("posteriors", "fingerprints"): "Call .repinfo.fingerprint() first.",
    ("posteriors", "pairwise"): "Call .repinfo.fingerprint().repinfo.pairwise() first.",
    ("fingerprints", "pairwise"): "Call .repinfo.pairwise() first.",
    ("fingerprints", "clusters"): "Call .repinfo.cluster() first.",
    ("pairwise", "clusters"): "Call .repinfo.cluster() first.",
}


def dataset_kind(ds: Any) -> Kind | None:
    """Return the kind of ``ds``, from its attrs or else from its variables.

    Examples
    --------
    >>> import xarray as xr
    >>> dataset_kind(xr.Dataset({"mean": ("sample", [0.0]), "logvar": ("sample", [0.0])}))
    'posteriors'
    >>> dataset_kind(xr.Dataset()) is None
    True
    """
    kind = getattr(ds, "attrs", {}).get("ensemblex_kind")
    if kind in KINDS:
        return kind
    names = set(getattr(ds, "data_vars", ()))
    if "group" in names and "reachability" in names:
        return "clusters"
    if len(names & set(PAIRWISE_VARIABLES)) >= 2:  # the measures between channels
        return "pairwise"
    if "bc" in names:
        return "fingerprints"
    if "mean" in names and "logvar" in names:
        return "posteriors"
    return None


def require_kind(ds: Any, allowed: tuple[Kind, ...], method: str) -> Kind:
    """Return the kind of ``ds`` if it is one of ``allowed``; else a clear ``TypeError``.

    ``method`` names the caller in the message, e.g. ``"repinfo.cluster()"``.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"mean": ("sample", [0.0]), "logvar": ("sample", [0.0])})
    >>> require_kind(ds, ("fingerprints",), "repinfo.pairwise()")
    Traceback (most recent call last):
    ...
    ensemblex.errors.InputTypeError: repinfo.pairwise() needs a Fingerprints dataset; got a Posteriors dataset (variables: logvar, mean). Call .repinfo.fingerprint() first.
    """
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise InputTypeError(f"{method} needs an xarray.Dataset; got {type(ds).__name__}.")
    kind = dataset_kind(ds)
    if kind in allowed:
        return kind  # type: ignore[return-value]
    wanted = " or ".join(k.capitalize() for k in allowed)
    got = f"a {kind.capitalize()} dataset" if kind else "a dataset ensemblex does not recognise"
    variables = ", ".join(sorted(map(str, ds.data_vars))) or "none"
    msg = f"{method} needs a {wanted} dataset; got {got} (variables: {variables})."
    hints = [_HOW[(kind, a)] for a in allowed if kind is not None and (kind, a) in _HOW]
    if hints:
        msg += " " + hints[0]
    raise InputTypeError(msg)


def stamp(ds: Any, kind: Kind, **extra: Any) -> Any:
    """Return ``ds`` with the ensemblex attrs set (a shallow copy; ``ds`` is unchanged).

    >>> import xarray as xr
    >>> stamp(xr.Dataset(), "pairwise").attrs["ensemblex_kind"]
    'pairwise'
    """
    out = ds.copy(deep=False)
    out.attrs = {
        **ds.attrs,
        "ensemblex_kind": kind,
        "ensemblex_version": __version__,
        "title": _DESCRIPTIONS[kind],
        **extra,
    }
    return out
