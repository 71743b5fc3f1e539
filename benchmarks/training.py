"""Benchmark: a vectorised VAE ensemble vs one Keras model after another.

The ring-toy weak learner of the paper (2 x 256 tanh MLP encoder and decoder,
1-D latent, MSE, beta 0.03, Adam 1e-3, batch 2048), K members trained for
a few hundred steps two ways, in the same run:

- *sequential*: one ``tf.keras.Sequential`` encoder/decoder pair after
  another with a ``tf.function`` training step and Keras' Adam, fresh random
  ring points every step -- the way the paper's notebook
  (``Rep_space_fusion_SO(2).ipynb``) trains its ensemble;
- *vectorised*: :func:`ensemblex.train_ensemble` with all K members in one graph.

Both timings are end to end (building and tracing the graphs included). The
figure of merit is the per-member throughput ratio (member-steps per second,
vectorised over sequential).

What to expect on a CPU: vectorising removes the per-step, per-model costs
(Python dispatch, small-op launches, optimizer bookkeeping), not floating-point
work. At batch 2048 a member's step is dominated by its 256 x 256 matrix
products (six of 2048 x 256 x 256 per step, forward and backward), which cost
the same batched or not, so the ratio there is modest (about 1.2x measured on
a shared 2-core machine); at smaller batches (``--batch 256``) the fixed
costs dominate and the ratio is about 3x. Prints the figures and writes them as JSON to
``--out`` (a folder; default ``benchmarks/results/``).

Usage::

    python benchmarks/training.py                 # K=10, 300 steps, batch 2048
    python benchmarks/training.py --batch 256     # a smaller batch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _make_step(encoder, decoder, optimizer, beta):
    """The notebook's training step for one encoder/decoder pair."""
    import tensorflow as tf

    variables = encoder.trainable_variables + decoder.trainable_variables
    mse = tf.keras.losses.MeanSquaredError()

    @tf.function
    def train_step(pts):
        with tf.GradientTape() as tape:
            mu, logvar = tf.split(encoder(pts), 2, axis=-1)
            kl = tf.reduce_mean(
                tf.reduce_sum(0.5 * (tf.square(mu) + tf.exp(logvar) - logvar - 1.0), -1)
            )
            z = tf.random.normal(tf.shape(mu), mean=mu, stddev=tf.exp(logvar / 2.0))
            recon = mse(pts, decoder(z))
            loss = recon + beta * kl
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return recon, kl

    return train_step


def sequential(k: int, steps: int, batch: int, beta: float, lr: float, seed: int) -> float:
    """Train k Keras models one after another (the notebook's loop); return seconds."""
    import tensorflow as tf

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    for member in range(k):
        tf.random.set_seed(seed + member)
        encoder = tf.keras.Sequential(
            [tf.keras.Input((2,))]
            + [tf.keras.layers.Dense(256, "tanh") for _ in range(2)]
            + [tf.keras.layers.Dense(2)]
        )
        decoder = tf.keras.Sequential(
            [tf.keras.Input((1,))]
            + [tf.keras.layers.Dense(256, "tanh") for _ in range(2)]
            + [tf.keras.layers.Dense(2)]
        )
        optimizer = tf.keras.optimizers.Adam(lr)

        train_step = _make_step(encoder, decoder, optimizer, beta)
        for _ in range(steps):
            theta = rng.uniform(0, 2 * np.pi, size=batch)
            pts = np.stack([np.cos(theta), np.sin(theta)], -1).astype(np.float32)
            recon, kl = train_step(pts)
            recon.numpy()
            kl.numpy()
    return time.perf_counter() - start


def vectorised(k: int, steps: int, batch: int, beta: float, lr: float, seed: int) -> float:
    """Train k members at once with ensemblex; return seconds."""
    from ensemblex.datasets import load_dataset
    from ensemblex.models import TrainConfig, train_ensemble

    start = time.perf_counter()
    data = load_dataset("ring", n_samples=65_536, spacing="random", seed=seed)
    config = TrainConfig(
        dataset="ring",  # the paper's ring weak learner: MSE loss
        method="beta_vae",
        n_members=k,
        latent_dim=1,
        beta=beta,
        architecture="mlp",
        steps=steps,
        batch_size=batch,
        learning_rate=lr,
        seed=seed,
        hidden=(256, 256),
        activation="tanh",
    )
    train_ensemble(data, config, progress=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--beta", type=float, default=0.03)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    import tensorflow as tf

    k, steps, batch = args.members, args.steps, args.batch
    t_vec = vectorised(k, steps, batch, args.beta, args.lr, args.seed)
    t_seq = sequential(k, steps, batch, args.beta, args.lr, args.seed)
    member_steps = k * steps
    result = {
        "benchmark": "training",
        "config": {
            "members": k,
            "steps": steps,
            "batch": batch,
            "beta": args.beta,
            "learning_rate": args.lr,
            "architecture": "mlp 2x256 tanh, latent 1, mse",
        },
        "sequential_s": t_seq,
        "vectorised_s": t_vec,
        "sequential_member_steps_per_s": member_steps / t_seq,
        "vectorised_member_steps_per_s": member_steps / t_vec,
        "per_member_throughput_ratio": t_seq / t_vec,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"ring toy, K={k} members x {steps} steps, batch {batch}")
    print(
        f"  sequential (Keras, one after another): {t_seq:8.1f} s  "
        f"{member_steps / t_seq:8.1f} member-steps/s"
    )
    print(
        f"  vectorised (ensemblex, one graph):     {t_vec:8.1f} s  "
        f"{member_steps / t_vec:8.1f} member-steps/s"
    )
    print(f"  per-member throughput ratio: {t_seq / t_vec:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"training_k{k}_b{batch}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"  wrote {path}")
    return result


if __name__ == "__main__":
    main()
