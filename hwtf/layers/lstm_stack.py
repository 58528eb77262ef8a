"""Graves's stack of LSTM layers with skip connections and the soft window.

The same weights run over a whole sequence (training, evaluation: `call`, a
`tf.while_loop` per layer with hand-written gradients, or all layers in one
loop, `hwtf.layers.wavefront`) and one step at a time with explicit state
(sampling: `step`). The loops are separate code; they share the cell and
window arithmetic (`hwtf.layers.cell`, `window_step`), and
tests/test_recurrence.py checks that they compute the same outputs and
gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

from hwtf.layers.cell import lstm_gate_grads, lstm_gates, lstm_update, previous, shifted_product, window_step_grads
from hwtf.layers.wavefront import wavefront_recurrence
from hwtf.layers.window import GaussianWindow, window_step

GRADIENTS = ("handwritten", "autodiff")  # how LSTMStack.call's loops are differentiated
LAYOUTS = ("layered", "wavefront")  # how they are laid out


class StackState(NamedTuple):
    """Recurrent state: per layer `h, c` `[B, H]`; the window's `kappa [B, K]`
    and last window vector `w [B, V]` (zero-sized for the prediction model)."""

    h: tuple
    c: tuple
    kappa: tf.Tensor
    w: tf.Tensor


def _windowed_loop(read, steps, recurrent, window_kernel, window_bias, h0, c0, kappa0, w0,
                   chars_onehot, char_mask, save_for_backward):
    """The forward loop of the first layer and the window. `read(t)` is step
    t's input projection. Returns `((hs, ws, kappas, phis), final state,
    saved)`, `saved` the `(cs, gates, params)` the hand-written gradient
    reads (`()` unless `save_for_backward`)."""
    units = h0.shape[-1]
    names = ("hs", "ws", "kappas", "phis") + (("cs", "gates", "params") if save_for_backward else ())
    arrays = tuple(tf.TensorArray(tf.float32, size=steps) for _ in names)

    def forward(t, h, c, kappa, w, arrays):
        z = read(t) + tf.matmul(tf.cast(tf.concat([w, h], -1), recurrent.dtype), recurrent)
        h, c, gates = lstm_gates(tf.cast(z, tf.float32), c, units)
        w, phi, kappa, params = window_step(h, kappa, window_kernel, window_bias, chars_onehot, char_mask)
        values = (h, w, kappa, phi, c, gates, params)
        return t + 1, h, c, kappa, w, tuple(a.write(t, v) for a, v in zip(arrays, values))

    _, h, c, kappa, w, arrays = tf.while_loop(
        lambda t, *_: t < steps, forward, (0, h0, c0, kappa0, w0, arrays)
    )
    stacked = tuple(a.stack() for a in arrays)
    return stacked[:4], (h, c, kappa, w), stacked[4:]


def _lstm_loop(read, steps, recurrent, h0, c0, save_for_backward):
    """The forward loop of an LSTM; `read(t)` is step t's input projection.
    Returns `(hs, h_T, c_T, saved)`, `saved` the `(cs, gates)` the
    hand-written gradient reads (`()` unless `save_for_backward`)."""
    units = recurrent.shape[0]
    spec = dict(size=steps, element_shape=h0.shape)
    arrays = (tf.TensorArray(tf.float32, **spec),)
    if save_for_backward:
        arrays += (tf.TensorArray(tf.float32, **spec), tf.TensorArray(tf.float32, size=steps))

    def forward(t, h, c, arrays):
        z = tf.cast(read(t) + tf.matmul(tf.cast(h, recurrent.dtype), recurrent), tf.float32)
        h, c, g = lstm_gates(z, c, units)
        return t + 1, h, c, tuple(a.write(t, v) for a, v in zip(arrays, (h, c, g)))

    _, h, c, arrays = tf.while_loop(lambda t, *_: t < steps, forward, (0, h0, c0, arrays))
    stacked = tuple(a.stack() for a in arrays)
    return stacked[0], h, c, stacked[1:]


def _reader(xs):
    """Step t of `xs [T, ...]` for a loop that TensorFlow differentiates:
    through a `TensorArray`, so that each step's gradient is its own slice
    (slicing the captured tensor would make it a whole `[T, ...]` tensor a
    step)."""
    array = tf.TensorArray(xs.dtype, size=tf.shape(xs)[0]).unstack(xs)
    return array.read


def windowed_lstm_recurrence_autodiff(x_proj, recurrent, window_kernel, window_bias, h0, c0, kappa0, w0,
                                      chars_onehot, char_mask):
    """`windowed_lstm_recurrence`, differentiated by TensorFlow instead of by hand."""
    x_proj = tf.convert_to_tensor(x_proj)
    outputs, final, _ = _windowed_loop(
        _reader(x_proj), tf.shape(x_proj)[0], recurrent, window_kernel, window_bias, h0, c0, kappa0, w0,
        chars_onehot, char_mask, save_for_backward=False,
    )
    return outputs + final


def lstm_recurrence_autodiff(proj, recurrent, h0, c0):
    """`lstm_recurrence`, differentiated by TensorFlow instead of by hand."""
    proj = tf.convert_to_tensor(proj)
    hs, h, c, _ = _lstm_loop(_reader(proj), tf.shape(proj)[0], recurrent, h0, c0, save_for_backward=False)
    return hs, h, c


@tf.custom_gradient
def windowed_lstm_recurrence(x_proj, recurrent, window_kernel, window_bias, h0, c0, kappa0, w0, chars_onehot, char_mask):
    """Graves's first layer and soft window over a sequence, with a hand-written gradient.

    Args:
      x_proj: `[T, B, 4H]` input projections `x_t W + b`.
      recurrent: `[V + H, 4H]` kernel for `[w_{t-1}, h_{t-1}]`.
      window_kernel, window_bias: `[H, 3K]`, `[3K]` (see `window_step`).
      h0, c0, kappa0, w0: the initial state, float32.
      chars_onehot, char_mask: `[B, U, V]`, `[B, U]`.

    Returns:
      `(hs [T, B, H], ws [T, B, V], kappas [T, B, K], phis [T, B, U],
      h_T, c_T, kappa_T, w_T)`; `phis` unmasked.

    As in `lstm_recurrence`, the backward loop does one matmul per step
    (`dz_t R^T`, which also carries the gradient into `w_{t-1}`) and the
    kernels' gradients are single matmuls over all steps after it.
    """
    x_proj, recurrent = tf.convert_to_tensor(x_proj), tf.convert_to_tensor(recurrent)
    window_kernel, window_bias = tf.convert_to_tensor(window_kernel), tf.convert_to_tensor(window_bias)
    steps = tf.shape(x_proj)[0]
    (hs, ws, kappas, phis), (h_last, c_last, kappa_last, w_last), (cs, gates, params) = _windowed_loop(
        lambda t: x_proj[t], steps, recurrent, window_kernel, window_bias, h0, c0, kappa0, w0,
        chars_onehot, char_mask, save_for_backward=True,
    )

    def grad(d_hs, d_ws, d_kappas, d_phis, d_h_last, d_c_last, d_kappa_last, d_w_last):
        # Each step reads its slice of the saved tensors (and of the incoming
        # gradients) directly: copying them into TensorArrays first cost a
        # pass over memory each. Gradients that do not reach an output are
        # None and skipped.
        zeros_like = lambda d, x: tf.zeros_like(x) if d is None else tf.cast(d, tf.float32)
        incoming = {k: None if d is None else tf.cast(d, tf.float32) for k, d in dict(
            hs=d_hs, ws=d_ws, kappas=d_kappas, phis=d_phis).items()}
        plus = lambda x, name, t: x if incoming[name] is None else x + incoming[name][t]
        kernel_t = tf.transpose(tf.cast(window_kernel, tf.float32))  # [3K, H]
        recurrent_t = tf.transpose(recurrent)  # [4H, V + H]
        positions = tf.range(tf.shape(chars_onehot)[1], dtype=tf.float32)
        v_size = w0.shape[-1]
        dzs = tf.TensorArray(x_proj.dtype, size=steps)
        dparams = tf.TensorArray(tf.float32, size=steps)

        def backward(t, dh, dc, dkappa, dw, dzs, dparams):
            # The window at step t.
            dp, dkappa = window_step_grads(
                params[t], kappas[t], plus(dw, "ws", t), plus(dkappa, "kappas", t),
                chars_onehot, char_mask, positions, None if incoming["phis"] is None else incoming["phis"][t],
            )
            dh = plus(dh, "hs", t) + tf.matmul(dp, kernel_t)
            # The LSTM at step t.
            dz, dc = lstm_gate_grads(gates[t], cs[t], previous(cs, c0, t), dh, dc)
            dz = tf.cast(dz, x_proj.dtype)
            d_wh = tf.cast(tf.matmul(tf.cast(dz, recurrent.dtype), recurrent_t), tf.float32)
            return t - 1, d_wh[:, v_size:], dc, dkappa, d_wh[:, :v_size], dzs.write(t, dz), dparams.write(t, dp)

        _, dh0, dc0, dkappa0, dw0, dzs, dparams = tf.while_loop(
            lambda t, *_: t >= 0,
            backward,
            (steps - 1, zeros_like(d_h_last, h0), zeros_like(d_c_last, c0),
             zeros_like(d_kappa_last, kappa0), zeros_like(d_w_last, w0), dzs, dparams),
        )
        dz, dp = tf.cast(dzs.stack(), recurrent.dtype), dparams.stack()
        cast = lambda x: tf.cast(x, recurrent.dtype)
        # The recurrent kernel's rows are [w_{t-1}, h_{t-1}]'s.
        d_recurrent = tf.concat(
            [shifted_product(cast(ws), cast(w0), dz), shifted_product(cast(hs), cast(h0), dz)], 0
        )
        d_window_kernel = tf.cast(tf.einsum("tbh,tbk->hk", hs, dp), window_kernel.dtype)
        d_window_bias = tf.cast(tf.reduce_sum(dp, [0, 1]), window_bias.dtype)
        return (tf.cast(dz, x_proj.dtype), d_recurrent, d_window_kernel, d_window_bias,
                dh0, dc0, dkappa0, dw0, None, None)

    return (hs, ws, kappas, phis, h_last, c_last, kappa_last, w_last), grad


@tf.custom_gradient
def lstm_recurrence(proj, recurrent, h0, c0):
    """An LSTM over precomputed input projections, with a hand-written gradient.

    Args:
      proj: `[T, B, 4H]` input projections `x_t W + b` (gate order i, f, g, o).
      recurrent: `[H, 4H]` recurrent kernel `U` (its dtype sets the matmuls').
      h0, c0: `[B, H]` float32 initial state.

    Returns:
      `(hs [T, B, H], h_T, c_T)`, float32.

    The backward pass runs one matmul per step (`dz_t U^T`) and computes the
    kernel's gradient after the loop as one large matmul over all steps,
    `sum_t h_{t-1}^T dz_t`; automatic differentiation of the loop would
    accumulate it step by step in `[H, B] x [B, 4H]` products, whose inner
    dimension (the batch) is too small to run fast.
    """
    proj = tf.convert_to_tensor(proj)
    recurrent = tf.convert_to_tensor(recurrent)
    steps = tf.shape(proj)[0]
    hs, h_last, c_last, (cs, gates) = _lstm_loop(
        lambda t: proj[t], steps, recurrent, h0, c0, save_for_backward=True
    )  # [T, B, H], ..., [T, B, H|4H]

    def grad(d_hs, d_h_last, d_c_last):
        recurrent_t = tf.transpose(recurrent)
        d_hs = tf.cast(d_hs, tf.float32)
        dz = tf.TensorArray(proj.dtype, size=steps)

        def backward(t, dh, dc, dz):
            dh = dh + d_hs[t]
            dz_t, dc = lstm_gate_grads(gates[t], cs[t], previous(cs, c0, t), dh, dc)
            dz_t = tf.cast(dz_t, proj.dtype)
            dh = tf.cast(tf.matmul(tf.cast(dz_t, recurrent.dtype), recurrent_t), tf.float32)
            return t - 1, dh, dc, dz.write(t, dz_t)

        _, dh0, dc0, dz = tf.while_loop(
            lambda t, *_: t >= 0,
            backward,
            (steps - 1, tf.cast(d_h_last, tf.float32), tf.cast(d_c_last, tf.float32), dz),
        )
        dz = dz.stack()  # [T, B, 4H]
        d_recurrent = shifted_product(
            tf.cast(hs, recurrent.dtype), tf.cast(h0, recurrent.dtype), tf.cast(dz, recurrent.dtype)
        )
        return dz, d_recurrent, dh0, dc0

    return (hs, h_last, c_last), grad


@keras.saving.register_keras_serializable(package="hwtf")
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
        # How `call`'s loops are differentiated: "handwritten" (the
        # `custom_gradient`s above) or "autodiff" (TensorFlow's gradient of
        # the same loops). Not part of the model: the two compute the same
        # gradients (tests/test_recurrence.py); `benchmarks/train_step.py
        # --gradients` times both, and the hand-written ones are the faster
        # in either precision (README, "Speed"), so training uses them.
        self.gradients = "handwritten"
        # How `call` lays its loops out: "layered" (one loop per layer) or
        # "wavefront" (hwtf/layers/wavefront.py: all layers in one loop; a
        # synthesis stack of 2 or more layers, hand-written gradients). Not
        # part of the model either; `python -m hwtf.train --layout` sets it.
        self.layout = "layered"
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
        h, c = lstm_update(tf.cast(z, tf.float32), c)
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

        if self.gradients not in GRADIENTS:
            raise ValueError(f"gradients must be one of {GRADIENTS}, got {self.gradients!r}")
        autodiff = self.gradients == "autodiff"
        windowed = windowed_lstm_recurrence_autodiff if autodiff else windowed_lstm_recurrence
        recurrence = lstm_recurrence_autodiff if autodiff else lstm_recurrence
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "wavefront" and self.conditional and self.lstm_layers > 1 and not autodiff:
            return self._wavefront(x_time, x_proj, recurrent, state, chars_onehot, char_mask)
        if self.conditional:
            layer_out, window, kappas, phis, h1, c1, kappa, w = windowed(
                x_proj, recurrent, tf.convert_to_tensor(self.window.kernel), tf.convert_to_tensor(self.window.bias),
                state.h[0], state.c[0], state.kappa, state.w, chars_onehot, char_mask,
            )
        else:
            layer_out, h1, c1 = recurrence(x_proj, recurrent, state.h[0], state.c[0])
            window = tf.zeros([steps, batch, 0])
            kappas = tf.zeros([steps, batch, 0])
            phis = tf.zeros([steps, batch, 0])
            kappa, w = state.kappa, state.w
        outputs, hs_final, cs_final = [layer_out], [h1], [c1]

        for n in range(1, self.lstm_layers):
            kernel = tf.cast(self.kernels[n], dtype)
            below = tf.concat([x_time, tf.cast(window, dtype), tf.cast(layer_out, dtype)], -1)
            proj = tf.einsum("tbi,ij->tbj", below, kernel) + tf.cast(self.biases[n], dtype)
            layer_out, h, c = recurrence(proj, tf.cast(self.recurrent_kernels[n], dtype), state.h[n], state.c[n])
            outputs.append(layer_out)
            hs_final.append(h)
            cs_final.append(c)

        return self._outputs(outputs, phis, kappas, window, char_mask, StackState(tuple(hs_final), tuple(cs_final), kappa, w))

    def _outputs(self, outputs, phis, kappas, window, char_mask, state):
        to_batch = lambda x: tf.transpose(x, [1, 0, 2])
        return {
            "outputs": to_batch(tf.concat(outputs, -1)),
            "phi": to_batch(phis) * char_mask[:, None, :] if self.conditional else to_batch(phis),
            "kappa": to_batch(kappas),
            "window": to_batch(window),
            "state": state,
        }

    def _wavefront(self, x_time, x_proj, recurrent, state, chars_onehot, char_mask):
        """`call`'s loops as one wavefront (hwtf/layers/wavefront.py)."""
        dtype, n_layers = self.compute_dtype, self.lstm_layers
        projs, kernels = [], []
        for n in range(1, n_layers):
            kernel = tf.cast(self.kernels[n], dtype)
            projs.append(tf.einsum("tbi,ij->tbj", x_time, kernel[:3]) + tf.cast(self.biases[n], dtype))
            kernels.append(tf.concat([kernel[3:], tf.cast(self.recurrent_kernels[n], dtype)], 0))
        results = wavefront_recurrence(
            x_proj, recurrent, tf.convert_to_tensor(self.window.kernel), tf.convert_to_tensor(self.window.bias),
            state.kappa, state.w, chars_onehot, char_mask, *state.h, *state.c, *projs, *kernels,
        )
        hs, (window, kappas, phis) = results[:n_layers], results[n_layers : n_layers + 3]
        h_last, c_last = results[n_layers + 3 : 2 * n_layers + 3], results[2 * n_layers + 3 : 3 * n_layers + 3]
        kappa, w = results[3 * n_layers + 3 :]
        return self._outputs(list(hs), phis, kappas, window, char_mask, StackState(tuple(h_last), tuple(c_last), kappa, w))

    # -- one step -----------------------------------------------------------

    def step_weights(self) -> tuple:
        """The weights of `step`, cast and concatenated once, outside the
        sampling loop: first layer `(x_kernel, recurrent, bias)`, then per
        upper layer `(kernel, bias)` with the input and recurrent kernels
        stacked, so that each layer is one matmul a step."""
        dtype = self.compute_dtype
        x_kernel, recurrent = self._first_layer_weights(dtype)
        upper = tuple(
            (
                tf.concat([tf.cast(self.kernels[n], dtype), tf.cast(self.recurrent_kernels[n], dtype)], 0),
                tf.cast(self.biases[n], dtype),
            )
            for n in range(1, self.lstm_layers)
        )
        return (x_kernel, recurrent, tf.cast(self.biases[0], dtype)), upper

    def step(self, x, state: StackState, chars_onehot=None, char_mask=None, weights=None):
        """One step for sampling.

        Args:
          x: `[B, 3]` the current offset.
          state: the previous `StackState`.
          chars_onehot, char_mask: from `encode_chars` (synthesis only).
          weights: `step_weights()`, computed once before a loop of steps.

        Returns:
          `(outputs [B, L*H], state, phi [B, U])`; `phi` is not masked (see
          `GaussianWindow.call`), `[B, 0]` for the prediction stack.
        """
        (x_kernel, recurrent, bias), upper = weights or self.step_weights()
        dtype = x_kernel.dtype
        x = tf.cast(x, dtype)
        x_proj = tf.matmul(x, x_kernel) + bias
        h, c, kappa, w, phi = self._first_step(
            x_proj, state.h[0], state.c[0], state.kappa, state.w, recurrent, chars_onehot, char_mask
        )
        hs, cs, below = [h], [c], h
        for n, (kernel, bias) in enumerate(upper, start=1):
            inputs = tf.concat([x, tf.cast(w, dtype), tf.cast(below, dtype), tf.cast(state.h[n], dtype)], -1)
            z = tf.matmul(inputs, kernel) + bias
            below, c_n = lstm_update(tf.cast(z, tf.float32), state.c[n])
            hs.append(below)
            cs.append(c_n)
        return tf.concat(hs, -1), StackState(tuple(hs), tuple(cs), kappa, w), phi

    def compute_output_shape(self, offsets_shape, chars_shape=None, char_lengths_shape=None, initial_state_shape=None):
        """`outputs [B, T, L*H]`, `phi [B, T, U]`, `kappa [B, T, K]` and
        `window [B, T, V]` (`[B, T, 0]` without a window). The final state, a
        `StackState`, is left out: Keras shapes are of tensors, not tuples."""
        batch, time = offsets_shape[0], offsets_shape[1]
        chars = chars_shape[1] if self.conditional and chars_shape is not None else 0
        return {
            "outputs": (batch, time, self.output_size),
            "phi": (batch, time, chars),
            "kappa": (batch, time, self.window_mixtures),
            "window": (batch, time, self.alphabet_size),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "lstm_units": self.lstm_units,
            "lstm_layers": self.lstm_layers,
            "window_mixtures": self.window_mixtures,
            "alphabet_size": self.alphabet_size,
        }
