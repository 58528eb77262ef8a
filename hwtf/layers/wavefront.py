"""Graves's synthesis stack as a wavefront: every layer in one loop.

`LSTMStack` normally runs one `tf.while_loop` per layer, each step one small
dependent product (`layered`). Here one loop of T + L - 1 iterations runs
them all (`wavefront`): at iteration s layer n works on time s - n, reading
layer n - 1's output of the iteration before. Each iteration's L products
are independent of one another, so they overlap, at the price of reading the
layer below inside the loop (one `[B, V + 2H] x [V + 2H, 4H]` product per
upper layer instead of a large product outside it). The backward pass runs
the same way in reverse, hand-written as `hwtf.layers.lstm_stack.lstm_recurrence`'s: one product
per layer and iteration, the kernels' gradients as large products after it.
Same weights and the same mathematics as the layered stack
(tests/test_recurrence.py checks outputs and gradients against it).
"""

from __future__ import annotations

import tensorflow as tf

from hwtf.layers.cell import lstm_gate_grads, lstm_gates, previous, shifted_product, window_step_grads
from hwtf.layers.window import window_step


@tf.custom_gradient
def wavefront_recurrence(x_proj, recurrent, window_kernel, window_bias, kappa0, w0, chars_onehot, char_mask, *layers):
    """The first layer with the window and L - 1 upper layers, as a wavefront.

    Args:
      x_proj, recurrent, window_kernel, window_bias, kappa0, w0, chars_onehot,
        char_mask: the first layer and window, as for `windowed_lstm_recurrence`.
      *layers: `h0` of each of the L layers, then their `c0` (float32, `[B,
        H]`), then for each upper layer `proj [T, B, 4H]` (its input offsets'
        projection and bias), then for each its kernel `[V + 2H, 4H]` for
        `[w_t, h^{n-1}_t, h^n_{t-1}]` (the input kernel's window and
        layer-below rows over the recurrent kernel).

    Returns:
      `(hs of each layer [T, B, H]..., ws, kappas, phis, h_T..., c_T...,
      kappa_T, w_T)`.
    """
    n_layers = (len(layers) + 2) // 4
    if n_layers < 2 or len(layers) != 4 * n_layers - 2:
        raise ValueError(f"a wavefront needs 2 or more layers' states, projections and kernels, got {len(layers)} tensors")
    h0s, c0s = layers[:n_layers], layers[n_layers : 2 * n_layers]
    projs, kernels = layers[2 * n_layers : 3 * n_layers - 1], layers[3 * n_layers - 1 :]
    x_proj, recurrent = tf.convert_to_tensor(x_proj), tf.convert_to_tensor(recurrent)
    projs, kernels = [tf.convert_to_tensor(p) for p in projs], [tf.convert_to_tensor(k) for k in kernels]
    steps = tf.shape(x_proj)[0]
    iterations = steps + n_layers - 1
    units = h0s[0].shape[-1]
    v_size = w0.shape[-1]
    new_array = lambda: tf.TensorArray(tf.float32, size=iterations)
    # Written at the iteration's index: layer n's time t lands at t + n.
    layer_arrays = tuple((new_array(), new_array(), new_array()) for _ in range(n_layers))  # h, c, gates
    window_arrays = tuple(new_array() for _ in range(4))  # w, kappa, phi, params

    def forward(s, hs, cs, kappa, recent_ws, layer_arrays, window_arrays):
        # recent_ws[k] is the window at time s - 1 - k: layer n reads recent_ws[n - 1].
        new_hs, new_cs, new_layer_arrays = [], [], []
        valid = s < steps
        t = tf.minimum(s, steps - 1)
        z = x_proj[t] + tf.matmul(tf.cast(tf.concat([recent_ws[0], hs[0]], -1), recurrent.dtype), recurrent)
        h, c, gates = lstm_gates(tf.cast(z, tf.float32), cs[0], units)
        w, phi, new_kappa, params = window_step(h, kappa, window_kernel, window_bias, chars_onehot, char_mask)
        new_hs.append(tf.where(valid, h, hs[0]))
        new_cs.append(tf.where(valid, c, cs[0]))
        new_layer_arrays.append(tuple(a.write(s, x) for a, x in zip(layer_arrays[0], (h, c, gates))))
        window_arrays = tuple(a.write(s, x) for a, x in zip(window_arrays, (w, new_kappa, phi, params)))
        for n in range(1, n_layers):
            valid = (s >= n) & (s < steps + n)
            t = tf.clip_by_value(s - n, 0, steps - 1)
            inputs = tf.concat([recent_ws[n - 1], hs[n - 1], hs[n]], -1)
            z = projs[n - 1][t] + tf.matmul(tf.cast(inputs, kernels[n - 1].dtype), kernels[n - 1])
            h, c, gates = lstm_gates(tf.cast(z, tf.float32), cs[n], units)
            new_hs.append(tf.where(valid, h, hs[n]))
            new_cs.append(tf.where(valid, c, cs[n]))
            new_layer_arrays.append(tuple(a.write(s, x) for a, x in zip(layer_arrays[n], (h, c, gates))))
        recent_ws = (tf.where(s < steps, w, recent_ws[0]),) + recent_ws[:-1]
        kappa = tf.where(s < steps, new_kappa, kappa)
        return s + 1, tuple(new_hs), tuple(new_cs), kappa, recent_ws, tuple(new_layer_arrays), window_arrays

    _, h_last, c_last, kappa_last, recent_ws, layer_arrays, window_arrays = tf.while_loop(
        lambda s, *_: s < iterations,
        forward,
        (0, tuple(h0s), tuple(c0s), kappa0, (w0,) * (n_layers - 1), layer_arrays, window_arrays),
    )
    w_last = recent_ws[0]
    # Layer n's times 0..T-1 sit at iterations n..n+T-1.
    saved = [[a.stack()[n : n + steps] for a in arrays] for n, arrays in enumerate(layer_arrays)]
    ws, kappas, phis, params = (a.stack()[:steps] for a in window_arrays)
    hs = [layer[0] for layer in saved]

    def grad(*upstream):
        d_hs = upstream[:n_layers]
        d_ws, d_kappas, d_phis = upstream[n_layers : n_layers + 3]
        d_h_last = upstream[n_layers + 3 : 2 * n_layers + 3]
        d_c_last = upstream[2 * n_layers + 3 : 3 * n_layers + 3]
        d_kappa_last, d_w_last = upstream[3 * n_layers + 3 :]
        as_f32 = lambda d, like: tf.zeros_like(like) if d is None else tf.cast(d, tf.float32)
        at = lambda d, t: None if d is None else tf.cast(d[t], tf.float32)
        plus = lambda x, d: x if d is None else x + d
        recurrent_t = tf.transpose(recurrent)  # [4H, V + H]
        kernels_t = [tf.transpose(k) for k in kernels]  # [4H, V + 2H]
        window_kernel_t = tf.transpose(tf.cast(window_kernel, tf.float32))  # [3K, H]
        positions = tf.range(tf.shape(chars_onehot)[1], dtype=tf.float32)
        new_dz_array = lambda dtype: tf.TensorArray(dtype, size=iterations)
        dz_arrays = (new_dz_array(x_proj.dtype),) + tuple(new_dz_array(p.dtype) for p in projs)
        dp_array = new_dz_array(tf.float32)
        zeros_h = tf.zeros_like(h0s[0])

        def backward(r, dh_rec, dc, dh_above, dkappa, dw_rec, pending_dw, dz_arrays, dp_array):
            # Layer n works on time T + L - 2 - r - n. dh_above[n] reaches
            # layer n from layer n + 1 at the same time (one iteration
            # before); pending_dw[j] is what the upper layers sent to the
            # window at layer 1's time minus j.
            new_dh_rec, new_dc, new_dh_above, sent_dw = list(dh_rec), list(dc), [None] * n_layers, [None] * n_layers
            new_arrays = list(dz_arrays)
            for n in range(n_layers):
                t_raw = steps + n_layers - 2 - r - n
                valid = (t_raw >= 0) & (t_raw < steps)
                t = tf.clip_by_value(t_raw, 0, steps - 1)
                cs, gates = saved[n][1], saved[n][2]
                dh = plus(dh_rec[n], at(d_hs[n], t))
                if n + 1 < n_layers:
                    dh = dh + dh_above[n]
                if n == 0:
                    dw = plus(dw_rec + pending_dw[0], at(d_ws, t))
                    dp, dkappa_new = window_step_grads(
                        params[t], kappas[t], dw, plus(dkappa, at(d_kappas, t)),
                        chars_onehot, char_mask, positions, at(d_phis, t),
                    )
                    dh = dh + tf.matmul(dp, window_kernel_t)
                dz, dc_new = lstm_gate_grads(gates[t], cs[t], previous(cs, c0s[n], t), dh, dc[n])
                dz = tf.where(valid, dz, tf.zeros_like(dz))
                new_dc[n] = tf.where(valid, dc_new, dc[n])
                if n == 0:
                    dz = tf.cast(dz, x_proj.dtype)
                    d_in = tf.cast(tf.matmul(tf.cast(dz, recurrent.dtype), recurrent_t), tf.float32)
                    dw_rec = tf.where(valid, d_in[:, :v_size], dw_rec)
                    new_dh_rec[0] = tf.where(valid, d_in[:, v_size:], dh_rec[0])
                    dkappa = tf.where(valid, dkappa_new, dkappa)
                    dp_array = dp_array.write(r, tf.where(valid, dp, tf.zeros_like(dp)))
                else:
                    dz = tf.cast(dz, projs[n - 1].dtype)
                    d_in = tf.cast(tf.matmul(tf.cast(dz, kernels[n - 1].dtype), kernels_t[n - 1]), tf.float32)
                    sent_dw[n] = d_in[:, :v_size]
                    new_dh_above[n - 1] = d_in[:, v_size : v_size + units]
                    new_dh_rec[n] = tf.where(valid, d_in[:, v_size + units :], dh_rec[n])
                new_arrays[n] = dz_arrays[n].write(r, dz)
            # Layer n's window gradient is for layer 1's time minus n.
            pending_dw = tuple(
                (pending_dw[j + 1] if j + 1 < n_layers - 1 else 0.0) + sent_dw[j + 1] for j in range(n_layers - 1)
            )
            new_dh_above = tuple(new_dh_above[: n_layers - 1])
            return (r + 1, tuple(new_dh_rec), tuple(new_dc), new_dh_above, dkappa, dw_rec, pending_dw,
                    tuple(new_arrays), dp_array)

        zeros_w = tf.zeros_like(w0)
        _, dh0s, dc0s, _, dkappa0, dw0, _, dz_arrays, dp_array = tf.while_loop(
            lambda r, *_: r < iterations,
            backward,
            (0, tuple(as_f32(d, h0s[0]) for d in d_h_last), tuple(as_f32(d, c0s[0]) for d in d_c_last),
             (zeros_h,) * (n_layers - 1), as_f32(d_kappa_last, kappa0), as_f32(d_w_last, w0),
             (zeros_w,) * (n_layers - 1), dz_arrays, dp_array),
        )
        # Layer n's time t was iteration T + L - 2 - n - t: reverse.
        dzs = [tf.reverse(a.stack()[n_layers - 1 - n : steps + n_layers - 1 - n], [0]) for n, a in enumerate(dz_arrays)]
        dp = tf.reverse(dp_array.stack()[n_layers - 1 :], [0])
        cast = lambda x, like: tf.cast(x, like.dtype)
        dz0 = cast(dzs[0], recurrent)
        d_recurrent = tf.concat(
            [shifted_product(cast(ws, recurrent), cast(w0, recurrent), dz0),
             shifted_product(cast(hs[0], recurrent), cast(h0s[0], recurrent), dz0)], 0
        )
        d_window_kernel = tf.cast(tf.einsum("tbh,tbk->hk", hs[0], dp), window_kernel.dtype)
        d_window_bias = tf.cast(tf.reduce_sum(dp, [0, 1]), window_bias.dtype)
        d_kernels = []
        for n in range(1, n_layers):
            k, dz = kernels[n - 1], cast(dzs[n], kernels[n - 1])
            d_kernels.append(tf.concat([
                tf.einsum("tbi,tbg->ig", cast(ws, k), dz),
                tf.einsum("tbi,tbg->ig", cast(hs[n - 1], k), dz),
                shifted_product(cast(hs[n], k), cast(h0s[n], k), dz),
            ], 0))
        return (tf.cast(dzs[0], x_proj.dtype), d_recurrent, d_window_kernel, d_window_bias, dkappa0, dw0, None, None,
                *dh0s, *dc0s, *[cast(dzs[n], projs[n - 1]) for n in range(1, n_layers)], *d_kernels)

    outputs = (*hs, ws, kappas, phis, *h_last, *c_last, kappa_last, w_last)
    return outputs, grad
