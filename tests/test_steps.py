"""synthesize_group: the synthesis step of the demo, measured against float64 references."""

from __future__ import annotations

import numpy as np
import pytest

from ensemblex.steps import synthesize_group
from ensemblex.testing import planted_ensemble, reference_pairwise

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def post():
    pytest.importorskip("tensorflow")
    return planted_ensemble(n_models=4, n_latent=4, n_samples=40, n_factors=2, seed=5)


def test_numbers_match_float64_references(post) -> None:
    # the channels planted with factor 0: one in each model
    group = [int(c) for c in np.flatnonzero(post["planted"].values.reshape(-1) == 0)]
    assert len(group) == 4
    syn, numbers = synthesize_group(post, group, n_dims=1, steps=60, progress=False)
    ref = reference_pairwise(post)
    nmi = ref["nmi"].values[np.ix_(group, group)].astype(float)
    among = nmi[~np.eye(len(group), dtype=bool)]
    assert numbers["reference_channels"] == group
    # pairs with a channel under min_info have no NMI (NaN): the mean is over the rest
    np.testing.assert_allclose(numbers["reference_nmi_to_each_other"], np.nanmean(among), atol=2e-4)
    assert numbers["info_bits"] == pytest.approx(syn.attrs["synthesized_info"])
    assert numbers["nmi_to_references"] == pytest.approx(float(syn["reference_nmi"].mean()))
    assert numbers["steps"] == 60 and syn.sizes["latent"] == 1
    # a 1-D synthesised channel is one latent channel: its NMI with each factor, in float64
    with_labels = syn[["mean", "logvar"]].assign(labels=post["labels"])
    oracle = reference_pairwise(with_labels, labels=True)
    factors = [str(f) for f in post["factor"].values]
    assert list(numbers["label_nmi"]) == factors
    for k, factor in enumerate(factors):
        expected = float(oracle["nmi"].values[0, 1 + k])
        assert numbers["label_nmi"][factor] == pytest.approx(expected, abs=2e-4)


def test_a_single_reference_has_no_pair(post) -> None:
    # 5 steps from a random start: too few to gather information, and said so
    with pytest.warns(UserWarning, match="low-information hazard"):
        _, numbers = synthesize_group(post, [0], steps=5, progress=False)
    assert "low-information hazard" in numbers["warning"]
    assert numbers["reference_nmi_to_each_other"] is None
    assert numbers["reference_channels"] == [0]
