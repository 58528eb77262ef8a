import numpy as np
import pytest
import tensorflow as tf

from hwtf import distributions


def _reference_log_prob(pi_logits, mu, sigma, rho, pen_logit, x):
    """Graves (2013) eqs. 23-26 in NumPy, float64."""
    pi = np.exp(pi_logits - pi_logits.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    dx = (x[..., None, 0] - mu[..., 0]) / sigma[..., 0]
    dy = (x[..., None, 1] - mu[..., 1]) / sigma[..., 1]
    z = dx**2 + dy**2 - 2 * rho * dx * dy
    density = np.exp(-z / (2 * (1 - rho**2))) / (
        2 * np.pi * sigma[..., 0] * sigma[..., 1] * np.sqrt(1 - rho**2)
    )
    e = 1 / (1 + np.exp(-pen_logit))
    pen = np.where(x[..., 2] > 0.5, e, 1 - e)
    return np.log((pi * density).sum(-1)) + np.log(pen)


def _random_head(rng, shape, m):
    return rng.normal(size=shape + (distributions.head_size(m),)).astype(np.float32)


def test_log_prob_matches_numpy_reference():
    rng = np.random.default_rng(0)
    m = 20
    head = _random_head(rng, (4, 7), m)
    x = rng.normal(size=(4, 7, 3)).astype(np.float32)
    x[..., 2] = rng.random((4, 7)) < 0.3
    params = distributions.split_head(head)
    offset, pen = distributions.log_prob(params, x)
    got = (offset + pen).numpy()
    p = {k: np.float64(v.numpy()) for k, v in params._asdict().items()}
    want = _reference_log_prob(p["pi_logits"], p["mu"], p["sigma"], p["rho"], p["pen_logit"], x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_split_head_layout_and_constraints():
    m = 3
    head = np.zeros((1, distributions.head_size(m)), np.float32)
    head[0, 0] = 2.0  # pen logit
    head[0, 1 + m : 1 + 3 * m] = np.arange(2 * m)  # means, (x, y) pairs
    head[0, 1 + 5 * m :] = 100.0  # rho_hat: tanh saturates
    params = distributions.split_head(head)
    assert params.pen_logit.numpy()[0] == 2.0
    np.testing.assert_array_equal(params.mu.numpy()[0], [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_allclose(params.sigma.numpy(), 1.0 + distributions.SIGMA_MIN)
    assert np.all(np.abs(params.rho.numpy()) < 1.0)
    with pytest.raises(ValueError, match="1 \\+ 6M"):
        distributions.split_head(np.zeros((1, 8), np.float32))


@pytest.mark.parametrize("rho_hat", [-20.0, -3.8, 3.8, 20.0])  # tanh(3.8) ~ 0.999
def test_gradients_finite_at_extreme_parameters(rho_hat):
    m = 2
    head = np.zeros((3, distributions.head_size(m)), np.float32)
    head[:, 1 + 3 * m : 1 + 5 * m] = -40.0  # sigmas at the floor
    head[:, 1 + 5 * m :] = rho_hat
    head = tf.Variable(head)
    x = tf.constant([[0.0, 0.0, 1.0], [5.0, -5.0, 0.0], [1e-4, 1e-4, 0.0]])
    with tf.GradientTape() as tape:
        offset, pen = distributions.log_prob(distributions.split_head(head), x)
        loss = -tf.reduce_sum(offset + pen)
    grad = tape.gradient(loss, head)
    assert np.isfinite(loss.numpy())
    assert np.all(np.isfinite(grad.numpy()))


@pytest.mark.parametrize("bias", [0.0, 0.5, 2.0])
def test_bias_follows_graves_eqs_61_and_62(bias):
    """Graves (2013) eqs. 61-62: sigma = exp(sigma_hat - b), pi = softmax(pi_hat (1 + b));
    the means, correlations and pen-up logit do not move."""
    rng = np.random.default_rng(1)
    m = 4
    head = _random_head(rng, (5,), m)
    pen, pi_hat, mu, sigma_hat, rho_hat = np.split(head, np.cumsum([1, m, 2 * m, 2 * m]), -1)
    params = distributions.split_head(head, bias=bias)
    np.testing.assert_allclose(params.sigma.numpy(), np.exp(sigma_hat - bias).reshape(5, m, 2) + distributions.SIGMA_MIN,
                               rtol=1e-5)
    np.testing.assert_allclose(tf.nn.softmax(params.pi_logits).numpy(),
                               tf.nn.softmax(pi_hat * (1 + bias)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(params.mu.numpy(), mu.reshape(5, m, 2))
    np.testing.assert_allclose(params.pen_logit.numpy(), pen[:, 0])
    np.testing.assert_allclose(params.rho.numpy(), distributions.RHO_MAX * np.tanh(rho_hat), rtol=1e-5)
    if bias == 0.0:  # the default is no bias
        unbiased = distributions.split_head(head)
        for x, y in zip(params, unbiased):
            np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_large_bias_collapses_samples_to_the_mode():
    rng = np.random.default_rng(2)
    m = 5
    head = np.tile(_random_head(rng, (), m), (2000, 1))
    plain = distributions.sample(distributions.split_head(head), tf.constant([1, 2]))
    biased = distributions.sample(distributions.split_head(head, bias=10.0), tf.constant([1, 2]))
    params = distributions.split_head(head[:1])
    mode = params.mu.numpy()[0, np.argmax(params.pi_logits.numpy()[0])]
    assert np.std(plain.numpy()[:, :2], 0).min() > 0.1
    np.testing.assert_allclose(biased.numpy()[:, :2], np.broadcast_to(mode, (2000, 2)), atol=0.01)


def test_sampling_is_deterministic_in_the_seed():
    rng = np.random.default_rng(3)
    params = distributions.split_head(_random_head(rng, (10,), 3))
    a = distributions.sample(params, tf.constant([4, 5]))
    b = distributions.sample(params, tf.constant([4, 5]))
    c = distributions.sample(params, tf.constant([4, 6]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert set(np.unique(a.numpy()[:, 2])) <= {0.0, 1.0}


def test_sample_rows_draws_from_the_tfp_distribution():
    """The fast per-row sampler against TFP's MixtureSameFamily and Bernoulli
    (the definition): 20,000 draws of each from one set of parameters agree
    in their marginals (two-sample Kolmogorov-Smirnov distance), their
    correlation and their pen-up rate."""
    rng = np.random.default_rng(8)
    n = 20000
    head = np.tile(_random_head(rng, (), 5), (n, 1))
    head[:, 6:16] *= 3.0  # spread the means apart: a multimodal target
    params = distributions.split_head(head)
    fast = distributions.sample_rows(params, tf.constant([1, 2])).numpy()
    tfp_draws = distributions.sample(params, tf.constant([3, 4])).numpy()

    def ks(a, b):
        grid = np.sort(np.concatenate([a, b]))
        return np.max(np.abs(np.searchsorted(np.sort(a), grid, "right") / len(a)
                             - np.searchsorted(np.sort(b), grid, "right") / len(b)))

    for i in (0, 1):
        assert ks(fast[:, i], tfp_draws[:, i]) < 0.02, i  # 1% critical value at this n: 0.016
    # The rotated marginals test the correlation inside each component too.
    assert ks(fast[:, 0] + fast[:, 1], tfp_draws[:, 0] + tfp_draws[:, 1]) < 0.02
    assert ks(fast[:, 0] - fast[:, 1], tfp_draws[:, 0] - tfp_draws[:, 1]) < 0.02
    assert abs(fast[:, 2].mean() - tfp_draws[:, 2].mean()) < 0.02
    assert set(np.unique(fast[:, 2])) <= {0.0, 1.0}


def test_sample_rows_row_depends_only_on_seed_and_index():
    rng = np.random.default_rng(9)
    heads = _random_head(rng, (6,), 4)
    seed = tf.constant([5, 6])
    all_rows = distributions.sample_rows(distributions.split_head(heads), seed).numpy()
    first_two = distributions.sample_rows(distributions.split_head(heads[:2]), seed).numpy()
    np.testing.assert_array_equal(all_rows[:2], first_two)
    other = distributions.sample_rows(distributions.split_head(heads), tf.constant([5, 7])).numpy()
    assert not np.array_equal(all_rows, other)
