import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from hwtf.model import ModelConfig, nll, sample_loop


def test_config_round_trip_and_validation(tmp_path, tiny_config):
    path = str(tmp_path / "config.json")
    tiny_config.save(path)
    assert ModelConfig.load(path) == tiny_config
    with pytest.raises(ValueError, match="model must be"):
        ModelConfig(model="poetry", alphabet="ab")
    with pytest.raises(ValueError, match="alphabet"):
        ModelConfig(model="synthesis", alphabet="")
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_json(json.dumps({"model": "prediction", "colour": 1}))


def test_nll_shapes_masks_and_units(tiny_config):
    model = tiny_config.build_model()
    batch = random_batch(np.random.default_rng(0), [20, 11, 4], [6, 3, 2])
    result = nll(model, batch)
    assert result["points"].numpy() == 19 + 10 + 3
    assert result["lines"].numpy() == 3
    np.testing.assert_allclose(
        result["loss"].numpy(), result["offset_nll"].numpy() + result["pen_nll"].numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        result["nll_per_line"].numpy(), result["loss"].numpy() * 32 / 3, rtol=1e-5
    )
    padded = dict(batch, offsets=batch["offsets"].copy())
    padded["offsets"][1, 11:] = 7.0
    np.testing.assert_allclose(nll(model, padded)["loss"].numpy(), result["loss"].numpy(), rtol=1e-6)
    # Per point: each line's points sum to its NLL, and nothing past its end counts.
    point_nll = result["point_nll"].numpy()
    assert point_nll.shape == (3, 19)
    np.testing.assert_allclose(point_nll.sum(1), result["line_nll"].numpy(), rtol=1e-6)
    assert np.all(point_nll[1, 10:] == 0) and np.all(point_nll[2, 3:] == 0)
    assert np.all(point_nll[1, :10] != 0) and np.all(point_nll[2, :3] != 0)
    # Targets given in place of the next offsets: the same when they are those.
    own = nll(model, batch, targets=batch["offsets"][:, 1:])["point_nll"].numpy()
    np.testing.assert_array_equal(own, point_nll)
    moved = nll(model, batch, targets=batch["offsets"][:, 1:] + 0.1)["point_nll"].numpy()
    assert np.all(moved[0] != point_nll[0]) and np.all(moved[1, 10:] == 0)


def test_prediction_model_ignores_text():
    config = ModelConfig(model="prediction", lstm_units=8, lstm_layers=2, mixtures=3)
    model = config.build_model()
    batch = random_batch(np.random.default_rng(1), [9, 5], [3, 2])
    a = nll(model, batch)["loss"].numpy()
    batch["chars"][:] = 4
    assert nll(model, batch)["loss"].numpy() == a
    offsets, lengths, _ = sample_loop(model, 2, bias=0.0, seed=tf.constant([1, 1]), max_steps=15)
    assert offsets.shape == (2, 15, 3) and list(lengths.numpy()) == [15, 15]


def test_scheduled_sampling(tiny_config):
    model = tiny_config.build_model()
    batch = random_batch(np.random.default_rng(2), [15, 15], [4, 4])
    forced = nll(model, batch)["loss"].numpy()
    seed = tf.constant([3, 4], tf.int64)
    assert nll(model, batch, teacher_forcing=1.0, seed=seed)["loss"].numpy() == forced
    assert nll(model, batch, teacher_forcing=tf.constant(1.0), seed=seed)["loss"].numpy() == forced
    sampled = nll(model, batch, teacher_forcing=0.0, seed=seed)["loss"].numpy()
    assert np.isfinite(sampled) and sampled != forced
    again = nll(model, batch, teacher_forcing=0.0, seed=seed)["loss"].numpy()
    assert again == sampled


def test_sample_loop_stops_after_the_text_and_is_seeded(tiny_config):
    model = tiny_config.build_model()
    chars = tf.constant([[2, 3, 4], [5, 0, 0], [0, 0, 0]])
    lengths = tf.constant([3, 1, 0])
    a = sample_loop(model, 3, chars, lengths, bias=1.0, seed=tf.constant([7, 7]), max_steps=400)
    b = sample_loop(model, 3, chars, lengths, bias=1.0, seed=tf.constant([7, 7]), max_steps=400)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    offsets, n, phi = a
    assert n.numpy()[2] == 0
    assert 0 < n.numpy()[1] <= 400
    assert offsets.shape[1] == n.numpy().max() and phi.shape == (3, offsets.shape[1], 3)
    np.testing.assert_array_equal(offsets.numpy()[1, n.numpy()[1] :], 0.0)


@pytest.mark.parametrize("max_steps", [400, 45])
def test_sample_loop_writes_the_same_lines_whatever_its_chunk(tiny_config, monkeypatch, max_steps):
    """`sample_loop` runs its steps SAMPLE_CHUNK at a time in one XLA call;
    the chunk is how the loop is run, not what it draws: 7 steps a chunk
    (lines that end in different chunks, max_steps not a multiple of it)
    writes what one chunk for the whole line writes."""
    from hwtf import model as model_lib

    model = tiny_config.build_model()
    chars = tf.constant([[2, 3, 4, 5, 6], [5, 0, 0, 0, 0], [0, 0, 0, 0, 0], [7, 8, 0, 0, 0]])
    lengths = tf.constant([5, 1, 0, 2])
    seed = tf.constant([3, 9])
    monkeypatch.setattr(model_lib, "SAMPLE_CHUNK", 1024)
    whole = sample_loop(model, 4, chars, lengths, bias=0.5, seed=seed, max_steps=max_steps)
    monkeypatch.setattr(model_lib, "SAMPLE_CHUNK", 7)
    chunked = sample_loop(model, 4, chars, lengths, bias=0.5, seed=seed, max_steps=max_steps)
    n = whole[1].numpy()
    assert len(set(n // 7)) > 1 and n.max() > 7, n  # the lines end in different chunks
    np.testing.assert_array_equal(chunked[1].numpy(), n)
    assert chunked[0].shape == whole[0].shape == (4, n.max(), 3)
    np.testing.assert_allclose(chunked[0].numpy(), whole[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked[2].numpy(), whole[2].numpy(), rtol=1e-5, atol=1e-6)
    if max_steps == 45:
        assert n.max() == 45


def test_texts_are_padded_to_a_few_widths_and_padding_writes_nothing(tiny_config):
    """XLA compiles the sampling loop once per text width: `pad_chars` rounds
    widths up to CHAR_BUCKET (past the longest text, where the stop rule
    reads), and extra padding does not change a line."""
    from hwtf.model import CHAR_BUCKET, pad_chars

    for u in (0, 1, CHAR_BUCKET - 1, CHAR_BUCKET, 40):
        width = pad_chars(tf.ones([2, u], tf.int32)).shape[1]
        assert width % CHAR_BUCKET == 0 and u < width <= u + CHAR_BUCKET, (u, width)
    model = tiny_config.build_model()
    chars = tf.constant([[2, 3, 4, 5, 6], [5, 7, 0, 0, 0]])
    lengths = tf.constant([5, 2])
    plain = sample_loop(model, 2, chars, lengths, bias=0.5, seed=tf.constant([4, 4]), max_steps=80)
    wider = sample_loop(model, 2, tf.pad(chars, [[0, 0], [0, 20]]), lengths, bias=0.5, seed=tf.constant([4, 4]),
                        max_steps=80)
    np.testing.assert_array_equal(wider[1].numpy(), plain[1].numpy())
    np.testing.assert_allclose(wider[0].numpy(), plain[0].numpy(), rtol=1e-5, atol=1e-6)
    assert plain[2].shape[2] == 5 and wider[2].shape[2] == 25
    np.testing.assert_allclose(wider[2].numpy()[:, :, :5], plain[2].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(wider[2].numpy()[:, :, 5:], 0.0)


def _handful_of_lines():
    """Four short lines of regular, learnable ink: loops along a baseline."""
    rng = np.random.default_rng(5)
    lines = []
    for k in range(4):
        t = np.linspace(0, 6 * np.pi, 60)
        x = np.diff(t * 3 + np.cos(t) * (1 + k / 4), prepend=0)
        y = np.diff(np.sin(t) * 2, prepend=0)
        pen = (np.arange(60) % 20 == 19).astype(np.float32)
        lines.append(np.stack([x, y, pen], 1).astype(np.float32) + rng.normal(0, 0.01, (60, 3)) * [1, 1, 0])
    return {
        "offsets": np.stack(lines),
        "lengths": np.full(4, 60, np.int32),
        "chars": np.array([[2, 3, 4], [3, 4, 5], [4, 5, 6], [5, 6, 7]], np.int32),
        "char_lengths": np.full(4, 3, np.int32),
    }


def test_tiny_synthesis_model_overfits_a_handful_of_lines(tiny_config):
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_config.build_model()
    optimizer = keras.optimizers.Adam(1e-2)
    batch = _handful_of_lines()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = nll(model, batch)["loss"]
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 10.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(60)]
    # A stated margin: at least 1.5 nats per point below where it started.
    assert losses[-1] < losses[0] - 1.5, losses[::10]


def test_checkpoint_holds_every_weight(tmp_path, tiny_config):
    model = tiny_config.build_model()
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = {name for name, _ in tf.train.list_variables(path) if name.startswith("model/")}
    assert len(saved) == len(model.weights) == 10
    fresh = tiny_config.build_model()
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bfloat16_and_float32_agree_on_the_loss(tiny_config):
    """Mixed bfloat16 (matmuls in bfloat16, window, head and loss in float32)
    gives the float32 loss of the same weights and batch within 0.02 nats per
    point."""
    import keras

    batch = random_batch(np.random.default_rng(4), [40, 33, 20], [8, 6, 5])
    fp32 = tiny_config.build_model()
    want = nll(fp32, batch)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        bf16 = tiny_config.build_model()
        for a, b in zip(bf16.weights, fp32.weights):
            a.assign(b)
        got = nll(bf16, batch)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert bf16.stack.compute_dtype == "bfloat16" and bf16.head.compute_dtype == "float32"
    assert abs(float(got["loss"]) - float(want["loss"])) < 0.02
    assert float(got["loss"]) != float(want["loss"])  # the bfloat16 path really ran


def test_prime_state_reads_each_point_but_the_last_which_it_returns(tiny_config):
    """Stepping over a padded batch of priming lines leaves each line in the
    state the whole-sequence pass reaches just before its own last point, and
    returns that point, which the sampling loop reads first: every priming
    point is read once (it used to read the last one twice)."""
    from hwtf.model import prime_state

    model = tiny_config.build_model()
    for v in model.weights:  # away from the initialisation, so that states differ
        v.assign(v.numpy() + np.random.default_rng(7).normal(size=v.shape).astype(np.float32) * 0.2)
    batch = random_batch(np.random.default_rng(4), [9, 5], [4, 3])
    onehot, mask = model.stack.encode_chars(batch["chars"], batch["char_lengths"])
    state, last = prime_state(model, tf.constant(batch["offsets"]), tf.constant(batch["lengths"]), onehot, mask)
    for b, n in enumerate(batch["lengths"]):
        one = slice(b, b + 1)
        want = model(batch["offsets"][one, : n - 1], batch["chars"][one], batch["char_lengths"][one])["state"]
        for got_part, want_part in zip(tf.nest.flatten(state), tf.nest.flatten(want)):
            np.testing.assert_allclose(got_part[b].numpy(), want_part[0].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(last[b].numpy(), batch["offsets"][b, n - 1])


@pytest.mark.parametrize("bias", [0.0, 1.5])
def test_every_sampled_point_is_the_draw_of_its_own_distribution_and_step_seed(tiny_config, bias):
    """The replay test (host-independent, unlike whole recorded lines): teacher
    forcing the sampled line gives the distribution each point was drawn from;
    drawing from it with that step's seed (`stateless_fold_in(seed, t)`) must
    give the point back. A wrong start input, step seed, bias or state fails."""
    from hwtf import distributions

    model = tiny_config.build_model()
    chars = tf.constant([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]], tf.int32)
    char_lengths = tf.constant([6, 3], tf.int32)
    seed = tf.constant([11, 7], tf.int64)
    first = tf.constant([[0.3, -0.2, 0.0], [-0.25, 0.0, 0.0]])
    offsets, lengths, _ = sample_loop(model, 2, chars, char_lengths, bias=bias, seed=seed, max_steps=60,
                                      first_input=first)
    inputs = tf.concat([first[:, None], offsets[:, :-1]], 1)  # what step t read
    params = distributions.split_head(model(inputs, chars, char_lengths)["head"], bias)
    for b, n in enumerate(lengths.numpy()):
        assert n > 10
        replayed = np.stack([
            distributions.sample_rows(
                tf.nest.map_structure(lambda p: p[:, t], params), tf.random.experimental.stateless_fold_in(seed, t)
            )[b].numpy()
            for t in range(n)
        ])
        drawn = offsets[b, :n].numpy()
        # Rounding between the one-step and the whole-sequence paths can move
        # a draw past a component or pen boundary now and then; nothing else.
        same = np.all(np.abs(replayed - drawn) < 1e-3 * (1 + np.abs(drawn)), axis=1)
        assert same.mean() >= 0.95, np.flatnonzero(~same)
