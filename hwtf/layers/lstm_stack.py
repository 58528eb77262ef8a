"""Graves's stack of LSTM layers with skip connections and the soft window.

The same weights run over a whole sequence (training, evaluation) and one step
at a time with explicit state (sampling); both paths share the per-step code.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from hwtf.layers.window import GaussianWindow


class StackState(NamedTuple):
    """Recurrent state: per layer `h, c` `[B, H]`; the window's `kappa [B, K]`
    and last window vector `w [B, V]` (zero-sized for the prediction model)."""

    h: tuple
    c: tuple
    kappa: tf.Tensor
    w: tf.Tensor


def _lstm_update(z: tf.Tensor, c: tf.Tensor):
    """Gate pre-activations `z [B, 4H]` (order i, f, g, o) and `c` -> `(h, c)`."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c), c


class LSTMStack(keras.layers.Layer):
    """`lstm_layers` LSTMs of `lstm_units`, with Graves's skip connections.

    Every layer sees the input offsets `x_t` (and, for synthesis, the window
    `w_t`); layer n > 1 also sees layer n-1's output at the same step; the
    window reads the first layer's output, and its `w_{t-1}` feeds the first
    layer at the next step (Graves 2013, eqs. 52-56). The layer's output is the
    concatenation of every layer's `h_t`, for the mixture-density head.

    Only the first layer (with the window) is inherently step-by-step; the
    input projections of all layers are batched over time, so a whole-sequence
    pass costs one large matmul per layer plus the recurrent matmuls.
    Peephole connections (Graves's eqs. 7-11) are left out.

    Padding: sequences are padded at the end only, so the padded steps never
    affect real ones; outputs past a sequence's length are ignored by the loss.

    Args:
      lstm_units: H.
      lstm_layers: number of layers.
      window_mixtures: K of the window; 0 makes an unconditional (prediction)
        stack with no window.
      alphabet_size: V, the number of character ids (synthesis only).
    """

    def __init__(
        self,
        lstm_units: int = 400,
        lstm_layers: int = 3,
        window_mixtures: int = 10,
        alphabet_size: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if lstm_units < 1 or lstm_layers < 1:
            raise ValueError(f"need lstm_units, lstm_layers >= 1, got {lstm_units}, {lstm_layers}")
        if window_mixtures and alphabet_size < 3:
            raise ValueError(f"a windowed stack needs alphabet_size >= 3, got {alphabet_size}")
        self.lstm_units = lstm_units
        self.lstm_layers = lstm_layers
        self.window_mixtures = window_mixtures
        self.alphabet_size = alphabet_size if window_mixtures else 0
        # The window runs in float32 whatever the policy: kappa accumulates
        # small steps, which bfloat16's 8-bit mantissa would lose.
        self.window = (
            GaussianWindow(window_mixtures, name="window", dtype="float32") if window_mixtures else None
        )

    @property
    def conditional(self) -> bool:
        return self.window is not None

    def build(self, input_shape=None):
        h, v = self.lstm_units, self.alphabet_size
        # One attribute per weight (not lists): TensorFlow checkpoints track
        # attributes, and Keras's tracked lists are invisible to them.
        for n in range(self.lstm_layers):
            inputs = 3 + v + (h if n else 0)
            setattr(self, f"kernel_{n}", self.add_weight(
                name=f"kernel_{n}", shape=(inputs, 4 * h), initializer="glorot_uniform"
            ))
            setattr(self, f"recurrent_kernel_{n}", self.add_weight(
                name=f"recurrent_kernel_{n}", shape=(h, 4 * h), initializer="orthogonal"
            ))
            setattr(self, f"bias_{n}", self.add_weight(
                name=f"bias_{n}",
                shape=(4 * h,),
                # Forget gates start open (bias 1), as in Keras's LSTM.
                initializer=keras.initializers.Constant([0.0] * h + [1.0] * h + [0.0] * (2 * h)),
            ))
        if self.window is not None:
            self.window.build((None, h))

    @property
    def kernels(self) -> list:
        return [getattr(self, f"kernel_{n}") for n in range(self.lstm_layers)]

    @property
    def recurrent_kernels(self) -> list:
        return [getattr(self, f"recurrent_kernel_{n}") for n in range(self.lstm_layers)]

    @property
    def biases(self) -> list:
        return [getattr(self, f"bias_{n}") for n in range(self.lstm_layers)]

    # -- shapes and state ---------------------------------------------------

    @property
    def output_size(self) -> int:
        return self.lstm_units * self.lstm_layers

    def initial_state(self, batch_size) -> StackState:
        zeros = tf.zeros([batch_size, self.lstm_units])
        return StackState(
            h=(zeros,) * self.lstm_layers,
            c=(zeros,) * self.lstm_layers,
            kappa=tf.zeros([batch_size, self.window_mixtures]),
            w=tf.zeros([batch_size, self.alphabet_size]),
        )

    def encode_chars(self, chars: tf.Tensor, char_lengths: tf.Tensor):
        """`chars [B, U]` ids -> one-hot `[B, U, V]` and mask `[B, U]`."""
        onehot = tf.one_hot(chars, self.alphabet_size)
        mask = tf.sequence_mask(char_lengths, tf.shape(chars)[1], dtype=tf.float32)
        return onehot, mask

    # -- the first layer and the window, one step ---------------------------

    def _first_layer_weights(self, dtype):
        """Input kernel for `x` and the recurrent kernel for `[w_{t-1}, h_{t-1}]`."""
        kernel = tf.cast(self.kernels[0], dtype)
        recurrent = tf.cast(self.recurrent_kernels[0], dtype)
        if self.conditional:
            recurrent = tf.concat([kernel[3:], recurrent], 0)  # [V + H, 4H]
        return kernel[:3], recurrent

    def _first_step(self, x_proj, h, c, kappa, w, recurrent, chars_onehot, char_mask):
        """Layer 1 and the window at one step; `x_proj` is `x_t W + b`."""
        hw = tf.concat([w, h], -1) if self.conditional else h
        z = x_proj + tf.matmul(tf.cast(hw, recurrent.dtype), recurrent)
        h, c = _lstm_update(tf.cast(z, tf.float32), c)
        if self.conditional:
            w, phi, kappa = self.window(h, kappa, chars_onehot, char_mask)
        else:
            phi = tf.zeros([tf.shape(h)[0], 0])
        return h, c, kappa, w, phi

    # -- whole sequence -----------------------------------------------------

    def call(self, offsets, chars=None, char_lengths=None, initial_state: StackState | None = None):
        """Runs over whole sequences.

        Args:
          offsets: `[B, T, 3]` inputs.
          chars, char_lengths: `[B, U]` ids and `[B]` (synthesis only).
          initial_state: defaults to zeros.

        Returns:
          dict with `outputs [B, T, L*H]`, `phi [B, T, U]`, `kappa [B, T, K]`,
          `window [B, T, V]`, and `state`, the final `StackState`.
        """
        offsets = tf.cast(offsets, tf.float32)
        batch, steps = tf.shape(offsets)[0], tf.shape(offsets)[1]
        state = initial_state or self.initial_state(batch)
        # Keras casts float inputs to the compute dtype; the state stays float32.
        state = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), state)
        dtype = self.compute_dtype
        if self.conditional:
            chars_onehot, char_mask = self.encode_chars(chars, char_lengths)
        else:
            chars_onehot = char_mask = None

        x_time = tf.transpose(tf.cast(offsets, dtype), [1, 0, 2])  # [T, B, 3]
        x_kernel, recurrent = self._first_layer_weights(dtype)
        x_proj = tf.einsum("tbi,ij->tbj", x_time, x_kernel) + tf.cast(self.biases[0], dtype)

        u = tf.shape(chars)[1] if self.conditional else 0
        arrays = [
            tf.TensorArray(tf.float32, size=steps, element_shape=[None, d])
            for d in (self.lstm_units, self.alphabet_size, self.window_mixtures)
        ]
        phis = tf.TensorArray(tf.float32, size=steps, element_shape=[None, None])

        # Inputs are read through a TensorArray: slicing a captured tensor
        # inside the loop would make its gradient a full [T, ...] tensor per step.
        x_proj = tf.TensorArray(dtype, size=steps).unstack(x_proj)

        def body(t, h, c, kappa, w, hs, ws, kappas, phis):
            h, c, kappa, w, phi = self._first_step(
                x_proj.read(t), h, c, kappa, w, recurrent, chars_onehot, char_mask
            )
            return t + 1, h, c, kappa, w, hs.write(t, h), ws.write(t, w), kappas.write(t, kappa), phis.write(t, phi)

        _, h1, c1, kappa, w, hs, ws, kappas, phis = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (0, state.h[0], state.c[0], state.kappa, state.w, *arrays, phis),
        )
        layer_out = hs.stack()  # [T, B, H]
        window = ws.stack()  # [T, B, V]
        outputs, hs_final, cs_final = [layer_out], [h1], [c1]

        for n in range(1, self.lstm_layers):
            kernel = tf.cast(self.kernels[n], dtype)
            below = tf.concat([x_time, tf.cast(window, dtype), tf.cast(layer_out, dtype)], -1)
            proj = tf.einsum("tbi,ij->tbj", below, kernel) + tf.cast(self.biases[n], dtype)
            layer_out, h, c = self._recurrence(proj, tf.cast(self.recurrent_kernels[n], dtype), state.h[n], state.c[n])
            outputs.append(layer_out)
            hs_final.append(h)
            cs_final.append(c)

        to_batch = lambda x: tf.transpose(x, [1, 0, 2])
        return {
            "outputs": to_batch(tf.concat(outputs, -1)),
            "phi": to_batch(phis.stack()) * char_mask[:, None, :]
            if self.conditional
            else tf.zeros([batch, steps, 0]),
            "kappa": to_batch(kappas.stack()),
            "window": to_batch(window),
            "state": StackState(tuple(hs_final), tuple(cs_final), kappa, w),
        }

    @staticmethod
    def _recurrence(proj, recurrent, h, c):
        """An LSTM over precomputed input projections `proj [T, B, 4H]`."""
        steps = tf.shape(proj)[0]
        hs = tf.TensorArray(tf.float32, size=steps, element_shape=h.shape)
        proj = tf.TensorArray(proj.dtype, size=steps).unstack(proj)

        def body(t, h, c, hs):
            z = proj.read(t) + tf.matmul(tf.cast(h, recurrent.dtype), recurrent)
            h, c = _lstm_update(tf.cast(z, tf.float32), c)
            return t + 1, h, c, hs.write(t, h)

        _, h, c, hs = tf.while_loop(lambda t, *_: t < steps, body, (0, h, c, hs))
        return hs.stack(), h, c

    # -- one step -----------------------------------------------------------

    def step(self, x, state: StackState, chars_onehot=None, char_mask=None):
        """One step for sampling.

        Args:
          x: `[B, 3]` the current offset.
          state: the previous `StackState`.
          chars_onehot, char_mask: from `encode_chars` (synthesis only).

        Returns:
          `(outputs [B, L*H], state, phi [B, U])`; `phi` is not masked (see
          `GaussianWindow.call`), `[B, 0]` for the prediction stack.
        """
        dtype = self.compute_dtype
        x = tf.cast(x, dtype)
        x_kernel, recurrent = self._first_layer_weights(dtype)
        x_proj = tf.matmul(x, x_kernel) + tf.cast(self.biases[0], dtype)
        h, c, kappa, w, phi = self._first_step(
            x_proj, state.h[0], state.c[0], state.kappa, state.w, recurrent, chars_onehot, char_mask
        )
        hs, cs, below = [h], [c], h
        for n in range(1, self.lstm_layers):
            inputs = tf.concat([x, tf.cast(w, dtype), tf.cast(below, dtype)], -1)
            z = (
                tf.matmul(inputs, tf.cast(self.kernels[n], dtype))
                + tf.matmul(tf.cast(state.h[n], dtype), tf.cast(self.recurrent_kernels[n], dtype))
                + tf.cast(self.biases[n], dtype)
            )
            below, c_n = _lstm_update(tf.cast(z, tf.float32), state.c[n])
            hs.append(below)
            cs.append(c_n)
        return tf.concat(hs, -1), StackState(tuple(hs), tuple(cs), kappa, w), phi

    def get_config(self):
        return {
            **super().get_config(),
            "lstm_units": self.lstm_units,
            "lstm_layers": self.lstm_layers,
            "window_mixtures": self.window_mixtures,
            "alphabet_size": self.alphabet_size,
        }
