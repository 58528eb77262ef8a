"""Graves's soft window over the characters of the text (2013, eqs. 46-51)."""

from __future__ import annotations

import keras
import tensorflow as tf


def window_step(h, kappa_prev, kernel, bias, chars_onehot, char_mask):
    """The window's mathematics at one step (see `GaussianWindow`), float32.

    Returns:
      `(w [B, V], phi [B, U] unmasked, kappa [B, K], params [B, 3K])` where
      `params` is `(alpha, beta, kappa - kappa_prev)` concatenated.
    """
    h = tf.cast(h, tf.float32)
    params = tf.exp(tf.matmul(h, tf.cast(kernel, tf.float32)) + tf.cast(bias, tf.float32))
    alpha, beta, step = tf.split(params, 3, axis=-1)
    kappa = kappa_prev + step
    positions = tf.range(tf.shape(chars_onehot)[1], dtype=tf.float32)
    distance = kappa[:, :, None] - positions[None, None, :]  # [B, K, U]
    phi = tf.reduce_sum(alpha[:, :, None] * tf.exp(-beta[:, :, None] * tf.square(distance)), 1)
    w = tf.einsum("bu,buv->bv", phi * char_mask, chars_onehot)  # [B, V]
    return w, phi, kappa, params


@keras.saving.register_keras_serializable(package="hwtf")
class GaussianWindow(keras.layers.Layer):
    """A mixture of K Gaussian bumps sliding along the text.

    Mathematical details
    --------------------
    From the first LSTM layer's output `h_t`, a linear map gives
    `(alpha_hat, beta_hat, kappa_hat)` (each `[K]`), and

        alpha_t = exp(alpha_hat_t),  beta_t = exp(beta_hat_t),
        kappa_t = kappa_{t-1} + exp(kappa_hat_t),
        phi(t, u) = sum_k alpha_t^k exp(-beta_t^k (kappa_t^k - u)^2),
        w_t = sum_u phi(t, u) c_u,

    where `c_u` is the one-hot vector of the u-th character (u = 0, 1, ...)
    and padding's `c_u` is masked out of `w_t`. `phi` itself is not masked
    here (a sampler reads it one position past the text's end to stop);
    `LSTMStack` zeroes it on padded positions in its output. Because `exp(.) > 0`, `kappa` never
    decreases: the window can only move forwards along the text.

    The bias of `kappa_hat` starts at `kappa_bias` (default -3, a step of
    about 0.05 characters, the order of one character per 20 points of IAM-OnDB
    ink) so that the window starts moving at a plausible speed.

    Args:
      window_mixtures: K, the number of Gaussian bumps.
      kappa_bias: initial bias of `kappa_hat`.
    """

    def __init__(self, window_mixtures: int = 10, kappa_bias: float = -3.0, **kwargs):
        super().__init__(**kwargs)
        if window_mixtures < 1:
            raise ValueError(f"window_mixtures must be >= 1, got {window_mixtures}")
        self.window_mixtures = window_mixtures
        self.kappa_bias = kappa_bias

    def build(self, input_shape):
        k = self.window_mixtures
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], 3 * k),
            initializer=keras.initializers.GlorotUniform(),
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(3 * k,),
            initializer=keras.initializers.Constant([0.0] * (2 * k) + [self.kappa_bias] * k),
        )

    def call(self, h, kappa_prev, chars_onehot, char_mask):
        """One step of the window.

        Args:
          h: `[B, H]` first-layer output.
          kappa_prev: `[B, K]`.
          chars_onehot: `[B, U, V]` one-hot characters.
          char_mask: `[B, U]` float, 1 on real characters.

        Returns:
          `(w [B, V], phi [B, U], kappa [B, K])`; `phi` is not masked, so
          that a sampler can read it one position past the text's end (the
          stop condition); `w` uses the masked `phi`.
        """
        w, phi, kappa, _ = window_step(h, kappa_prev, self.kernel, self.bias, chars_onehot, char_mask)
        return w, phi, kappa

    def compute_output_shape(self, h_shape, kappa_shape, chars_onehot_shape, char_mask_shape):
        """`(w [B, V], phi [B, U], kappa [B, K])`."""
        batch, chars, alphabet = chars_onehot_shape
        return (batch, alphabet), (batch, chars), (batch, self.window_mixtures)

    def get_config(self):
        return {
            **super().get_config(),
            "window_mixtures": self.window_mixtures,
            "kappa_bias": self.kappa_bias,
        }
