"""The output distribution of Graves (2013), eqs. 17-25, with TensorFlow Probability.

The mixture-density head emits, per step, `1 + 6M` numbers:

    [pen_logit | pi_logits (M) | mu (2M) | log_sigma (2M) | rho_hat (M)]

Mathematical details
--------------------
For mixture weights `pi_j = softmax((1 + b) * pi_hat)_j`, means `mu_j`,
standard deviations `sigma_j = exp(sigma_hat_j - b) + SIGMA_MIN` and
correlations `rho_j = RHO_MAX * tanh(rho_hat_j)`, the next offset `x = (dx, dy,
pen_up)` has likelihood

    p(x) = sum_j pi_j N(dx, dy | mu_j, sigma_j, rho_j) * Bernoulli(pen_up | e),

with `e = sigmoid(pen_logit)`. `b >= 0` is Graves's sampling bias (section
5.4): `b = 0` leaves the distribution unchanged, and as `b` grows the weights
concentrate on the largest component and the sigmas shrink, so samples
collapse towards the modes. Each bivariate normal is a
`MultivariateNormalTriL` with the Cholesky factor

    L = [[sigma_1, 0], [rho sigma_2, sigma_2 sqrt(1 - rho^2)]],

so that `L L^T` is the covariance of eq. 24. `SIGMA_MIN` and `RHO_MAX` keep the
density finite (and its gradients free of NaN) at degenerate parameters.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

SIGMA_MIN = 1e-3
RHO_MAX = 1.0 - 1e-4


def head_size(mixtures: int) -> int:
    """Outputs of the mixture-density head for `mixtures` components."""
    return 1 + 6 * mixtures


class MixtureParams(NamedTuple):
    """Constrained parameters; leading dims `[...]` are batch and time."""

    pen_logit: tf.Tensor  # [...]
    pi_logits: tf.Tensor  # [..., M]
    mu: tf.Tensor  # [..., M, 2]
    sigma: tf.Tensor  # [..., M, 2]
    rho: tf.Tensor  # [..., M]


def split_head(head: tf.Tensor, bias: tf.Tensor | float = 0.0) -> MixtureParams:
    """Raw head outputs `[..., 1 + 6M]` to constrained parameters, with bias `b`."""
    head = tf.cast(head, tf.float32)
    m = (head.shape[-1] - 1) // 6
    if head.shape[-1] != head_size(m):
        raise ValueError(f"head has {head.shape[-1]} outputs; expected 1 + 6M")
    bias = tf.cast(bias, tf.float32)
    pen_logit, pi_hat, mu, sigma_hat, rho_hat = tf.split(head, [1, m, 2 * m, 2 * m, m], -1)
    new_shape = tf.concat([tf.shape(mu)[:-1], [m, 2]], 0)
    mu = tf.reshape(mu, new_shape)
    sigma = tf.exp(tf.reshape(sigma_hat, new_shape) - bias) + SIGMA_MIN
    return MixtureParams(
        pen_logit=pen_logit[..., 0],
        pi_logits=pi_hat * (1.0 + bias),
        mu=mu,
        sigma=sigma,
        rho=RHO_MAX * tf.tanh(rho_hat),
    )


def offset_distribution(params: MixtureParams) -> tfd.Distribution:
    """`MixtureSameFamily(Categorical, MultivariateNormalTriL)` over `(dx, dy)`."""
    s1, s2 = params.sigma[..., 0], params.sigma[..., 1]
    rho = params.rho
    zeros = tf.zeros_like(s1)
    scale_tril = tf.stack(
        [
            tf.stack([s1, zeros], -1),
            tf.stack([rho * s2, s2 * tf.sqrt(1.0 - tf.square(rho))], -1),
        ],
        -2,
    )  # [..., M, 2, 2]
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=params.pi_logits),
        components_distribution=tfd.MultivariateNormalTriL(
            loc=params.mu, scale_tril=scale_tril
        ),
    )


def pen_distribution(params: MixtureParams) -> tfd.Distribution:
    """`Bernoulli` over pen-up."""
    return tfd.Bernoulli(logits=params.pen_logit, dtype=tf.float32)


def log_prob(params: MixtureParams, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Log-likelihood of `targets [..., 3]`, split into offset and pen-up parts.

    Returns:
      `(offset_log_prob, pen_log_prob)`, each `[...]`, in nats; the joint
      log-likelihood is their sum.
    """
    targets = tf.cast(targets, tf.float32)
    offset = offset_distribution(params).log_prob(targets[..., :2])
    pen = pen_distribution(params).log_prob(targets[..., 2])
    return offset, pen


def sample(params: MixtureParams, seed: tf.Tensor) -> tf.Tensor:
    """One sample `[..., 3]` of `(dx, dy, pen_up)`; `seed` is a stateless `[2]` int seed."""
    seed = tf.cast(seed, tf.int32)  # TFP's seed dtype
    seed_offset, seed_pen = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    offset = offset_distribution(params).sample(seed=seed_offset)
    pen = pen_distribution(params).sample(seed=seed_pen)
    return tf.concat([offset, pen[..., None]], -1)



def sample_rows(params: MixtureParams, seed: tf.Tensor) -> tf.Tensor:
    """One sample `[B, 3]` of `(dx, dy, pen_up)` per row of `[B, ...]`
    parameters, drawn so that row b depends only on `seed` and b: the same
    line draws the same ink whatever else is in the batch.

    The draw is the one `offset_distribution` and `pen_distribution` define
    (TFP's `MixtureSameFamily` stays the definition; a test compares the two
    statistically), written out for speed and for that property: stateless
    uniforms and normals of shape `[B, k]` are counter-based, so row b's
    values are the same for any B. A component is chosen by inverting the
    mixture weights' CDF, the offset is `mu + L z` with the Cholesky factor `L`
    of `offset_distribution`, and the pen lifts when a uniform falls below
    its probability.

    Args:
      params: `MixtureParams` with one batch dimension.
      seed: stateless `[2]` int seed.
    """
    return draw_rows(params, *row_noise(tf.shape(params.pen_logit)[0], seed))


def row_noise(batch, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The random numbers of `sample_rows`: uniforms `u [B, 2]` in [0, 1) and
    standard normals `z [B, 2]`, row b's depending only on `seed` and b.

    They are made from Philox's raw 32-bit words (`[B, 4]`), which
    TensorFlow's CPU kernels and XLA produce bit for bit alike, where their
    float uniforms and normals differ: the top 24 bits of a word give a
    uniform, and a Box-Muller transform of two uniforms gives two normals. So
    a seed draws the same numbers inside the sampler's XLA-compiled loop and
    outside it (up to the last bit of `log` and `cos`)."""
    seed = tf.cast(seed, tf.int64)
    words = tf.random.stateless_uniform(
        [batch, 4], seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    uniform = tf.cast(tf.bitwise.right_shift(words, tf.constant(8, tf.uint32)), tf.float32) * (1.0 / (1 << 24))
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform[:, 2]))  # 1 - u lies in (0, 1]
    angle = (2.0 * math.pi) * uniform[:, 3]
    return uniform[:, :2], tf.stack([radius * tf.cos(angle), radius * tf.sin(angle)], -1)


def draw_rows(params: MixtureParams, u: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """`sample_rows` given its random numbers (`row_noise`): no random op, so
    it can be compiled with the step that computes `params`."""
    m = tf.shape(params.pi_logits)[-1]
    cdf = tf.cumsum(tf.nn.softmax(params.pi_logits), axis=-1)  # [B, M]
    component = tf.reduce_sum(tf.cast(cdf < u[:, :1] * cdf[:, -1:], tf.int32), -1)
    component = tf.minimum(component, m - 1)
    mu = tf.gather(params.mu, component, batch_dims=1)  # [B, 2]
    sigma = tf.gather(params.sigma, component, batch_dims=1)
    rho = tf.gather(params.rho, component, batch_dims=1)
    dx = mu[:, 0] + sigma[:, 0] * z[:, 0]
    dy = mu[:, 1] + sigma[:, 1] * (rho * z[:, 0] + tf.sqrt(1.0 - tf.square(rho)) * z[:, 1])
    pen = tf.cast(u[:, 1] < tf.sigmoid(params.pen_logit), tf.float32)
    return tf.stack([dx, dy, pen], -1)
