"""The hand-written LSTM gradients against TensorFlow's automatic ones, and
the stack's two ways of differentiating its loops against each other."""

import numpy as np
import pytest
import tensorflow as tf

from hwtf.layers.lstm_stack import GRADIENTS, LAYOUTS, lstm_recurrence, lstm_recurrence_autodiff


def _reference(proj, recurrent, h, c):
    """The textbook LSTM, written out independently of hwtf's helpers."""
    hs = []
    for t in range(proj.shape[0]):
        i, f, g, o = tf.split(proj[t] + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        hs.append(h)
    return tf.stack(hs), h, c


@pytest.mark.parametrize("recurrence", [lstm_recurrence, lstm_recurrence_autodiff], ids=GRADIENTS)
@pytest.mark.parametrize("steps", [1, 7])
def test_lstm_recurrence_matches_autodiff(steps, recurrence):
    rng = np.random.default_rng(0)
    b, h = 3, 5
    proj = tf.constant(rng.normal(size=(steps, b, 4 * h)), tf.float32)
    recurrent = tf.constant(rng.normal(size=(h, 4 * h)) * 0.5, tf.float32)
    h0 = tf.constant(rng.normal(size=(b, h)), tf.float32)
    c0 = tf.constant(rng.normal(size=(b, h)), tf.float32)
    weights = [tf.constant(rng.normal(size=s), tf.float32) for s in [(steps, b, h), (b, h), (b, h)]]
    results = []
    for fn in (recurrence, _reference):
        with tf.GradientTape() as tape:
            tape.watch([proj, recurrent, h0, c0])
            outs = fn(proj, recurrent, h0, c0)
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outs, weights))
        results.append((outs, tape.gradient(loss, [proj, recurrent, h0, c0])))
    (outs, grads), (ref_outs, ref_grads) = results
    for a, r in zip(outs, ref_outs):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-5, atol=1e-6)
    for a, r in zip(grads, ref_grads):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "window_mixtures, lstm_layers, gradients, layout",
    [(2, 3, "handwritten", "layered"), (0, 3, "handwritten", "layered"), (2, 3, "autodiff", "layered"),
     (0, 3, "autodiff", "layered"), (2, 3, "handwritten", "wavefront"), (2, 2, "handwritten", "wavefront")],
    ids=["synthesis", "prediction", "synthesis-autodiff", "prediction-autodiff", "synthesis-wavefront",
         "synthesis-wavefront-2-layers"],
)
def test_stack_gradient_matches_autodiff_of_the_one_step_path(window_mixtures, lstm_layers, gradients, layout):
    """The whole-sequence path (either way of differentiating its loops,
    either layout) against automatic differentiation of the same network
    unrolled with `step`: every weight's gradient of a loss that reads the
    outputs, window, attention, kappa and final state."""
    from conftest import random_batch
    from hwtf.layers import LSTMStack

    rng = np.random.default_rng(3)
    stack = LSTMStack(lstm_units=6, lstm_layers=lstm_layers, window_mixtures=window_mixtures, alphabet_size=7)
    stack.build()
    stack.gradients, stack.layout = gradients, layout
    for v in stack.weights:  # larger weights: a sharper test than the initialisation
        v.assign(v.numpy() * 2.0 + rng.normal(size=v.shape) * 0.3)
    batch = random_batch(rng, [9, 6], [4, 3], alphabet_size=7)
    chars = batch["chars"] if window_mixtures else None
    char_lengths = batch["char_lengths"] if window_mixtures else None
    out_weights = tf.constant(rng.normal(size=(2, 9, 6 * lstm_layers)), tf.float32)
    win_weights = tf.constant(rng.normal(size=(2, 9, 7 if window_mixtures else 0)), tf.float32)
    # Gradients that reach the attention and kappa too (their own paths in
    # the hand-written window gradient).
    phi_weights = tf.constant(rng.normal(size=(2, 9, 4)), tf.float32)
    kappa_weights = tf.constant(rng.normal(size=(2, 9, window_mixtures)), tf.float32)
    # And the final state: the top layer's h, the first layer's c, kappa.
    final_weights = [tf.constant(rng.normal(size=(2, n)), tf.float32) for n in (6, 6, window_mixtures)]

    def final_loss(state):
        return sum(tf.reduce_sum(x * w) for x, w in zip((state.h[-1], state.c[0], state.kappa), final_weights))

    with tf.GradientTape() as tape:
        out = stack(batch["offsets"], chars, char_lengths)
        loss = tf.reduce_sum(out["outputs"] * out_weights) + tf.reduce_sum(out["window"] * win_weights)
        if window_mixtures:
            loss += tf.reduce_sum(out["phi"] * phi_weights) + tf.reduce_sum(out["kappa"] * kappa_weights)
        loss += final_loss(out["state"])
    grads = tape.gradient(loss, stack.trainable_variables)

    with tf.GradientTape() as tape:
        state = stack.initial_state(2)
        onehot = mask = None
        if window_mixtures:
            onehot, mask = stack.encode_chars(chars, char_lengths)
        loss = 0.0
        for t in range(9):
            outputs, state, phi = stack.step(batch["offsets"][:, t], state, onehot, mask)
            loss += tf.reduce_sum(outputs * out_weights[:, t]) + tf.reduce_sum(state.w * win_weights[:, t])
            if window_mixtures:
                loss += tf.reduce_sum(phi * mask * phi_weights[:, t]) + tf.reduce_sum(state.kappa * kappa_weights[:, t])
        loss += final_loss(state)
    want = tape.gradient(loss, stack.trainable_variables)
    for v, g, w in zip(stack.trainable_variables, grads, want):
        # float32 rounding scales with the sums a gradient is made of, so the
        # absolute tolerance scales with the weight's largest gradient (one
        # small entry of a kernel whose entries reach 9 once differed by 6e-5).
        atol = 2e-5 * max(1.0, float(np.abs(w.numpy()).max()))
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=2e-4, atol=atol, err_msg=v.path)


@pytest.mark.parametrize("gradients, layout", [("handwritten", "layered"), ("autodiff", "layered"),
                                               ("handwritten", "wavefront")])
def test_stack_gradient_in_mixed_bfloat16_is_close_to_float32(gradients, layout):
    """The gradients under mixed bfloat16 (matmuls in bfloat16, the window
    and cell state in float32) against the float32 gradients of the same
    weights: equal up to bfloat16's rounding."""
    import keras

    from conftest import random_batch
    from hwtf.layers import LSTMStack

    # Keras's initialisers draw from its global seed: without fixing it the
    # weights (and the rounding error measured) depend on the tests run before.
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    batch = random_batch(rng, [12, 8], [5, 3], alphabet_size=7)
    out_weights = tf.constant(rng.normal(size=(2, 12, 3 * 8)), tf.float32)
    grads = {}
    values = None
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            stack = LSTMStack(lstm_units=8, lstm_layers=3, window_mixtures=2, alphabet_size=7)
            stack.build()
            stack.gradients, stack.layout = gradients, layout
        finally:
            keras.mixed_precision.set_global_policy("float32")
        if values is None:
            values = [v.numpy() * 2.0 + rng.normal(size=v.shape) * 0.3 for v in stack.weights]
        for v, value in zip(stack.weights, values):
            v.assign(value)
        with tf.GradientTape() as tape:
            out = stack(batch["offsets"], batch["chars"], batch["char_lengths"])
            loss = tf.reduce_sum(tf.cast(out["outputs"], tf.float32) * out_weights)
        grads[policy] = tape.gradient(loss, stack.trainable_variables)
        if policy == "mixed_bfloat16":
            assert stack.compute_dtype == "bfloat16"
    paths = [v.path for v in stack.trainable_variables]
    for path, g32, g16 in zip(paths, grads["float32"], grads["mixed_bfloat16"]):
        g32, g16 = g32.numpy(), tf.cast(g16, tf.float32).numpy()
        error = np.linalg.norm(g16 - g32) / np.linalg.norm(g32)
        assert error < 0.05, f"{path}: relative error {error:.3f}"
        assert not np.array_equal(g16, g32), path  # the bfloat16 path really ran
