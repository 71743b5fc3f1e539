"""VAE ensembles: losses against NumPy references, vectorised = one by one, I/O, import."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

from ensemblex import plot_traversals
from ensemblex.datasets import load_dataset

tf = pytest.importorskip("tensorflow")

from ensemblex.estimators import bhattacharyya, information  # noqa: E402
from ensemblex.models import (  # noqa: E402
    METHODS,
    Ensemble,
    TrainConfig,
    load_ensemble,
    posteriors_from_savedmodels,
    train_ensemble,
    train_posteriors,
)
from ensemblex.models.losses import (  # noqa: E402
    discriminator_loss,
    method_loss,
    shuffle_codes,
)

pytestmark = pytest.mark.train

# -- NumPy references of every loss (float64, written from the papers' formulas) -------


def _np_logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _np_kl(mean, logvar):
    return (0.5 * (mean**2 + np.exp(logvar) - logvar - 1).sum(-1)).mean(-1)


def _np_recon(x, out, kind):
    axes = tuple(range(2, x.ndim))
    if kind == "bernoulli":
        p = 1 / (1 + np.exp(-out))
        ce = -(x * np.log(p) + (1 - x) * np.log(1 - p))
        return ce.sum(axis=axes).mean(-1)
    return ((x - out) ** 2).mean(axis=axes).mean(-1)


def _np_tc(z, mean, logvar):
    k, b, _ = z.shape
    out = np.zeros(k)
    for m in range(k):
        lp = np.zeros((b, b, z.shape[2]))
        for j in range(b):
            for i in range(b):
                var = np.exp(logvar[m, i])
                lp[j, i] = -0.5 * (
                    (z[m, j] - mean[m, i]) ** 2 / var + logvar[m, i] + np.log(2 * np.pi)
                )
        joint = _np_logsumexp(lp.sum(-1), axis=1)
        product = _np_logsumexp(lp, axis=1).sum(-1)
        out[m] = (joint - product).mean()
    return out


def _np_dip(mean, logvar, lam_od, lam_d, kind):
    out = []
    for m in range(mean.shape[0]):
        cov = np.cov(mean[m].T, bias=True).reshape(mean.shape[2], mean.shape[2])
        if kind == "ii":
            cov = cov + np.diag(np.exp(logvar[m]).mean(0))
        off = cov - np.diag(np.diag(cov))
        out.append(lam_od[m] * (off**2).sum() + lam_d[m] * ((np.diag(cov) - 1) ** 2).sum())
    return np.array(out)


@pytest.fixture
def tiny_batch():
    rng = np.random.default_rng(7)
    k, b, latent = 2, 4, 3
    x = rng.uniform(0, 1, size=(k, b, 2, 3))
    out = rng.normal(size=(k, b, 2, 3))
    mean = rng.normal(size=(k, b, latent))
    logvar = rng.normal(scale=0.5, size=(k, b, latent))
    z = mean + np.exp(logvar / 2) * rng.normal(size=(k, b, latent))
    logits = rng.normal(size=(k, b, 2))
    beta = np.array([0.5, 4.0])
    return x, out, mean, logvar, z, logits, beta


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["bernoulli", "mse"])
def test_method_losses_match_numpy(tiny_batch, method, kind):
    x, out, mean, logvar, z, logits, beta = tiny_batch
    options = {"c_max": 10.0, "iteration_threshold": 100, "lambda_d_factor": 3.0}
    step = 30
    parts = method_loss(
        method,
        x.astype(np.float32),
        out.astype(np.float32),
        mean.astype(np.float32),
        logvar.astype(np.float32),
        z.astype(np.float32),
        beta.astype(np.float32),
        loss=kind,
        step=step,
        options=options,
        disc_logits=logits.astype(np.float32),
    )
    recon = _np_recon(x, out, kind)
    kl = _np_kl(mean, logvar)
    if method == "beta_vae":
        reg = beta * kl
    elif method == "annealed_vae":
        reg = beta * np.abs(kl - 10.0 * 30 / 100)  # capacity C = c_max * step / threshold
    elif method == "beta_tcvae":
        reg = kl + (beta - 1) * _np_tc(z, mean, logvar)
    elif method == "dip_vae_i":
        reg = kl + _np_dip(mean, logvar, beta, 3.0 * beta, "i")
    elif method == "dip_vae_ii":
        reg = kl + _np_dip(mean, logvar, beta, 3.0 * beta, "ii")
    else:
        reg = kl + beta * (logits[..., 0] - logits[..., 1]).mean(-1)
    np.testing.assert_allclose(parts["recon"].numpy(), recon, rtol=1e-5)
    np.testing.assert_allclose(parts["kl"].numpy(), kl, rtol=1e-5)
    np.testing.assert_allclose(parts["total"].numpy(), recon + reg, rtol=1e-5, atol=1e-5)


def test_losses_hand_computed():
    # one member, batch of 2, one latent, 1 feature: every term by hand
    x = np.array([[[1.0], [0.0]]], np.float32)
    out = np.zeros((1, 2, 1), np.float32)  # logit 0: p = 1/2 -> log 2 per pixel
    mean = np.array([[[1.0], [-1.0]]], np.float32)
    logvar = np.zeros((1, 2, 1), np.float32)
    parts = method_loss("beta_vae", x, out, mean, logvar, mean, np.float32([2.0]), loss="bernoulli")
    # recon = log 2; KL = 0.5 * (1 + 1 - 0 - 1) = 0.5 per sample
    assert math.isclose(float(parts["total"][0]), math.log(2) + 2.0 * 0.5, rel_tol=1e-6)
    # annealed at step >= threshold: gamma * |KL - c_max|
    parts = method_loss(
        "annealed_vae",
        x,
        out,
        mean,
        logvar,
        mean,
        np.float32([10.0]),
        loss="mse",
        step=50,
        options={"c_max": 2.0, "iteration_threshold": 20},
    )
    assert math.isclose(float(parts["total"][0]), 0.5 + 10.0 * 1.5, rel_tol=1e-6)
    # dip_vae_i: cov(mean) = 1 (variance of +-1): no penalty, so only recon + KL
    parts = method_loss(
        "dip_vae_i",
        x,
        out,
        mean,
        logvar,
        mean,
        np.float32([5.0]),
        loss="mse",
        options={"lambda_d_factor": 10.0},
    )
    assert math.isclose(float(parts["total"][0]), 0.5 + 0.5, rel_tol=1e-6)
    # discriminator: equal logits -> -(0.5 log 1/2 + 0.5 log 1/2) = log 2
    zeros = np.zeros((1, 3, 2), np.float32)
    assert math.isclose(float(discriminator_loss(zeros, zeros)[0]), math.log(2), rel_tol=1e-6)


def test_shuffle_codes_permutes_each_latent():
    z = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    rng = np.random.default_rng(0)
    perm = np.stack([np.stack([rng.permutation(4) for _ in range(3)], 1) for _ in range(2)])
    out = shuffle_codes(z, perm.astype(np.int32)).numpy()
    for k in range(2):
        for b in range(4):
            for lat in range(3):
                assert out[k, b, lat] == z[k, perm[k, b, lat], lat]


# -- training --------------------------------------------------------------------------

_TINY = {"latent_dim": 2, "steps": 3, "batch_size": 8, "learning_rate": 1e-2, "progress": False}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_samples=64, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_vectorised_matches_one_by_one(digits, method):
    opts = {
        "factor_vae": {"discriminator_units": [8, 8]},
        "annealed_vae": {"iteration_threshold": 2},
    }.get(method)
    beta = [1.0, 3.0]
    both = train_ensemble(
        digits, method=method, n_members=2, beta=beta, seed=10, hidden=[16], options=opts, **_TINY
    )
    alone = train_ensemble(
        digits,
        method=method,
        n_members=1,
        beta=beta[1],
        seed=11,
        hidden=[16],
        options=opts,
        **_TINY,
    )
    assert both.history.shape == (3, 2)
    np.testing.assert_allclose(both.history[:, 1], alone.history[:, 0], rtol=2e-5, atol=1e-5)
    for name, w in alone.weights.items():
        np.testing.assert_allclose(both.weights[name][1], w[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(both.history[:, 0], both.history[:, 1])


def test_conv_vectorised_matches_one_by_one(digits):
    both = train_ensemble(digits, n_members=3, architecture="conv", seed=0, **_TINY)
    alone = train_ensemble(digits, n_members=1, architecture="conv", seed=2, **_TINY)
    np.testing.assert_allclose(both.history[:, 2], alone.history[:, 0], rtol=2e-5, atol=1e-5)
    decoded = both.decode(np.zeros((5, 2)))
    assert decoded.shape == (3, 5, 8, 8) and decoded.min() >= 0 and decoded.max() <= 1


def test_ring_ensemble_is_informative():
    train = load_dataset("ring", n_samples=2048, spacing="random", seed=1)
    fp = load_dataset("ring", n_samples=200)
    ens = train_ensemble(
        train,
        n_members=4,
        latent_dim=1,
        beta=0.03,
        steps=300,
        batch_size=256,
        learning_rate=1e-3,
        loss="mse",
        progress=False,
        hidden=[64, 64],
    )
    post = ens.posteriors(fp)
    assert dict(post.sizes) == {"model": 4, "latent": 1, "sample": 200, "factor": 1}
    assert post.attrs["ensemblex_kind"] == "posteriors"
    assert post["method"].values.tolist() == ["beta_vae"] * 4
    assert post["seed"].values.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(post["beta"].values, 0.03)
    np.testing.assert_array_equal(post["labels"].values, fp["labels"].values)
    bc = bhattacharyya(post["mean"].values[:, 0], post["logvar"].values[:, 0])
    info = information(bc)
    assert (info > 1.0).all(), info
    means = post["mean"].values[:, 0]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(means[i], means[j], atol=1e-2)


def test_nan_member_is_reported_and_dropped():
    # data far from the origin give a large KL; times beta = 3e38 it overflows float32
    ring = load_dataset("ring", n_samples=256, spacing="random")
    ring["x"] = ring["x"] * 1000.0
    with pytest.warns(RuntimeWarning, match="member 1 .*non-finite"):
        ens = train_ensemble(
            ring,
            n_members=3,
            beta=[0.03, 3e38, 0.03],
            latent_dim=4,
            loss="mse",
            hidden=[8],
            steps=4,
            batch_size=32,
            learning_rate=1e-3,
            progress=False,
        )
    assert ens.members == [0, 2] and len(ens) == 2
    assert ens.seeds == [0, 2]
    post = ens.posteriors(ring)
    assert post["member"].values.tolist() == [0, 2]
    assert np.isfinite(post["mean"].values).all()


def test_checkpoint_resume_matches_uninterrupted(tmp_path, digits):
    kw = dict(n_members=2, seed=3, hidden=[16], **{**_TINY, "steps": 6})
    full = train_ensemble(digits, **kw)
    first = train_ensemble(
        digits, **{**kw, "steps": 3}, checkpoint_dir=tmp_path / "ck", checkpoint_every=2
    )
    assert first.history.shape == (3, 2)
    resumed = train_ensemble(digits, **kw, checkpoint_dir=tmp_path / "ck")
    assert resumed.history.shape == (3, 2)  # steps 3, 4, 5 only
    np.testing.assert_allclose(resumed.history, full.history[3:], rtol=1e-5, atol=1e-6)
    for name, w in full.weights.items():
        np.testing.assert_allclose(resumed.weights[name], w, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim differ"):
        train_ensemble(digits, **{**kw, "latent_dim": 3}, checkpoint_dir=tmp_path / "ck")


def test_save_load_posteriors_and_traversals(tmp_path, digits):
    ens = train_ensemble(digits, n_members=2, architecture="conv", beta=[1.0, 2.0], **_TINY)
    ens.save(tmp_path / "ens")
    again = load_ensemble(tmp_path / "ens")
    assert again.config == ens.config and again.members == ens.members
    a, b = ens.posteriors(digits), again.posteriors(digits)
    np.testing.assert_array_equal(a["mean"].values, b["mean"].values)
    assert a["beta"].values.tolist() == [1.0, 2.0]
    assert a["factor"].values.tolist() == ["digit"]
    trav = ens.traverse(1, 0, np.linspace(-2, 2, 5))
    assert trav.shape == (5, 8, 8)
    fig = plot_traversals(ens, model=1, values=np.linspace(-2, 2, 4), path=tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert len(fig.axes) == 2 * 4
    assert not list(tmp_path.rglob("*.pkl"))


def test_trains_on_the_lazy_full_dsprites_set(no_compute):
    # the full 737,280-image set is Dask-backed; batches are rendered row by row
    ds = load_dataset("dsprites")
    ens = train_ensemble(
        ds, n_members=2, latent_dim=2, hidden=[8], steps=2, batch_size=4, progress=False
    )
    assert np.isfinite(ens.history).all()
    post = ens.posteriors(ds.isel(sample=slice(1000, 1010)))
    assert post["sample"].values.tolist() == list(range(1000, 1010))


def test_traversal_plot_for_vector_data(tmp_path):
    ring = load_dataset("ring", n_samples=64)
    ens = train_ensemble(
        ring,
        n_members=1,
        latent_dim=1,
        loss="mse",
        hidden=[8],
        steps=2,
        batch_size=16,
        progress=False,
    )
    plot_traversals(ens, path=tmp_path / "ring.png")
    assert (tmp_path / "ring.png").stat().st_size > 1000


def test_savedmodel_round_trip(tmp_path):
    w = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)

    class Encoder(tf.Module):
        def __init__(self):
            self.w = tf.Variable(w)

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
        def encode(self, images):
            h = tf.reshape(images, [-1, 64]) @ self.w
            return {"mean": h[:, :2], "logvar": tf.tanh(h[:, 2:])}

    enc = Encoder()
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"m{i}")
        tf.saved_model.save(enc, str(paths[-1]), signatures={"gaussian_encoder": enc.encode})
    digits = load_dataset("digits", n_samples=20)
    post = posteriors_from_savedmodels(paths, digits, batch_size=7, coords={"beta": [1, 4]})
    h = digits.images.values.reshape(20, 64) @ w
    assert dict(post.sizes) == {"model": 2, "latent": 2, "sample": 20, "factor": 1}
    np.testing.assert_allclose(post["mean"].values[1], h[:, :2].T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(post["logvar"].values[0], np.tanh(h[:, 2:]).T, rtol=1e-5, atol=1e-5)
    assert post["path"].values.tolist() == [str(p) for p in paths]
    assert post["beta"].values.tolist() == [1, 4]
    with pytest.raises(ValueError, match="no signature 'decoder'"):
        posteriors_from_savedmodels(paths[:1], digits, signature="decoder")


def test_bad_inputs(digits):
    with pytest.raises(ValueError, match="divisible by 4"):
        train_ensemble(load_dataset("digits", n_samples=10, pad=1), architecture="conv", **_TINY)
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        train_ensemble(np.full((10, 3), 2.0), **_TINY)
    with pytest.raises(ValueError, match="unknown option"):
        train_ensemble(digits, options={"c_max": 3}, **_TINY)
    with pytest.raises(ValueError, match="method must be one of"):
        train_ensemble(digits, method="vae", **_TINY)
    with pytest.raises(ValueError, match="one per member"):
        train_ensemble(digits, n_members=3, beta=[1.0, 2.0], **_TINY)


def test_missing_tensorflow_message(monkeypatch):
    from ensemblex.models._tf import require_tf

    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=r"pip install 'ensemblex\[train\]'"):
        require_tf()


def test_ensemble_repr_and_decode_checks(digits):
    ens = train_ensemble(digits, n_members=2, hidden=[8], **_TINY)
    assert "beta_vae x2" in repr(ens)
    with pytest.raises(ValueError, match="z must be"):
        ens.decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="model must be"):
        ens.traverse(5, 0, [0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Ensemble(ens.config, ens.weights).decode(np.zeros((1, 2))).shape == (2, 1, 8, 8)


def test_information_benchmark_on_trained_ring_channels(tmp_path):
    """benchmarks/information.py --source trained: real beta-VAE channels vs Monte Carlo."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "information.py"
    spec = importlib.util.spec_from_file_location("_bench_information_trained", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--quick", "--source", "trained", "--channels", "3", "--n-ref", "200"]
    args += ["--sizes", "100", "--train-steps", "30", "--out", str(tmp_path)]
    assert module.main(args) == 0
    result = json.loads((tmp_path / "information_trained.json").read_text())
    assert result["config"]["source"] == "trained"
    assert len(result["channels"]) == 3
    for row in result["channels"]:
        assert row["dims"] == 1 and row["label"].startswith("ring beta-VAE")
        assert row["poole_lower"] <= row["poole_upper"] + 1e-9
        # the fingerprint estimate is a lower bound (within the Monte Carlo noise)
        assert row["estimates"]["100"]["bc"] <= row["poole_upper"] + 0.05
    assert (tmp_path / "information_trained.png").stat().st_size > 0


# -- the settings object ---------------------------------------------------------------


def test_train_config_checks_and_derived_settings():
    cfg = TrainConfig(n_members=3, beta=[1.0, 2.0, 4.0], seed=5, hidden=[8, 4])
    assert cfg.beta == (1.0, 2.0, 4.0) and cfg.hidden == (8, 4)
    assert cfg.member_seeds() == [5, 6, 7]
    assert TrainConfig(n_members=2, seed=[9, 3]).member_seeds() == [9, 3]
    assert TrainConfig().resolved_loss == "bernoulli"
    assert TrainConfig(dataset="ring").resolved_loss == "mse"
    sweep = TrainConfig(n_members=2, seed=1).sweep([0.5, 8.0])
    assert sweep.n_members == 4 and sweep.member_betas() == [0.5, 0.5, 8.0, 8.0]
    assert sweep.member_seeds() == [1, 2, 3, 4]
    with pytest.raises(AttributeError, match="cannot assign"):
        cfg.steps = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="one per member"):
        TrainConfig(n_members=3, beta=[1.0, 2.0])
    with pytest.raises(ValueError, match="beta must be finite"):
        TrainConfig(beta=float("nan"))
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TrainConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="unknown option"):
        TrainConfig(options={"c_max": 1.0})
    with pytest.raises(ValueError, match="dataset must be one of"):
        TrainConfig(dataset="cifar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give at least one beta"):
        cfg.sweep([])


def test_config_and_keywords_train_the_same(digits):
    kw = dict(n_members=2, seed=4, hidden=[16], latent_dim=2, steps=3, batch_size=8)
    by_keywords = train_ensemble(digits, learning_rate=1e-2, progress=False, **kw)
    cfg = TrainConfig(learning_rate=1e-2, **kw)
    by_config = train_ensemble(digits, cfg, progress=False)
    assert by_config.config == by_keywords.config
    np.testing.assert_array_equal(by_config.history, by_keywords.history)
    # keywords override the config's fields
    again = train_ensemble(digits, cfg, steps=2, progress=False)
    assert again.config["steps"] == 2 and again.history.shape == (2, 2)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train_ensemble(digits, {"steps": 2}, progress=False)  # type: ignore[arg-type]


def test_train_posteriors_sweep_matches_train_ensemble():
    cfg = TrainConfig(
        dataset="ring",
        n_members=2,
        latent_dim=1,
        steps=4,
        batch_size=16,
        hidden=(8,),
        learning_rate=1e-3,
        n_train=128,
        n_fingerprint=24,
        seed=3,
    )
    said: list[str] = []
    post = train_posteriors(cfg.sweep([0.1, 2.0]), progress=False, log=said.append)
    assert dict(post.sizes) == {"model": 4, "latent": 1, "sample": 24, "factor": 1}
    assert post["beta"].values.tolist() == [0.1, 0.1, 2.0, 2.0]
    assert post["seed"].values.tolist() == [3, 4, 5, 6]
    assert post.attrs["dataset"] == "ring" and "beta 0.1, 2" in said[0]
    # the same as training by hand on the same draws
    train = load_dataset("ring", n_samples=128, seed=3, spacing="random")
    sample = load_dataset("ring", n_samples=24, seed=4, spacing="even")
    ens = train_ensemble(train, cfg.sweep([0.1, 2.0]), progress=False)
    np.testing.assert_allclose(post["mean"].values, ens.posteriors(sample)["mean"].values)


# -- the one optimiser -----------------------------------------------------------------


def _numpy_adam(p, grad, steps, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Kingma & Ba, Algorithm 1 (efficient form, epsilon-hat as Keras), float64."""
    p = np.array(p, dtype=float)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = grad(p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return p


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_matches_numpy_reference(dtype):
    from ensemblex.models.optim import make_optimizer

    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4))
    target = rng.normal(size=(3, 4))
    start = rng.normal(size=(3, 4))

    def grad(p):  # gradient of sum(a^2 (p - target)^2 / 2) + sin(p)
        return a * a * (p - target) + np.cos(p)

    x = tf.Variable(start.astype(dtype))
    opt = make_optimizer("adam", [x], learning_rate=0.03)
    for t in range(1, 41):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(0.5 * a * a * (x - target) ** 2 + tf.sin(x))
        opt.apply(tape.gradient(loss, [x]), t)
    want = _numpy_adam(start, grad, 40, 0.03)
    tol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(x.numpy(), want, rtol=tol, atol=tol)
    # and Keras' own Adam agrees (same epsilon placement; Keras keeps its step size in
    # float32, hence the looser tolerance)
    y = tf.Variable(start)
    keras = tf.keras.optimizers.Adam(learning_rate=0.03, epsilon=1e-7)
    for _ in range(40):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(0.5 * a * a * (y - target) ** 2 + tf.sin(y))
        keras.apply_gradients([(tape.gradient(loss, y), y)])
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-6)


def test_adam_mask_freezes_members_and_sgd_is_plain_descent():
    from ensemblex.models.optim import Adam, make_optimizer

    x = tf.Variable(np.ones((3, 2)))
    opt = Adam({"w": x}, learning_rate=0.1)
    grads = [tf.constant(np.full((3, 2), 2.0))]
    for t in (1, 2):
        opt.apply(grads, t, mask=tf.constant([True, False, True]))
    np.testing.assert_allclose(x.numpy()[1], 1.0)  # the frozen member did not move
    want = _numpy_adam(np.ones(2), lambda p: np.full(2, 2.0), 2, 0.1)
    np.testing.assert_allclose(x.numpy()[[0, 2]], [want, want], rtol=1e-12)
    assert set(opt.m) == {"w"} and float(opt.m["w"][1, 0]) == 0.0
    y = tf.Variable([1.0, 2.0], dtype=tf.float64)
    make_optimizer("sgd", [y], learning_rate=0.5).apply([tf.constant([2.0, -2.0], tf.float64)])
    np.testing.assert_allclose(y.numpy(), [0.0, 3.0])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("lbfgs", [y], learning_rate=1.0)  # type: ignore[arg-type]
