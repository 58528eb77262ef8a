"""The JAX stint (`hwtf.jax_stint`) against hwtf's TensorFlow training, and
the run's state carried out (`hwtf.stint_state export`) and back (`import`)."""

import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from hwtf import jax_stint, packed, stint_state
from conftest import random_batch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trainer(config, learning_rate=1e-2, clipnorm=10.0, **kwargs):
    import keras

    from hwtf.train import Trainer

    keras.utils.set_random_seed(3)
    return Trainer(config, tf.distribute.get_strategy(), "adam", learning_rate, clipnorm, **kwargs)


def _jax_state(trainer):
    import jax.numpy as jnp

    weights, m, v = stint_state.state_arrays(trainer)
    as_jax = lambda arrays: {k: jnp.asarray(x) for k, x in arrays.items()}
    return {"params": as_jax(weights), "m": as_jax(m), "v": as_jax(v),
            "iterations": jnp.asarray(int(trainer.optimizer.iterations.numpy()), jnp.int32),
            "skipped": jnp.asarray(0, jnp.int32),
            "learning_rate": jnp.asarray(float(trainer.optimizer.learning_rate.numpy()), jnp.float32)}


def _batch(config, seed=0):
    return random_batch(np.random.default_rng(seed), [37, 52, 20], [5, 9, 3], len(config.alphabet_lib))


def test_loss_and_gradient_are_the_tensorflow_models(tiny_config):
    pytest.importorskip("jax")
    import jax

    from hwtf.model import named_weights, nll

    trainer = _trainer(tiny_config)
    batch = _batch(tiny_config)
    variables = named_weights(trainer.model)
    with tf.GradientTape() as tape:
        result = nll(trainer.model, {k: tf.constant(v) for k, v in batch.items()})
    grads = dict(zip(variables, tape.gradient(result["nll_sum"], list(variables.values()))))

    params = _jax_state(trainer)["params"]
    (total, (offset_sum, pen_sum, points)), jax_grads = jax.value_and_grad(jax_stint.nll_sums, has_aux=True)(
        params, batch, tiny_config.lstm_layers
    )
    assert float(points) == float(result["points"]) == sum(batch["lengths"] - 1)
    np.testing.assert_allclose(float(offset_sum), float(result["offset_sum"]), rtol=1e-5)
    np.testing.assert_allclose(float(pen_sum), float(result["pen_sum"]), rtol=1e-5)
    np.testing.assert_allclose(float(total), float(result["nll_sum"]), rtol=1e-5)
    assert sorted(jax_grads) == sorted(grads)
    for name, grad in grads.items():
        scale = float(np.abs(grad.numpy()).max()) + 1e-6
        np.testing.assert_allclose(np.asarray(jax_grads[name]), grad.numpy(), atol=1e-4 * scale, rtol=1e-3,
                                   err_msg=name)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_wavefront_computes_what_one_scan_per_layer_does(tiny_config, layers):
    pytest.importorskip("jax")
    import jax
    import jax.numpy as jnp

    config = dataclasses.replace(tiny_config, lstm_layers=layers)
    params = _jax_state(_trainer(config))["params"]
    batch = _batch(config)
    onehot = jax.nn.one_hot(batch["chars"], len(config.alphabet_lib), dtype=jnp.float32)
    mask = (np.arange(batch["chars"].shape[1])[None] < batch["char_lengths"][:, None]).astype(np.float32)
    both = [np.asarray(jax_stint.head(params, batch["offsets"], onehot, mask, layers, wavefront=w)) for w in (True, False)]
    np.testing.assert_allclose(both[0], both[1], rtol=1e-5, atol=1e-5)
    loss = lambda w: jax_stint.nll_sums(params, batch, layers, wavefront=w)[0]
    grads = [jax.grad(lambda p, w=w: jax_stint.nll_sums(p, batch, layers, wavefront=w)[0])(params) for w in (True, False)]
    np.testing.assert_allclose(float(loss(True)), float(loss(False)), rtol=1e-6)
    for name in grads[1]:
        np.testing.assert_allclose(np.asarray(grads[0][name]), np.asarray(grads[1][name]), rtol=1e-4,
                                   atol=1e-5 * float(np.abs(grads[1][name]).max() + 1e-6), err_msg=name)


@pytest.mark.parametrize("new_units_rate", [1.0, 5.0])
def test_updates_are_the_tensorflow_trainers(tiny_config, new_units_rate):
    """Three updates, the second with its gradient clipped, from the same
    weights and Adam state give the same weights, moments and losses (with
    three layers, as the campaign's model), the new units' at their
    multiple of the rate too (`--new_units_rate`)."""
    pytest.importorskip("jax")
    from hwtf.unit_weights import rate_scales

    tiny_config = dataclasses.replace(tiny_config, lstm_layers=3)

    import jax.numpy as jnp

    from hwtf.model import named_weights

    trainer = _trainer(tiny_config, learning_rate=1e-2, clipnorm=10.0, new_units_from=12,
                       new_units_rate=new_units_rate, ema_decay=0.6)
    state = _jax_state(trainer)
    state["average"] = {k: jnp.array(x) for k, x in state["params"].items()}
    state["average_updates"] = jnp.asarray(0, jnp.int32)
    scales = rate_scales({k: p.shape for k, p in state["params"].items()}, 3, 12, 16, new_units_rate)
    step = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0, ema_decay=0.6)
    for i in range(3):
        batch = _batch(tiny_config, seed=i)
        if i == 1:  # a batch whose gradient norm exceeds the clip
            batch["offsets"][..., :2] *= 30.0
        tf_result = trainer.train({k: tf.constant(v) for k, v in batch.items()}, 1.0, 0)
        state, metrics = step(state, batch, scales=scales if new_units_rate != 1.0 else None)
        np.testing.assert_allclose(float(metrics["loss"]), float(tf_result["loss"]), rtol=1e-5)
        np.testing.assert_allclose(float(metrics["grad_norm"]), float(tf_result["grad_norm"]), rtol=1e-4)
        if i == 1:
            assert float(tf_result["grad_norm"]) > 10.0
    weights, m, v = stint_state.state_arrays(trainer)
    assert int(state["iterations"]) == int(trainer.optimizer.iterations.numpy()) == 3
    assert int(state["average_updates"]) == int(trainer.ema_updates.numpy()) == 3
    average = {k: x.numpy() for k, x in named_weights(trainer.ema_model).items()}
    start = {k: x.numpy() for k, x in named_weights(_trainer(tiny_config).model).items()}
    for name in weights:
        # Adam divides by sqrt(v): where a gradient is near 0 its rounding
        # moves a weight by up to the learning rate, so compare the updates.
        moved = np.asarray(state["params"][name]) - weights[name]
        assert np.mean(np.abs(moved) < 1e-4) > 0.99, name
        # The average is TensorFlow's too, and (decay 0.6 over three
        # updates) neither the weights nor where they started.
        assert np.mean(np.abs(np.asarray(state["average"][name]) - average[name]) < 1e-4) > 0.99, name
        if name.startswith("kernel"):
            assert not np.allclose(average[name], weights[name], atol=1e-4)
            assert not np.allclose(average[name], start[name], atol=1e-4)
        for key, slot in (("m", m), ("v", v)):
            np.testing.assert_allclose(np.asarray(state[key][name]), slot[name], rtol=1e-3,
                                       atol=1e-4 * (np.abs(slot[name]).max() + 1e-12), err_msg=f"{key} {name}")


def test_weight_noise_moves_the_gradient_and_not_the_weights(tiny_config):
    """As in hwtf.train: an update with weight noise is the plain update
    from the noisy weights, applied to the clean ones."""
    pytest.importorskip("jax")
    import jax
    import jax.numpy as jnp

    trainer = _trainer(tiny_config)
    state = _jax_state(trainer)
    start = {k: np.asarray(x) for k, x in state["params"].items()}
    key = jax.random.PRNGKey(7)
    noise = {k: np.asarray(x) for k, x in jax_stint.weight_noises(state["params"], 0.1, key).items()}
    assert np.std(np.concatenate([n.ravel() for n in noise.values()])) == pytest.approx(0.1, rel=0.05)
    # Each step donates (frees) the state it is given: each starts from its own.
    shifted = dict(_jax_state(trainer), params={k: jnp.asarray(start[k] + noise[k]) for k in start})
    batch = _batch(tiny_config)
    noisy_state, noisy = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0, weight_noise=0.1)(
        _jax_state(trainer), batch, key)
    plain_state, plain = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0)(shifted, batch)
    np.testing.assert_allclose(float(noisy["loss"]), float(plain["loss"]), rtol=1e-5)
    for k in start:
        np.testing.assert_allclose(np.asarray(noisy_state["params"][k]) - start[k],
                                   np.asarray(plain_state["params"][k]) - (start[k] + noise[k]), atol=1e-5)
    _, clean = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0)(_jax_state(trainer), batch)
    assert float(clean["loss"]) != pytest.approx(float(noisy["loss"]), rel=1e-3)
    again = jax_stint.weight_noises(state["params"], 0.1, key)
    later = jax_stint.weight_noises(state["params"], 0.1, jax.random.fold_in(key, 1))
    assert all(np.array_equal(np.asarray(again[k]), noise[k]) for k in noise)
    assert not any(np.allclose(np.asarray(later[k]), noise[k]) for k in noise)


def test_a_non_finite_update_is_skipped(tiny_config):
    pytest.importorskip("jax")

    trainer = _trainer(tiny_config)
    state = _jax_state(trainer)
    before = {k: np.asarray(x) for k, x in state["params"].items()}
    batch = _batch(tiny_config)
    batch["offsets"][0, 3, 0] = np.nan
    state, metrics = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0)(state, batch)
    assert bool(metrics["skipped"]) and int(state["skipped"]) == 1 and int(state["iterations"]) == 0
    for name, value in before.items():
        np.testing.assert_array_equal(np.asarray(state["params"][name]), value)
    # Nor does it move the moving average or count as one of its updates
    # (the first update's factor would be 0/0 there).
    import jax.numpy as jnp

    state = dict(_jax_state(trainer), average={k: jnp.asarray(x) + 1.0 for k, x in before.items()},
                 average_updates=jnp.asarray(0, jnp.int32))
    state, _ = jax_stint.make_train_step(tiny_config.lstm_layers, 10.0, ema_decay=0.9)(state, batch)
    assert int(state["average_updates"]) == 0
    for name, value in before.items():
        np.testing.assert_array_equal(np.asarray(state["average"][name]), value + 1.0)


def test_batches_are_buckets_of_whole_lines_and_cover_every_line():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=200).astype(np.int32)
    char_lengths = rng.integers(1, 30, size=200).astype(np.int32)
    offsets = np.concatenate([np.stack([np.arange(n), np.full(n, i), np.zeros(n)], -1) for i, n in enumerate(lengths)])
    data = {"offsets": offsets.astype(np.int16), "lengths": lengths,
            "chars": rng.integers(2, 20, size=char_lengths.sum()).astype(np.uint8), "char_lengths": char_lengths}
    batches = jax_stint.Batches(data, {"mean": [0.0, 0.0], "std": [1.0, 1.0]}, batch_size=8, buckets=4, seed=1)
    assert len(batches.ceilings) == 4
    seen, shapes = [], set()
    for batch, _ in zip(batches, range(20)):
        shapes.add(batch["offsets"].shape)
        for row, n in enumerate(batch["lengths"]):
            line = int(batch["offsets"][row, 0, 1])  # column dy holds the line's index
            assert n == lengths[line]
            np.testing.assert_array_equal(batch["offsets"][row, :n, 0], np.arange(n))
            assert not batch["offsets"][row, n:].any()
            seen.append(line)
    assert len(shapes) <= 4 and all(s[1] in batches.ceilings.values() for s in shapes)
    assert len(seen) == len(set(seen)) == 160  # 20 batches from the first pass: no line twice


def _cli(*args, timeout=300):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _flags(tmp_path, train_dir):
    return ["--flagfile=flags/ci.cfg", f"--train_dir={train_dir}", f"--cache_dir={tmp_path / 'cache'}"]


def test_the_stints_lines_repeat_the_lines_with_capitals_as_hwtf_train_does():
    from hwtf import train
    from hwtf.data import strokes as strokes_lib

    offsets = [np.full((n, 3), [1, 2, 0], np.float32) for n in (10, 20, 30)]
    data = strokes_lib.HandwritingSet(["a", "b", "c"], ["plain", "the BBC", "more"], offsets)
    alphabet = strokes_lib.Alphabet.from_texts(data.texts)
    assert train.epoch_lines(data, 1) is data
    arrays = stint_state.data_arrays(train.epoch_lines(data, 3), alphabet, max_length=None)
    assert arrays["lengths"].tolist() == [10, 20, 30, 20, 20]
    assert arrays["char_lengths"].tolist() == [5, 7, 4, 7, 7]


def test_whole_and_fractional_offsets_travel_apart_and_come_back_in_order(tmp_path):
    from hwtf.data import strokes as strokes_lib

    rng = np.random.default_rng(0)
    offsets = [np.round(rng.normal(0, 50, (n, 3))).astype(np.float32) for n in (7, 5, 9, 4)]
    offsets[1] = offsets[1] + np.float32(0.25)  # a synthetic line's offsets are fractions
    offsets[3][0, 0] = 40000.0  # whole, but past int16
    data = strokes_lib.HandwritingSet(["a", "b", "c", "d"], ["ab", "b", "ca", "d"], offsets)
    arrays = stint_state.data_arrays(data, strokes_lib.Alphabet.from_texts(data.texts), max_length=None)
    assert arrays["whole"].tolist() == [True, False, True, False]
    assert arrays["offsets"].dtype == np.int16 and arrays["offsets"].shape == (3, 7 + 9)
    assert arrays["offsets_float"].dtype == np.float32 and arrays["offsets_float"].shape == (3, 5 + 4)
    stint_state.write_data(str(tmp_path / jax_stint.DATA), arrays)
    read = jax_stint.read_data(str(tmp_path / jax_stint.DATA))
    np.testing.assert_array_equal(jax_stint.line_offsets(read), np.concatenate(offsets))


@pytest.mark.parametrize("compress", [True, False], ids=["compressed (the way there)", "plain (the stint's saves)"])
def test_the_state_splits_into_files_a_call_returns_and_reads_back(tmp_path, tiny_config, compress):
    trainer = _trainer(tiny_config)
    weights, m, v = stint_state.state_arrays(trainer)
    m = {k: np.random.default_rng(1).normal(0, 1e-3, x.shape).astype(np.float32) for k, x in m.items()}
    v = {k: np.square(x) for k, x in m.items()}
    state = {"params": weights, "m": m, "v": v, "iterations": 3, "skipped": 1, "learning_rate": 0.01}
    meta = {"config": json.loads(tiny_config.to_json()), "step": 5, "log": []}
    largest = max(x.nbytes for x in weights.values())
    files = jax_stint.write_state(str(tmp_path), state, meta, shard_bytes=largest + 1, compress=compress)
    with zipfile.ZipFile(tmp_path / "weights.npz") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    assert sorted(files) == sorted(os.listdir(tmp_path)) and "weights-1.npz" in files and files[-1] == "meta.json"
    assert all(os.path.getsize(tmp_path / f) < largest + 4096 for f in files)
    # Adam's first moments do not travel; they come back as zeros.
    assert not any(f.startswith(jax_stint.ADAM_M) for f in files)
    got_w, got_m, got_v, got_meta = jax_stint.read_arrays(str(tmp_path))
    assert got_meta["iterations"] == 3 and got_meta["skipped"] == 1 and got_meta["first_moments"] == "zeros"
    for name in weights:
        np.testing.assert_array_equal(got_w[name], weights[name])  # exact
        np.testing.assert_array_equal(got_m[name], np.zeros_like(m[name]))
        assert got_m[name].dtype == got_v[name].dtype == np.float32
        _, (lo, hi) = packed.to_log8(v[name])
        np.testing.assert_array_less(np.abs(np.log2(got_v[name] / v[name])), (hi - lo) / 508 + 1e-6)
    with np.load(tmp_path / "adam_v.npz") as first:
        assert first[next(k for k in first.files if not k.startswith("__") and "@" not in k)].dtype == np.uint8
    assert "average.npz" not in files and jax_stint.read_average(str(tmp_path), got_meta, got_w) is None

    # The weights' moving average travels as int8 codes of its difference
    # from the weights, each within 1/254 of its row's largest difference.
    rng = np.random.default_rng(2)
    average = {k: (x + rng.normal(0, 1e-3, x.shape)).astype(np.float32) for k, x in weights.items()}
    files = jax_stint.write_state(str(tmp_path / "averaged"), {**state, "average": average, "average_updates": 4},
                                  meta, shard_bytes=largest + 1, compress=compress)
    assert "average.npz" in files and files[-1] == "meta.json"
    got_w, _, _, got_meta = jax_stint.read_arrays(str(tmp_path / "averaged"))
    assert got_meta["average_updates"] == 4
    got_average = jax_stint.read_average(str(tmp_path / "averaged"), got_meta, got_w)
    for name, x in average.items():
        rows = x.shape[0] if x.ndim > 1 else 1
        bound = np.abs(x - weights[name]).reshape(rows, -1).max(axis=1) / 254 * (1 + 1e-5) + 1e-9
        error = np.abs(got_average[name] - x).reshape(rows, -1).max(axis=1)
        np.testing.assert_array_less(error, bound, err_msg=name)
        assert got_average[name].dtype == np.float32
    with np.load(tmp_path / "averaged" / "average.npz") as codes:
        assert codes["kernel_0"].dtype == np.int8
    # A state written again without one says so: an old average is not read.
    jax_stint.write_state(str(tmp_path / "averaged"), state, got_meta, shard_bytes=largest + 1, compress=compress)
    assert "average_updates" not in json.loads((tmp_path / "averaged" / "meta.json").read_text())

    # A shard left from another step (a write cut short) is refused by name.
    jax_stint.write_state(str(tmp_path / "later"), state, {**meta, "step": 7}, shard_bytes=largest + 1)
    os.replace(tmp_path / "later" / "weights-1.npz", tmp_path / "weights-1.npz")
    with pytest.raises(ValueError, match="weights-1.npz is of step 7, meta.json of step 5"):
        jax_stint.read_arrays(str(tmp_path))


def test_log8_codes_keep_each_second_moment_and_adams_step_within_their_bounds():
    rng = np.random.default_rng(0)
    v = (np.square(rng.normal(0, 1e-3, 20000)) * np.exp2(rng.uniform(-40, 0, 20000))).astype(np.float32)
    v[:10], v[10] = 0.0, 2.0**-80  # never updated; under the floor
    codes, (lo, hi) = packed.to_log8(v)
    assert codes.dtype == np.uint8 and lo == packed.LOG8_FLOOR and np.unique(codes).size > 200
    back = packed.from_log8(codes, np.array([lo, hi]))
    assert np.all(back[:10] == 0) and back[10] == np.float32(2.0**lo)
    kept = v > 2.0**lo
    ratio = np.abs(np.log2(back[kept] / v[kept]))
    assert ratio.max() <= (hi - lo) / 508 + 1e-6 and ratio.max() > (hi - lo) / 1000  # the bound, and no better
    # Adam's step, m / (sqrt(v) + epsilon), moves by at most half as much
    # (and a moment under the floor moves it by less than 1%).
    m = rng.normal(0, 1e-3, v.shape)
    step = lambda second: m / (np.sqrt(second.astype(np.float64)) + jax_stint.EPSILON)
    assert np.max(np.abs(np.log2(step(back)[10:] / step(v)[10:]))) <= (hi - lo) / 1016 + 1e-6
    assert abs(step(back)[10] / step(v)[10] - 1) < 0.01
    zeros, _ = packed.to_log8(np.zeros(3, np.float32))
    assert np.all(packed.from_log8(zeros, np.zeros(2)) == 0)
    with pytest.raises(ValueError, match="non-negative finite"):
        packed.to_log8(np.array([1.0, -1e-9], np.float32))


def test_synthetic_capitals_join_the_epoch_within_the_alphabet():
    from hwtf import train
    from hwtf.data import strokes as strokes_lib
    from hwtf.data import synthetic

    offsets = [np.full((n, 3), [1, 2, 0], np.float32) for n in (10, 20)]
    data = strokes_lib.HandwritingSet(["a", "b"], ["plain", "the BBC"], offsets)
    lines = synthetic.capitals(12, train.SYNTHETIC_CAPITALS_SEED)
    wide = strokes_lib.Alphabet.from_texts([line.text for line in lines])
    epoch = train.epoch_lines(data, 2, synthetic_capitals=12, alphabet=wide)
    assert epoch.ids[:3] == ["a", "b", "b"] and epoch.offsets[0] is offsets[0]
    assert epoch.ids[3:] == [line.id for line in lines] and epoch.texts[3:] == [line.text for line in lines]
    assert all(o.shape[1] == 3 and o[-1, 2] == 1 for o in epoch.offsets[3:])
    # A line with a character the model has no id for is left out, not
    # trained on as "unknown".
    narrow = strokes_lib.Alphabet.from_texts(["".join(sorted(set(" ".join(lines[0].text))))])
    kept = train.epoch_lines(data, 1, synthetic_capitals=12, alphabet=narrow)
    assert kept.texts[2:] == [t for t in epoch.texts[3:] if not narrow.unknown_chars(t)]
    assert lines[0].text in kept.texts and len(kept) < len(epoch) - 1
    letters = train.epoch_lines(data, 1, synthetic_capitals=12, alphabet=wide, capitals_text="letters")
    assert letters.ids[2:] == [line.id for line in synthetic.capitals(12, train.SYNTHETIC_CAPITALS_SEED, "letters")
                               if not wide.unknown_chars(line.text)]


@pytest.mark.slow
def test_a_jax_stint_continues_the_run_and_training_resumes_from_it(tmp_path):
    """hwtf.train (10 steps) -> export -> 30 steps of the JAX stint, whose
    loss falls -> import (its next checkpoint, validated) -> hwtf.train
    resumes from there; the weights' moving average (`--ema_decay`) starts
    with the stint and comes back with it."""
    pytest.importorskip("jax")
    train_dir, state, out = tmp_path / "run", tmp_path / "state", tmp_path / "out"
    flags = _flags(tmp_path, train_dir) + ["--ema_decay=0.9"]
    _cli("-m", "hwtf.train", *flags, "--steps=10", "--export_dir=", "--image_every=0")
    # --capitals_repeat reaches the stint's lines (train.epoch_lines; the synthetic set has no capitals in a row)
    _cli("-m", "hwtf.stint_state", "export", *flags, f"--state={state}", "--capitals_repeat=2",
         "--weight_noise=0.01", "--new_units_from=24", "--new_units_rate=3")
    meta = json.loads((state / jax_stint.META).read_text())
    assert meta["step"] == 10 and meta["iterations"] == 10 and meta["recipe"]["batch_size"] == 8
    assert meta["recipe"]["capitals_repeat"] == 2 and meta["recipe"]["weight_noise"] == 0.01
    assert meta["recipe"]["new_units_from"] == 24 and meta["recipe"]["new_units_rate"] == 3
    assert np.load(state / jax_stint.state_file(jax_stint.WEIGHTS))["kernel_0"].dtype == np.float32

    stint_log = _cli("-m", "hwtf.jax_stint", f"--state={state}", f"--out={out}", "--steps=30", "--log_every=5")
    assert "weight noise 0.01" in stint_log and "units past 24 at 3 times the rate" in stint_log
    assert "the weights' moving average (decay 0.9) starting at the weights" in stint_log
    trained = json.loads((out / jax_stint.META).read_text())
    assert trained["average_updates"] == 30 and (out / "average.npz").exists()
    # A stint started from its folder goes on with the average
    # (docs/gpu_stint.sh next leaves it behind, for what a call carries).
    again, _ = jax_stint.read_state(str(out))
    assert int(again["average_updates"]) == 30
    losses = [e["loss"] for e in trained["log"]]
    assert trained["step"] == 40 and [e["step"] for e in trained["log"]] == list(range(15, 45, 5))
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) - 0.5, losses

    log = _cli("-m", "hwtf.stint_state", "import", *flags, f"--state={out}", "--validate")
    assert "the weights' moving average: the stint's, over 30 updates" in log
    assert "(the weights' moving average)" in log and "(the weights themselves)" in log
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("ckpt-40")
    reader = tf.train.load_checkpoint(str(train_dir / "ckpt-40"))
    from hwtf.model import EMA_AVERAGE

    stored = {k for k in reader.get_variable_to_shape_map() if "recurrent_kernel_1" in k and "OPTIMIZER" not in k}
    average = jax_stint.read_average(str(out), trained, jax_stint.read_arrays(str(out))[0])
    with np.load(out / jax_stint.state_file(jax_stint.WEIGHTS)) as weights:
        key = next(k for k in stored if not k.startswith(EMA_AVERAGE))
        np.testing.assert_array_equal(reader.get_tensor(key), weights["recurrent_kernel_1"])
        key = next(k for k in stored if k.startswith(EMA_AVERAGE))
        np.testing.assert_array_equal(reader.get_tensor(key), average["recurrent_kernel_1"])
        assert not np.allclose(average["recurrent_kernel_1"], weights["recurrent_kernel_1"], atol=1e-5)

    log = _cli("-m", "hwtf.train", *flags, "--steps=45", "--export_dir=", "--image_every=0")
    assert "resumed from" in log and "at step 40" in log
    assert "the weights' moving average: 30 updates so far" in log
    assert tf.train.latest_checkpoint(str(train_dir)).endswith("ckpt-45")

    from hwtf import summaries

    notes = summaries.read_texts(str(train_dir / "tensorboard"), summaries.NOTES + "host")
    assert [s for s, _ in notes] == [0, 10, 40] and "hwtf.jax_stint" in notes[1][1]
    logged = {s for s, _ in summaries.read_scalars(str(train_dir / "tensorboard"), "loss")}
    assert logged == set(range(5, 50, 5))  # hwtf.train's, the stint's, then hwtf.train's again


def test_export_refuses_a_recipe_the_stint_does_not_follow(tmp_path):
    train_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "hwtf.stint_state", "export", *_flags(tmp_path, train_dir), f"--state={tmp_path / 's'}",
         "--optimizer=rmsprop_graves", "--teacher_forcing=linear"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "--optimizer=rmsprop_graves" in proc.stderr and "scheduled sampling" in proc.stderr


def test_import_refuses_files_of_different_steps(tmp_path, tiny_config):
    trainer = _trainer(tiny_config)
    weights, m, v = stint_state.state_arrays(trainer)
    state = {"params": weights, "m": m, "v": v, "iterations": 0, "skipped": 0, "learning_rate": 0.01}
    meta = {"config": json.loads(tiny_config.to_json()), "step": 5, "log": []}
    jax_stint.write_state(str(tmp_path), state, meta)
    jax_stint.write_state(str(tmp_path / "later"), state, {**meta, "step": 7})
    adam_v = jax_stint.state_file(jax_stint.ADAM_V)
    os.replace(tmp_path / "later" / adam_v, tmp_path / adam_v)
    proc = subprocess.run(
        [sys.executable, "-m", "hwtf.stint_state", "import", *_flags(tmp_path, tmp_path / "run"), f"--state={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "adam_v.npz is of step 7, meta.json of step 5" in proc.stderr, proc.stderr
