"""The arithmetic one step of the recurrence shares between its loops: the
LSTM update forwards and backwards, the window's backward step, and the
kernel gradients' shifted products. `LSTMStack`'s layered loops and the
wavefront (`hwtf.layers.wavefront`) both build on these.
"""

from __future__ import annotations

import tensorflow as tf


def lstm_update(z: tf.Tensor, c: tf.Tensor):
    """Gate pre-activations `z [B, 4H]` (order i, f, g, o) and `c` -> `(h, c)`."""
    h, c, _ = lstm_gates(z, c, z.shape[-1] // 4)
    return h, c


def lstm_gate_grads(gates, c, c_prev, dh, dc):
    """Backward through one LSTM update: activated gates `[B, 4H]` (i, f, g, o),
    the cell `c` and previous cell, and the gradients reaching `h` and `c`.
    Returns `(dz [B, 4H], dc_prev)`."""
    i, f, g, o = tf.split(gates, 4, -1)
    tanh_c = tf.tanh(c)
    dc = dc + dh * o * (1.0 - tf.square(tanh_c))
    dz = tf.concat(
        [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - tf.square(g)), dh * tanh_c * o * (1.0 - o)],
        -1,
    )
    return dz, dc * f


def lstm_gates(z, c, units):
    """Forward LSTM update from float32 pre-activations: `(h, c, gates)`."""
    ifo = tf.sigmoid(tf.concat([z[:, : 2 * units], z[:, 3 * units :]], -1))
    i, f, o = tf.split(ifo, 3, -1)
    g = tf.tanh(z[:, 2 * units : 3 * units])
    c = f * c + i * g
    return o * tf.tanh(c), c, tf.concat([i, f, g, o], -1)


def window_step_grads(params, kappa, dw, dkappa, chars_onehot, char_mask, positions, dphi=None):
    """Backward through one `window_step`: its `params [B, 3K]` and `kappa
    [B, K]`, and the gradients reaching `w`, `kappa` (and `phi`, or None).
    Returns `(dp, dkappa_prev)`: the gradient of the exponent `h W + b`
    `[B, 3K]`, and the one reaching the previous `kappa`."""
    alpha, beta, step = tf.split(params, 3, -1)  # [B, K]
    distance = kappa[:, :, None] - positions[None, None, :]  # [B, K, U]
    bump = tf.exp(-beta[:, :, None] * tf.square(distance))  # [B, K, U]
    from_w = tf.einsum("bv,buv->bu", dw, chars_onehot) * char_mask
    dphi = from_w if dphi is None else from_w + dphi
    d_bump = dphi[:, None, :] * alpha[:, :, None] * bump  # d/d(exponent), [B, K, U]
    dalpha = tf.reduce_sum(dphi[:, None, :] * bump, -1)
    dbeta = -tf.reduce_sum(d_bump * tf.square(distance), -1)
    dkappa = dkappa - 2.0 * tf.reduce_sum(d_bump * beta[:, :, None] * distance, -1)
    return tf.concat([dalpha * alpha, dbeta * beta, dkappa * step], -1), dkappa  # through exp


def previous(xs, x0, t):
    """`xs[t - 1]`, or `x0` at `t = 0`: a step's input state, read without
    building the shifted `[T, ...]` copy `concat([x0[None], xs[:-1]])`."""
    return tf.where(t > 0, xs[tf.maximum(t - 1, 0)], x0)


def shifted_product(xs, x0, dz):
    """`sum_t x_{t-1}^T dz_t` with `x_{-1} = x0`: a kernel's gradient over all
    steps, from `xs [T, B, I]`, `x0 [B, I]` and `dz [T, B, G]`, without
    copying `xs` into its shifted `[T, B, I]` form (a slice along the first
    axis shares its buffer)."""
    return tf.einsum("tbi,tbg->ig", xs[:-1], dz[1:]) + tf.matmul(x0, dz[0], transpose_a=True)
