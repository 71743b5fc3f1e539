"""The registry of measures between channels: one entry per measure (pure array math).

Every module that names a measure (the pairwise engine, clustering, figures,
UDR, synthesis, the command line) reads this table, as flox reads its table
of aggregations. A measure is computed from the per-pair information terms
the engine produces, and knows how to turn its values into a similarity in
[0, 1] and a distance for clustering.

Adding a measure is one :class:`Measure` entry in :data:`MEASURES` plus its
estimator (in :mod:`ensemblex.estimators`) and its tests; see CONTRIBUTING.md.

Examples
--------
>>> import numpy as np
>>> from ensemblex.measures import get_measure, measure_names
>>> measure_names("cluster")
('nmi', 'vi')
>>> vi = get_measure("vi", "cluster")
>>> vi.label, vi.similarity_label
('VI', 'exp(-VI)')
>>> vi.distance(np.array([-1e-7, 2.0])).tolist()
[0.0, 2.0]
>>> get_measure("mi", "cluster")
Traceback (most recent call last):
...
ensemblex.errors.InputError: measure must be one of 'nmi', 'vi'; got 'mi'.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._checks import check_option
from ._namespace import get_namespace
from .errors import InputError
from .estimators import nmi, vi

__all__ = [
    "MEASURES",
    "MIN_NMI",
    "PAIRWISE_VARIABLES",
    "ClusterMeasure",
    "Measure",
    "ObjectiveMeasure",
    "Role",
    "get_measure",
    "measure_names",
    "resolve_alias",
]

#: NMI floor of the distance ``-ln(max(NMI, MIN_NMI))`` (the paper's 1e-4)
MIN_NMI = 1e-4

#: what a measure is asked to be: stored by the engine, a clustering/UDR
#: distance, or a synthesis objective
Role = Literal["any", "stored", "cluster", "objective"]

#: the measures that can cluster channels and compare models (UDR)
ClusterMeasure = Literal["nmi", "vi"]
#: the measures a synthesised channel can maximise
ObjectiveMeasure = Literal["vi", "nmi", "info"]


def _joint(info_u: Any, info_v: Any, joint: Any, rep_u: Any, rep_v: Any, *, min_info: float) -> Any:
    return joint


def _nmi(info_u: Any, info_v: Any, joint: Any, rep_u: Any, rep_v: Any, *, min_info: float) -> Any:
    return nmi(info_u, info_v, joint, rep_u, rep_v, min_info=min_info)


def _vi(info_u: Any, info_v: Any, joint: Any, rep_u: Any, rep_v: Any, *, min_info: float) -> Any:
    return vi(joint, rep_u, rep_v)


def _shared(
    info_u: Any, info_v: Any, joint: Any, rep_u: Any, rep_v: Any, *, min_info: float
) -> Any:
    # I(U;V) = I(X;U) + I(X;V) - I(X;U,V): the information two channels share, bits
    return info_u + info_v - joint


def _nmi_similarity(x: Any) -> Any:
    # NMI <= 1 in exact arithmetic; float rounding and NaN-free clipping to [0, 1]
    xp = get_namespace(x)
    return xp.clip(x, 0.0, 1.0)


def _nmi_distance(x: Any) -> Any:
    # the paper's -ln(max(NMI, 1e-4)); clipping at 1 keeps distances >= 0
    xp = get_namespace(x)
    return -xp.log(xp.clip(x, MIN_NMI, 1.0))


def _vi_distance(x: Any) -> Any:
    # VI >= 0 in exact arithmetic; rounding can leave -1e-7 on identical channels
    xp = get_namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


def _vi_similarity(x: Any) -> Any:
    xp = get_namespace(x)
    return xp.exp(-_vi_distance(x))


@dataclass(frozen=True)
class Measure:
    """One measure between two channels.

    Attributes
    ----------
    name
        The variable name in Pairwise datasets and the option value everywhere.
    label
        Short display label (axis labels, tables).
    long_name, units
        Written to the ``attrs`` of the Pairwise variable.
    estimator
        ``estimator(info_u, info_v, joint, repeat_u, repeat_v, *, min_info)``:
        the measure from the information terms of a pair, elementwise, in the
        namespace of its inputs.
    similarity_label
        Display label of :attr:`similarity` (e.g. ``"exp(-VI)"``).
    similarity, distance
        Elementwise transforms of the measure's values into a similarity in
        [0, 1] (1: the same information) and a distance >= 0 (0: the same
        information); ``None`` where the measure is not one.
    stored
        Whether the pairwise engine computes and stores it.
    objective
        Whether a synthesised channel can maximise it.
    """

    name: str
    label: str
    long_name: str
    units: str
    estimator: Callable[..., Any]
    similarity_label: str = ""
    similarity: Callable[[Any], Any] | None = None
    distance: Callable[[Any], Any] | None = None
    stored: bool = True
    objective: bool = False

    @property
    def clusterable(self) -> bool:
        """Whether it can be a clustering distance and a UDR similarity."""
        return self.similarity is not None and self.distance is not None


#: every measure, in the order the engine stores them
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            name="joint_info",
            label="joint information",
            long_name="joint information I(X; U, V)",
            units="bit",
            estimator=_joint,
        ),
        Measure(
            name="nmi",
            label="NMI",
            long_name="normalised mutual information (eq. 3); NaN under min_info",
            units="1",
            estimator=_nmi,
            similarity_label="NMI",
            similarity=_nmi_similarity,
            distance=_nmi_distance,
            objective=True,
        ),
        Measure(
            name="vi",
            label="VI",
            long_name="variation of information 2 J_UV - J_UU - J_VV (eq. 4)",
            units="bit",
            estimator=_vi,
            similarity_label="exp(-VI)",
            similarity=_vi_similarity,
            distance=_vi_distance,
            objective=True,
        ),
        Measure(
            name="info",
            label="shared information",
            long_name="shared information I(U; V) = I_U + I_V - J_UV",
            units="bit",
            estimator=_shared,
            similarity_label="shared information (bits)",
            stored=False,
            objective=True,
        ),
    )
}

#: the variables of a Pairwise dataset that hold a measure, in storage order
PAIRWISE_VARIABLES: tuple[str, ...] = tuple(m.name for m in MEASURES.values() if m.stored)


def measure_names(role: Role = "any") -> tuple[str, ...]:
    """The names of the measures that can play ``role``, in registry order.

    Examples
    --------
    >>> measure_names("objective")
    ('nmi', 'vi', 'info')
    >>> measure_names("stored")
    ('joint_info', 'nmi', 'vi')
    """
    check_option("role", role, ("any", "stored", "cluster", "objective"))
    test: dict[str, Callable[[Measure], bool]] = {
        "any": lambda m: True,
        "stored": lambda m: m.stored,
        "cluster": lambda m: m.clusterable,
        "objective": lambda m: m.objective,
    }
    return tuple(name for name, m in MEASURES.items() if test[role](m))


def get_measure(name: str, role: Role = "any", *, option: str = "measure") -> Measure:
    """The registry entry ``name``, checked to be able to play ``role``.

    ``option`` names the argument in the error message.

    Examples
    --------
    >>> get_measure("nmi").similarity_label
    'NMI'
    """
    check_option(option, name, measure_names(role))
    return MEASURES[name]


def resolve_alias(
    measure: str | None,
    default: str,
    *,
    old_name: str,
    old_value: str | None,
    function: str,
) -> str:
    """The measure chosen through ``measure=`` or its deprecated alias ``old_name=``.

    The alias warns (``FutureWarning``: users see it) and is removed in a
    later release; giving both with different values is an error.

    Examples
    --------
    >>> resolve_alias(None, "nmi", old_name="metric", old_value=None, function="cluster()")
    'nmi'
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     resolve_alias(None, "nmi", old_name="metric", old_value="vi", function="cluster()")
    'vi'
    >>> str(caught[0].message)
    "cluster(metric=...) is deprecated; use measure='vi'."
    """
    if old_value is None:
        return default if measure is None else measure
    warnings.warn(
        f"{function.rstrip('()')}({old_name}=...) is deprecated; use measure={old_value!r}.",
        FutureWarning,
        stacklevel=3,
    )
    if measure is not None and measure != old_value:
        raise InputError(
            f"{function} got measure={measure!r} and the deprecated {old_name}={old_value!r}; "
            "pass measure= only."
        )
    return old_value
