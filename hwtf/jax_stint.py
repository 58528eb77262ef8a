"""A stint of the training campaign in JAX, for a machine without TensorFlow.

The GPU machine this project is sometimes lent has JAX but no TensorFlow,
and nothing can be installed on it from outside (TensorFlow's wheels with
their CUDA libraries are tens of times larger than what a call can carry).
This module is hwtf's synthesis model, loss and update written again in JAX
and numpy alone (it imports neither TensorFlow nor the rest of hwtf but
`hwtf.packed`'s bfloat16 rounding and log8 codes and `hwtf.unit_weights`' masks of a
widening's new units, which are numpy), so that
such a machine can train the run on:

- the model of `hwtf.layers.LSTMStack` with the window and the
  `MixtureDensityHead`, float32;
- the loss of `hwtf.model.nll` under pure teacher forcing: the summed NLL of
  every point after a line's first, divided by the batch's points, with the
  mixture density of `hwtf.distributions` written out (`log_prob`, the same
  Cholesky form as TFP's `MultivariateNormalTriL`);
- the update of `hwtf.train.Trainer` with `--optimizer=adam`: the gradient's
  global norm clipped to `clipnorm`, an update with a non-finite loss or
  gradient skipped (and counted), then Keras's Adam (`adam_update`); with
  the recipe's weight noise (`--weight_noise`), the gradient taken at the
  weights plus a Gaussian draw (`weight_noises`, JAX's own random numbers)
  and applied to the weights without it; with the recipe's
  `--new_units_rate`, the updates of the new units' weights times it
  (`hwtf.unit_weights.rate_scales`); with the recipe's `--ema_decay`, the
  weights' moving average as `hwtf.train.Trainer` keeps it (`ema_update`),
  started afresh at the weights the stint begins from (the run's own does
  not travel: a call carries 64 MiB) and returned beside them;
- batches of lines of similar length from length buckets, as
  `hwtf.data.dataset.make_dataset`, each padded to its bucket's longest line
  so that XLA compiles one step per bucket.

`tests/test_jax_stint.py` checks the loss, the gradient and a whole update
against the TensorFlow code on the same weights and batch. The run's state
travels as the plain arrays that `python -m hwtf.stint_state export` writes
and `python -m hwtf.stint_state import` turns back into the run's next
checkpoint (README, "Training on a lent GPU"):

    python -m hwtf.jax_stint --state=DIR --out=DIR --minutes=8
"""

from __future__ import annotations

import io
import json
import lzma
import math
import os
import time

import numpy as np

from hwtf.packed import from_bfloat16_bits, from_delta8, from_log8, to_delta8, to_log8

# The state's files (see `write_state`): a lent machine's call returns at
# most 8 files of at most 16 MiB, 64 MiB in all, and carries at most 64 MiB
# of the tree.
WEIGHTS, ADAM_M, ADAM_V, META, DATA = "weights", "adam_m", "adam_v", "meta.json", "data.npz.xz"
# The weights' moving average, where the recipe keeps one: int8 codes of its
# difference from the weights (`hwtf.packed.to_delta8`), 9 MB for the 3x640
# against 36 MB as float32, which would pass the 8 files and 64 MiB a call
# returns.
AVERAGE = "average"
_DELTA8_SCALES = "@delta8_scales"  # the key suffix of a delta8 array's row scales
SHARD_BYTES = 15 * 2**20
# Adam's second moments travel as 8-bit codes of their base-2 logarithm
# (`hwtf.packed.to_log8`): the 3x640 network's weights (36 MB), moments in
# bfloat16 (36 MB) and training lines (14 MB) were more than a call carries.
# The first moments (Adam's m, a memory of about ten updates) do not
# travel: they come back as zeros, as from a checkpoint packed without them
# (`hwtf.packed`, drop_momentum).
_LOG8_RANGE = "@log2_range"  # the key suffix of a log8 array's [lo, hi]

SIGMA_MIN = 1e-3  # hwtf.distributions
RHO_MAX = 1.0 - 1e-4
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # keras.optimizers.Adam's defaults


def weight_names(layers: int) -> list[str]:
    """The model's weights, in the order of its `trainable_variables`."""
    names = []
    for n in range(layers):
        names += [f"kernel_{n}", f"recurrent_kernel_{n}", f"bias_{n}"]
    return names + ["window_kernel", "window_bias", "head_kernel", "head_bias"]


# -- the model ----------------------------------------------------------------


def _lstm(z, c, units):
    import jax

    i = jax.nn.sigmoid(z[:, :units])
    f = jax.nn.sigmoid(z[:, units : 2 * units])
    g = jax.numpy.tanh(z[:, 2 * units : 3 * units])
    o = jax.nn.sigmoid(z[:, 3 * units :])
    c = f * c + i * g
    return o * jax.numpy.tanh(c), c


def head(params: dict, inputs, chars_onehot, char_mask, layers: int, unroll: int = 1, wavefront: bool = True):
    """The raw mixture-density head `[B, T, 1 + 6M]` for `inputs [B, T, 3]`
    (normalised offsets), `chars_onehot [B, U, V]` and `char_mask [B, U]`,
    from a zero state: `HandwritingModel.call`'s `head`.

    `wavefront` runs all layers in one scan of T + L - 1 iterations, layer n
    (from 0) at time t - n in iteration t, instead of one scan of T
    iterations per layer: the same arithmetic in a third of the sequential
    iterations, which is what a GPU waits on at batch 32. Layer n > 0 then
    projects its inputs inside the loop rather than for all steps at once."""
    import jax
    import jax.numpy as jnp

    batch = inputs.shape[0]
    units = params["recurrent_kernel_0"].shape[0]
    k = params["window_bias"].shape[0] // 3
    x = jnp.swapaxes(inputs, 0, 1)  # [T, B, 3]
    steps = x.shape[0]
    kernel = params["kernel_0"]
    x_proj = x @ kernel[:3] + params["bias_0"]
    recurrent = jnp.concatenate([kernel[3:], params["recurrent_kernel_0"]], 0)  # [V + H, 4H] for [w, h]
    positions = jnp.arange(chars_onehot.shape[1], dtype=jnp.float32)

    def first(carry, xp):
        """Layer 0 and the window at one step: `(h, c, kappa, w)`."""
        h, c, kappa, w = carry
        h, c = _lstm(xp + jnp.concatenate([w, h], -1) @ recurrent, c, units)
        window = jnp.exp(h @ params["window_kernel"] + params["window_bias"])
        alpha, beta, step = window[:, :k], window[:, k : 2 * k], window[:, 2 * k :]
        kappa = kappa + step
        distance = kappa[:, :, None] - positions[None, None, :]  # [B, K, U]
        phi = jnp.sum(alpha[:, :, None] * jnp.exp(-beta[:, :, None] * jnp.square(distance)), 1)
        return h, c, kappa, jnp.einsum("bu,buv->bv", phi * char_mask, chars_onehot)

    zeros = jnp.zeros((batch, units), jnp.float32)
    w0 = jnp.zeros((batch, chars_onehot.shape[2]), jnp.float32)
    start = (zeros, zeros, jnp.zeros((batch, k), jnp.float32), w0)
    if wavefront:
        lag = layers - 1
        shifted = lambda a, n: jnp.pad(a, ((n, lag - n), (0, 0), (0, 0)))  # [T + lag, ...], a[t - n] at t
        delayed = tuple(shifted(x, n) for n in range(1, layers))

        def body(carry, inputs):
            t, xp, xs = inputs
            state, upper, ws = carry  # ws: the window of iterations t - 1, t - 2, ...
            new = first(state, xp)
            below, new_upper = state[0], []  # each layer reads the one below as it was at t - 1
            for n in range(1, layers):
                h, c = upper[n - 1]
                z = (jnp.concatenate([xs[n - 1], ws[n - 1], below], -1) @ params[f"kernel_{n}"]
                     + params[f"bias_{n}"] + h @ params[f"recurrent_kernel_{n}"])
                h_new, c_new = _lstm(z, c, units)
                live = t >= n  # layer n starts at iteration n
                new_upper.append((jnp.where(live, h_new, h), jnp.where(live, c_new, c)))
                below = h
            ws = ((new[3],) + ws)[:lag]
            return (new, tuple(new_upper), ws), (new[0],) + tuple(h for h, _ in new_upper)

        init = (start, ((zeros, zeros),) * lag, (w0,) * lag)
        _, hs = jax.lax.scan(body, init, (jnp.arange(steps + lag), shifted(x_proj, 0), delayed), unroll=unroll)
        outputs = [hs[n][n : n + steps] for n in range(layers)]
    else:
        def scan_first(carry, xp):
            carry = first(carry, xp)
            return carry, (carry[0], carry[3])

        _, (below, window) = jax.lax.scan(scan_first, start, x_proj, unroll=unroll)
        outputs = [below]
        for n in range(1, layers):
            proj = jnp.concatenate([x, window, below], -1) @ params[f"kernel_{n}"] + params[f"bias_{n}"]
            recurrent_n = params[f"recurrent_kernel_{n}"]

            def upper(carry, zp, recurrent_n=recurrent_n):
                h, c = _lstm(zp + carry[0] @ recurrent_n, carry[1], units)
                return (h, c), h

            _, below = jax.lax.scan(upper, (zeros, zeros), proj, unroll=unroll)
            outputs.append(below)
    out = jnp.concatenate(outputs, -1) @ params["head_kernel"] + params["head_bias"]
    return jnp.swapaxes(out, 0, 1)


def log_prob(raw, targets):
    """`(offset_log_prob, pen_log_prob)` `[B, T]` of `targets [B, T, 3]`
    under raw head outputs `[B, T, 1 + 6M]` (`hwtf.distributions.log_prob`
    at bias 0)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    m = (raw.shape[-1] - 1) // 6
    pen_logit = raw[..., 0]
    pi_logits = raw[..., 1 : 1 + m]
    mu = raw[..., 1 + m : 1 + 3 * m].reshape(raw.shape[:-1] + (m, 2))
    sigma = jnp.exp(raw[..., 1 + 3 * m : 1 + 5 * m].reshape(raw.shape[:-1] + (m, 2))) + SIGMA_MIN
    rho = RHO_MAX * jnp.tanh(raw[..., 1 + 5 * m :])
    # N(x | mu, L L^T) with L = [[s1, 0], [rho s2, s2 sqrt(1 - rho^2)]]: solve L y = x - mu.
    s1, s2 = sigma[..., 0], sigma[..., 1]
    root = jnp.sqrt(1.0 - jnp.square(rho))
    y1 = (targets[..., None, 0] - mu[..., 0]) / s1
    y2 = (targets[..., None, 1] - mu[..., 1] - rho * s2 * y1) / (s2 * root)
    component = -math.log(2.0 * math.pi) - jnp.log(s1) - jnp.log(s2 * root) - 0.5 * (jnp.square(y1) + jnp.square(y2))
    offset = logsumexp(jax.nn.log_softmax(pi_logits, -1) + component, -1)
    pen = targets[..., 2] * pen_logit - jax.nn.softplus(pen_logit)  # Bernoulli(logits)
    return offset, pen


def nll_sums(params: dict, batch: dict, layers: int, unroll: int = 1, wavefront: bool = True):
    """`(nll_sum, (offset_sum, pen_sum, points))` of a batch under pure
    teacher forcing, as `hwtf.model.nll`'s sums."""
    import jax
    import jax.numpy as jnp

    offsets = batch["offsets"]
    inputs, targets = offsets[:, :-1], offsets[:, 1:]
    mask = (jnp.arange(targets.shape[1])[None, :] < batch["lengths"][:, None] - 1).astype(jnp.float32)
    alphabet = params["kernel_0"].shape[0] - 3
    onehot = jax.nn.one_hot(batch["chars"], alphabet, dtype=jnp.float32)
    char_mask = (jnp.arange(batch["chars"].shape[1])[None, :] < batch["char_lengths"][:, None]).astype(jnp.float32)
    offset_lp, pen_lp = log_prob(head(params, inputs, onehot, char_mask, layers, unroll, wavefront), targets)
    offset_sum, pen_sum = -jnp.sum(offset_lp * mask), -jnp.sum(pen_lp * mask)
    return offset_sum + pen_sum, (offset_sum, pen_sum, jnp.sum(mask))


# -- the update ---------------------------------------------------------------


def adam_update(params, m, v, grads, iterations, learning_rate, scales=None):
    """Keras 3's `Adam.update_step` for every weight: `(params, m, v)`; with
    `scales` (`hwtf.unit_weights.rate_scales`), each update of a weight named there
    times its scale, as `hwtf.train --new_units_rate` does."""
    import jax.numpy as jnp

    t = (iterations + 1).astype(jnp.float32)
    alpha = learning_rate * jnp.sqrt(1.0 - BETA_2**t) / (1.0 - BETA_1**t)
    new_m = {k: m[k] + (grads[k] - m[k]) * (1.0 - BETA_1) for k in params}
    new_v = {k: v[k] + (jnp.square(grads[k]) - v[k]) * (1.0 - BETA_2) for k in params}
    update = {k: new_m[k] * alpha / (jnp.sqrt(new_v[k]) + EPSILON) for k in params}
    for k, scale in (scales or {}).items():
        update[k] = update[k] * scale
    new_params = {k: params[k] - update[k] for k in params}
    return new_params, new_m, new_v


def weight_noises(params: dict, stddev: float, key) -> dict:
    """`hwtf.train.weight_noises` for the JAX stint: a zero-mean Gaussian of
    standard deviation `stddev` for each weight, from `key` (the stint's
    seed folded with the step), the same again from the same key."""
    import jax

    return {name: stddev * jax.random.normal(jax.random.fold_in(key, i), params[name].shape, params[name].dtype)
            for i, name in enumerate(sorted(params))}


def ema_update(average: dict, params: dict, updates, decay: float) -> dict:
    """`hwtf.train.Trainer`'s moving average after its `updates`-th update
    (counting this one, from 1): the bias-corrected average c_n = b c_(n-1)
    + (1 - b) w_n with b = d (1 - d^(n-1)) / (1 - d^n), 0 at the first
    update, so that it starts at the weights."""
    import jax.numpy as jnp

    n = jnp.asarray(updates, jnp.float32)
    keep = decay * (1.0 - decay ** (n - 1.0)) / (1.0 - decay**n)
    return {k: keep * average[k] + (1.0 - keep) * p for k, p in params.items()}


def make_train_step(layers: int, clipnorm: float, unroll: int = 1, wavefront: bool = True, weight_noise: float = 0.0,
                    ema_decay: float = 0.0):
    """A compiled update `(state, batch[, noise_key]) -> (state, metrics)`;
    `state` is the dict `params, m, v, iterations, skipped, learning_rate`,
    with `average` and `average_updates` too where `ema_decay` > 0 (the
    weights' moving average, `ema_update`, moved by each update applied).
    With `weight_noise` > 0 the gradient is taken at the weights plus
    `weight_noises(params, weight_noise, noise_key)` (a key each step).
    `scales`, where given, multiply the updates (`adam_update`)."""
    import jax
    import jax.numpy as jnp

    def step(state, batch, noise_key=None, scales=None):
        at = state["params"]
        if weight_noise:
            if noise_key is None:
                raise ValueError(f"weight_noise={weight_noise}: the step needs a noise_key")
            noise = weight_noises(at, weight_noise, noise_key)
            at = {k: p + noise[k] for k, p in at.items()}
        (total, (offset_sum, pen_sum, points)), grads = jax.value_and_grad(nll_sums, has_aux=True)(
            at, batch, layers, unroll, wavefront
        )
        points = jnp.maximum(points, 1.0)
        grads = {k: g / points for k, g in grads.items()}
        loss = total / points
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in grads.values()))
        finite = jnp.isfinite(loss) & jnp.isfinite(norm)
        scale = clipnorm / jnp.maximum(norm, clipnorm) if clipnorm else 1.0  # tf.clip_by_global_norm
        clipped = {k: g * scale for k, g in grads.items()}
        params, m, v = adam_update(state["params"], state["m"], state["v"], clipped, state["iterations"],
                                   state["learning_rate"], scales)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        new_state = {
            "params": keep(params, state["params"]),
            "m": keep(m, state["m"]),
            "v": keep(v, state["v"]),
            "iterations": state["iterations"] + finite.astype(state["iterations"].dtype),
            "skipped": state["skipped"] + (~finite).astype(state["skipped"].dtype),
            "learning_rate": state["learning_rate"],
        }
        if ema_decay:
            updates = state["average_updates"] + finite.astype(state["average_updates"].dtype)
            new_state["average"] = keep(ema_update(state["average"], new_state["params"], updates, ema_decay),
                                        state["average"])
            new_state["average_updates"] = updates
        metrics = {"loss": loss, "offset_nll": offset_sum / points, "pen_nll": pen_sum / points,
                   "grad_norm": norm, "skipped": ~finite}
        return new_state, metrics

    return jax.jit(step, donate_argnums=0)


# -- data ---------------------------------------------------------------------


def read_data(path: str) -> dict:
    """The arrays `hwtf.stint_state.write_data` wrote (an xz-compressed `.npz`)."""
    with open(path, "rb") as f:
        with np.load(io.BytesIO(lzma.decompress(f.read())), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def line_offsets(data: dict) -> np.ndarray:
    """All lines' raw offsets `[sum T, 3]`, float32, from `data`: `offsets`
    alone, or, where `whole` marks the lines whose offsets are whole numbers,
    `offsets [3, points]` for those lines' points (int16) and `offsets_float
    [3, points]` for the others' (see `hwtf.stint_state.data_arrays`)."""
    if "whole" not in data:
        return data["offsets"].astype(np.float32)
    mask = np.repeat(data["whole"].astype(bool), data["lengths"])
    offsets = np.empty((len(mask), 3), np.float32)
    offsets[mask], offsets[~mask] = data["offsets"].T, data["offsets_float"].T
    return offsets


class Batches:
    """Endless batches of training lines, shuffled each pass, from length
    buckets at quantiles of the lengths (as `make_dataset`): a batch is
    `batch_size` lines of one bucket, padded to that bucket's longest line
    (one compiled step per bucket) and to the longest text."""

    def __init__(self, data: dict, normalizer: dict, batch_size: int, buckets: int, seed: int):
        self.lengths = data["lengths"].astype(np.int64)
        self.char_lengths = data["char_lengths"].astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.char_starts = np.concatenate([[0], np.cumsum(self.char_lengths)])
        offsets = line_offsets(data)
        offsets[:, :2] = (offsets[:, :2] - np.float32(normalizer["mean"])) / np.float32(normalizer["std"])
        self.offsets, self.chars = offsets, data["chars"].astype(np.int32)
        self.batch_size = batch_size
        quantiles = np.linspace(0.0, 1.0, max(buckets, 1) + 1)[1:-1]
        boundaries = sorted(set(np.quantile(self.lengths, quantiles).astype(int) + 1))
        self.bucket = np.searchsorted(boundaries, self.lengths, side="right")
        self.ceilings = {b: int(self.lengths[self.bucket == b].max()) for b in np.unique(self.bucket)}
        self.max_chars = int(self.char_lengths.max())
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        waiting = {b: [] for b in self.ceilings}
        while True:
            for i in self.rng.permutation(len(self.lengths)):
                lines = waiting[self.bucket[i]]
                lines.append(i)
                if len(lines) == self.batch_size:
                    yield self.batch(lines, self.ceilings[self.bucket[i]])
                    lines.clear()

    def batch(self, lines, length: int) -> dict:
        b = len(lines)
        offsets = np.zeros((b, length, 3), np.float32)
        chars = np.zeros((b, self.max_chars), np.int32)
        for row, i in enumerate(lines):
            offsets[row, : self.lengths[i]] = self.offsets[self.starts[i] : self.starts[i + 1]]
            chars[row, : self.char_lengths[i]] = self.chars[self.char_starts[i] : self.char_starts[i + 1]]
        return {"offsets": offsets, "lengths": self.lengths[lines].astype(np.int32), "chars": chars,
                "char_lengths": self.char_lengths[lines].astype(np.int32)}


# -- the state's files ----------------------------------------------------------


def _shard_names(arrays: dict, limit: int) -> list[list[str]]:
    """`arrays`' names in runs of at most `limit` bytes (an array larger than
    that alone), in order."""
    shards, size = [[]], 0
    for name, x in arrays.items():
        if shards[-1] and size + x.nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += x.nbytes
    return shards


def state_file(stem: str, shard: int = 0) -> str:
    """The file of one group's `shard`: `weights.npz`, then `weights-1.npz`,
    ... where the group is split."""
    return f"{stem}.npz" if shard == 0 else f"{stem}-{shard}.npz"


def _read_group(state_dir: str, stem: str, step: int, names: list[str], near: dict | None = None) -> dict:
    """One group's arrays from its files, float32, each file checked to be
    of `step` and the group to hold exactly `names` (see `write_state`);
    delta8 codes are read against `near`'s arrays."""
    values, shards, i = {}, 1, 0
    while i < shards:
        path = os.path.join(state_dir, state_file(stem, i))
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        marker = arrays.pop("__step__", None)
        if marker is None or int(marker) != step:
            raise ValueError(f"{path} is of step {marker}, {META} of step {step}: a write was cut short")
        shards = int(arrays.pop("__shards__", 1))
        ranges = {k[: -len(_LOG8_RANGE)]: arrays.pop(k) for k in list(arrays) if k.endswith(_LOG8_RANGE)}
        deltas = {k[: -len(_DELTA8_SCALES)]: arrays.pop(k) for k in list(arrays) if k.endswith(_DELTA8_SCALES)}
        for name, x in arrays.items():
            if name in ranges:  # Adam's v: log8 codes
                values[name] = from_log8(x, ranges[name])
            elif name in deltas:  # the average: delta8 codes against the weights
                if near is None or name not in near:
                    raise ValueError(f"{path}: {name} is coded against the weights, which were not read")
                values[name] = from_delta8(x, deltas[name], near[name])
            elif x.dtype == np.uint16:  # moments as bfloat16 bits (states written before log8)
                values[name] = from_bfloat16_bits(x)
            else:
                values[name] = x.astype(np.float32)
        i += 1
    if sorted(values) != sorted(names):
        raise ValueError(f"{os.path.join(state_dir, stem)}*.npz hold {sorted(values)}; expected {sorted(names)}")
    return values


def read_arrays(state_dir: str) -> tuple[dict, dict, dict, dict]:
    """`(weights, m, v, meta)` as float32 numpy arrays by weight name and
    the `meta.json` dict, checking that all files are of one step and that
    each group holds every weight (see `write_state`); m is zeros where it
    did not travel. Numpy alone, so that `hwtf.stint_state import` reads
    them without JAX."""
    with open(os.path.join(state_dir, META)) as f:
        meta = json.load(f)
    names = weight_names(meta["config"]["lstm_layers"])
    weights = _read_group(state_dir, WEIGHTS, meta["step"], names)
    if meta.get("first_moments") == "zeros":
        m = {k: np.zeros_like(x) for k, x in weights.items()}
    else:  # a state written before m stopped travelling
        m = _read_group(state_dir, ADAM_M, meta["step"], names)
    return weights, m, _read_group(state_dir, ADAM_V, meta["step"], names), meta


def read_average(state_dir: str, meta: dict, weights: dict) -> dict | None:
    """The weights' moving average that a stint wrote beside `weights`
    (`read_arrays`'), float32 by weight name, or None where it wrote none
    (`meta["average_updates"]` says over how many updates it was taken)."""
    if "average_updates" not in meta:
        return None
    return _read_group(state_dir, AVERAGE, meta["step"], weight_names(meta["config"]["lstm_layers"]), weights)


def ema_decay(meta: dict) -> float:
    """The recipe's `--ema_decay` (0: no average)."""
    return float(meta.get("recipe", {}).get("ema_decay", 0.0))


def read_state(state_dir: str) -> tuple[dict, dict]:
    """`(state, meta)` from `state_dir`, the state as JAX arrays. Where the
    recipe keeps a moving average, the folder's goes on, or one starts at
    the weights (`average_updates` 0) where the folder holds none."""
    import jax.numpy as jnp

    weights, m, v, meta = read_arrays(state_dir)
    as_jax = lambda arrays: {k: jnp.asarray(x, jnp.float32) for k, x in arrays.items()}
    state = {
        "params": as_jax(weights), "m": as_jax(m), "v": as_jax(v),
        "iterations": jnp.asarray(meta["iterations"], jnp.int32),
        "skipped": jnp.asarray(meta["skipped"], jnp.int32),
        "learning_rate": jnp.asarray(meta["learning_rate"], jnp.float32),
    }
    if ema_decay(meta):
        average = read_average(state_dir, meta, weights)
        state["average"] = as_jax(weights if average is None else average)
        state["average_updates"] = jnp.asarray(0 if average is None else meta["average_updates"], jnp.int32)
    return state, meta


def _save_npz(path: str, arrays: dict, compress: bool) -> None:
    tmp = path + ".tmp.npz"
    (np.savez_compressed if compress else np.savez)(tmp, **arrays)
    os.replace(tmp, path)


def write_state(out_dir: str, state: dict, meta: dict, shard_bytes: int = SHARD_BYTES,
                compress: bool = True) -> list[str]:
    """Writes the weights as float32 and Adam's second moments as log8
    codes (`to_log8`) by weight name: `weights.npz` and `adam_v.npz`, each
    split into `NAME-1.npz`, ... where it would pass `shard_bytes`, every
    file marked with the step and the group's number of files; where the
    state has one, the weights' moving average as delta8 codes against the
    weights (`to_delta8`), `average.npz`; then `meta.json` (the model
    config, `step`, `iterations`, `skipped`, `learning_rate`,
    `first_moments: zeros`, `average_updates` where there is an average,
    and the stint's `log`). Adam's
    first moments are not written (they come back as zeros). Each file is
    replaced whole, `meta.json` last: a kill mid-write leaves the last complete
    state's meta (a reader checks `step` in all files). `compress` zips
    the files: 6% off the weights, 15% off the codes, which the way to the
    GPU needs (a call carries 64 MiB); the stint's own saves skip it, as it
    takes about 5 s a save of the 3x640's state while the GPU waits.
    Returns the file names."""
    os.makedirs(out_dir, exist_ok=True)
    step = int(meta["step"])
    names = weight_names(meta["config"]["lstm_layers"])
    written = []
    groups = [(WEIGHTS, "params"), (ADAM_V, "v")] + ([(AVERAGE, "average")] if "average" in state else [])
    weights = {k: np.asarray(state["params"][k], np.float32) for k in names}
    for stem, key in groups:
        arrays = dict(weights) if key == "params" else {k: np.asarray(state[key][k], np.float32) for k in names}
        # A coded array's companion, under its name and this suffix: the
        # log8 codes' range, or the delta8 codes' row scales.
        suffix, extra = {"v": _LOG8_RANGE, "average": _DELTA8_SCALES}.get(key), {}
        for k in names:
            if key == "v":
                arrays[k], extra[k] = to_log8(arrays[k])
            elif key == "average":
                arrays[k], extra[k] = to_delta8(arrays[k], weights[k])
        shards = _shard_names(arrays, shard_bytes)
        for i, shard in enumerate(shards):
            name = state_file(stem, i)
            _save_npz(os.path.join(out_dir, name), {**{k: arrays[k] for k in shard},
                                                    **{k + suffix: extra[k] for k in shard if k in extra},
                                                    "__step__": np.asarray(step, np.int64),
                                                    "__shards__": np.asarray(len(shards), np.int64)},
                      compress)
            written.append(name)
    meta = {**meta, "iterations": int(state["iterations"]), "skipped": int(state["skipped"]),
            "learning_rate": float(state["learning_rate"]), "first_moments": "zeros"}
    meta.pop("average_updates", None)
    if "average" in state:
        meta["average_updates"] = int(state["average_updates"])
    tmp = os.path.join(out_dir, META + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, META))
    return written + [META]


# -- the command ----------------------------------------------------------------


def train(state_dir: str, out_dir: str, minutes: float, steps: int = 0, batch_size: int = 0, buckets: int = 4,
          log_every: int = 50, save_minutes: float = 2.0, unroll: int = 1, wavefront: bool = True, seed: int = 0,
          log=print) -> dict:
    """Trains from `state_dir`'s state for `minutes` (or `steps` updates, if
    given), writing the state to `out_dir` every `save_minutes` and at the
    end. Returns the final meta."""
    import jax

    start_time = time.time()
    state, meta = read_state(state_dir)
    config, recipe = meta["config"], meta["recipe"]
    batch_size = batch_size or recipe["batch_size"]
    data = read_data(os.path.join(state_dir, DATA))
    batches = Batches(data, config["normalizer"], batch_size, buckets,
                      seed=seed * 1_000_003 + int(meta["step"]))
    noise = float(recipe.get("weight_noise", 0.0))
    scales = None
    if recipe.get("new_units_from") and recipe.get("new_units_rate", 1.0) != 1.0:
        from hwtf.unit_weights import rate_scales

        scales = {k: jax.device_put(x) for k, x in rate_scales(
            {k: p.shape for k, p in state["params"].items()}, config["lstm_layers"], recipe["new_units_from"],
            config["lstm_units"], recipe["new_units_rate"]).items()}
    decay = ema_decay(meta)
    train_step = make_train_step(config["lstm_layers"], recipe["clipnorm"], unroll, wavefront, noise, decay)
    # hwtf.train's WEIGHT_NOISE_SALT, not imported (it would import TensorFlow).
    noise_seed = jax.random.PRNGKey(seed * 1_000_003 + 0x776E)
    step0 = step = int(meta["step"])
    meta = {**meta, "log": list(meta.get("log", [])), "device": str(jax.devices()[0].device_kind),
            "batch_size": batch_size}
    log(f"jax {jax.__version__} on {meta['device']}: step {step}, {len(batches.lengths)} lines, "
        f"batch {batch_size}, buckets padded to {sorted(batches.ceilings.values())}"
        + (f", weight noise {noise:g}" if noise else "")
        + (f", units past {recipe['new_units_from']} at {recipe['new_units_rate']:g} times the rate" if scales else "")
        + (f", the weights' moving average (decay {decay:g}) "
           + (f"going on from {int(state['average_updates'])} updates" if int(state["average_updates"])
              else "starting at the weights") if decay else ""))
    deadline = start_time + 60 * minutes
    last_save = last_log = time.time()
    window = []
    compiled = set()
    for batch in batches:
        length = batch["offsets"].shape[1]
        began = time.time()
        key = jax.random.fold_in(noise_seed, step) if noise else None
        state, metrics = train_step(state, batch, key, scales)
        if length not in compiled:  # XLA compiles a step for each new length
            jax.block_until_ready(metrics)
            compiled.add(length)
            log(f"step {step + 1}: compiled for {length} points, {time.time() - began:.1f} s with the step")
        if window:
            # One update in flight at most: JAX would otherwise queue
            # updates as fast as batches are made, and the deadline would
            # pass with minutes of them still to run.
            jax.block_until_ready(window[-1]["loss"])
        step += 1
        window.append(metrics)
        done = (steps and step - step0 >= steps) or (not steps and time.time() >= deadline)
        if step % log_every == 0 or done:
            metrics = jax.device_get(window[-1])
            now = time.time()
            entry = {"step": step, "loss": float(metrics["loss"]), "offset_nll": float(metrics["offset_nll"]),
                     "pen_nll": float(metrics["pen_nll"]), "grad_norm": float(metrics["grad_norm"]),
                     "skipped": int(state["skipped"]), "steps_per_sec": len(window) / max(now - last_log, 1e-9),
                     "seconds": now - start_time}
            meta["log"].append(entry)
            log(json.dumps(entry))
            window, last_log = [], now
        if done or time.time() - last_save >= 60 * save_minutes:
            meta["step"] = step
            write_state(out_dir, state, meta, compress=False)
            last_save = time.time()
        if done:
            return meta


def main(argv):
    from absl import flags

    del argv
    f = flags.FLAGS
    meta = train(f.state, f.out, f.minutes, f.steps, f.batch_size, f.length_buckets, f.log_every,
                 f.save_minutes, f.unroll, f.wavefront, f.seed)
    print(f"wrote step {meta['step']} to {f.out}", flush=True)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("state", None, "Folder that `python -m hwtf.stint_state export` wrote.", required=True)
    flags.DEFINE_string("out", None, "Folder to write the trained state to (the same files).", required=True)
    flags.DEFINE_float("minutes", 8.0, "Train this long, compilation included.")
    flags.DEFINE_integer("steps", 0, "Train this many updates instead (0: --minutes decides).")
    flags.DEFINE_integer("batch_size", 0, "Lines per batch (0: the run's).")
    flags.DEFINE_integer("length_buckets", 4, "Length buckets, each padded to its longest line and compiled "
                         "once (hwtf.train pads a batch to its own longest line, which XLA would compile anew "
                         "for every length).")
    flags.DEFINE_integer("log_every", 50, "Log (and record in meta.json) every this many steps.")
    flags.DEFINE_float("save_minutes", 2.0, "Write the state this often, so a killed call still returns one.")
    flags.DEFINE_integer("unroll", 1, "Time steps per iteration of each scan (lax.scan's unroll).")
    flags.DEFINE_bool("wavefront", True, "All layers in one scan, layer n at time t - n (see `head`).")
    flags.DEFINE_integer("seed", 0, "Data order seed.")
    app.run(main)
