"""End-to-end tests of `python -m hwtf.train`, on the embedded synthetic data."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import made_once, random_batch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _train_command(train_dir, *extra):
    return [
        sys.executable, "-m", "hwtf.train", "--flagfile=flags/ci.cfg",
        f"--train_dir={train_dir}", f"--cache_dir={os.path.join(os.path.dirname(train_dir), 'cache')}",
        *extra,
    ]


def _run(command, timeout=300):
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def _logged_losses(log):
    return {int(s): float(v) for s, v in re.findall(r"step (\d+)  loss (-?[\d.]+)", log)}


def _events(train_dir):
    """{tag: [(step, value or image bytes)]} from the TensorBoard event files."""
    found = {}
    for path in glob.glob(os.path.join(train_dir, "tensorboard", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, []).append((event.step, tensor))
    return found


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """`(train_dir, log)` of one `flags/ci.cfg` run for all the test
    processes: tests read it or copy it, never change it."""
    def make(folder):
        (folder / "log.txt").write_text(_run(_train_command(str(folder / "run"))))

    folder = made_once(tmp_path_factory, "ci_run", make)
    return str(folder / "run"), (folder / "log.txt").read_text()


def test_ci_run_trains_and_exports(ci_run):
    train_dir, log = ci_run
    losses = _logged_losses(log)
    assert sorted(losses) == list(range(5, 45, 5))
    first, last = np.mean([losses[5], losses[10]]), np.mean([losses[35], losses[40]])
    assert last < first - 1.0, losses
    valid = [float(v) for v in re.findall(r"valid NLL (-?[\d.]+) nats/line", log)]
    assert len(valid) == 2 and valid[1] < valid[0]
    assert tf.train.latest_checkpoint(train_dir).endswith("ckpt-40")
    assert tf.train.latest_checkpoint(os.path.join(train_dir, "best")) is not None
    assert os.path.exists(os.path.join(train_dir, "config.json"))
    assert os.path.exists(os.path.join(train_dir, "export", "saved_model.pb"))


def test_tensorboard_events_hold_the_named_scalars_and_images(ci_run):
    train_dir, _ = ci_run
    events = _events(train_dir)
    for tag in (
        "loss", "offset_nll", "pen_nll", "grad_norm", "learning_rate", "teacher_forcing",
        "skipped_updates", "steps_per_sec", "valid/nll_per_line", "valid/nll_per_point",
    ):
        assert tag in events, sorted(events)
        assert all(np.isfinite(float(v)) for _, v in events[tag])
    assert [s for s, _ in events["loss"]] == list(range(5, 45, 5))
    for tag in ("sample", "attention"):
        (step, image), = events[tag]
        width, height, png = image
        assert step == 40 and int(width) > 0 and int(height) > 0
        assert tf.io.decode_png(png).shape[:2] == (int(height), int(width))


def test_read_scalars_gives_the_logged_validation_curve(ci_run):
    from hwtf import summaries

    train_dir, log = ci_run
    curve = summaries.read_scalars(train_dir, "valid/nll_per_line")
    logged = [float(v) for v in re.findall(r"valid NLL (-?[\d.]+) nats/line", log)]
    assert [s for s, _ in curve] == [20, 40]
    np.testing.assert_allclose([v for _, v in curve], logged, atol=0.01)
    assert summaries.read_scalars(train_dir, "no/such/tag") == []
    # The scalars alone, without the sample pictures, for committing a run's curves.
    copied = os.path.join(os.path.dirname(train_dir), "scalars_only")
    assert summaries.copy_scalars(os.path.join(train_dir, "tensorboard"), copied) > 0
    assert summaries.read_scalars(copied, "valid/nll_per_line") == curve
    copied_tags = {value.tag for path in glob.glob(os.path.join(copied, "events.out.tfevents.*"))
                   for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
    assert "sample" in _events(train_dir) and "valid/nll_per_line" in copied_tags
    assert not copied_tags & {"sample", "attention"}
    hours = summaries.training_hours(copied)
    assert [s for s, _ in hours] == sorted(s for s, _ in summaries.read_scalars(copied, "steps_per_sec"))
    assert all(a < b for (_, a), (_, b) in zip(hours, hours[1:])) and hours[0][1] > 0
    steps, at, nll = summaries.validation_curve(copied)
    assert steps == [20, 40] and nll == [v for _, v in curve]
    # The run's note of where it trained (host, precision) is kept with its
    # curves; notes added for earlier stretches start new ones where the host
    # or precision changes.
    from hwtf import precision

    (step, note), = summaries.read_texts(copied, "run/host")
    assert step == 0 and note == f"{precision.host()}, float32"  # flags/ci.cfg's precision
    assert summaries.stints(copied) == [(0, 0.0, note)]
    noted = os.path.join(os.path.dirname(train_dir), "noted")
    summaries.copy_scalars(copied, noted, {10: "Other host, mixed_bfloat16", 30: note, 35: note})
    assert summaries.read_scalars(noted, "valid/nll_per_line") == curve
    assert [(s, n) for s, _, n in summaries.stints(noted)] == [(0, note), (10, "Other host, mixed_bfloat16"), (30, note)]
    assert summaries.stints(noted)[2][1] == max(h for s, h in hours if s <= 30)
    assert at == [dict(hours)[20], dict(hours)[40]]
    # benchmarks/time_to_quality.py reads the same curve.
    proc = subprocess.run([sys.executable, "benchmarks/time_to_quality.py", f"--runs={copied}",
                           f"--thresholds={nll[0] + 1},{min(nll) - 1}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(proc.stdout)["runs"][copied]
    assert figures[f"{nll[0] + 1}"] == {"step": 20, "hours": round(at[0], 2), "nll": round(nll[0], 1)}
    assert figures[f"{min(nll) - 1}"] is None
    assert figures["stints"] == [{"step": 0, "hours": 0.0, "host": note}]


def test_rate_changes_are_the_rates_resumes_set(tmp_path):
    """The curve's learning-rate marks: the first rate, and a change across a
    resume at the resume's step; a schedule's change between resumes, and a
    resume that keeps the rate, mark nothing."""
    from hwtf import summaries

    logged = {10: 1e-3, 20: 1e-3, 30: 1e-3, 40: 1e-3, 50: 3e-4, 60: 3e-4, 70: 3e-4, 80: 1.5e-4, 90: 1.5e-4}
    with tf.summary.create_file_writer(str(tmp_path)).as_default():
        for step in (0, 43, 85):
            summaries.text(summaries.NOTES + "host", "some host, float32", step)
        for step, rate in logged.items():
            summaries.scalar("learning_rate", rate, step)
            summaries.scalar("steps_per_sec", 0.1, step)
    (first, first_hours, first_rate), (step, hours, rate) = summaries.rate_changes(str(tmp_path))
    assert (first, first_hours, step) == (0, 0.0, 43)
    np.testing.assert_allclose([first_rate, rate, hours], [1e-3, 3e-4, 400 / 3600], rtol=1e-6)


def test_sigkill_mid_run_then_resume_at_the_right_step(ci_run, tmp_path):
    train_dir = str(tmp_path / "run")
    proc = subprocess.Popen(
        _train_command(train_dir, "--checkpoint_every=2"),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            latest = tf.train.latest_checkpoint(train_dir)
            if latest and int(latest.rsplit("-", 1)[1]) >= 4:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = int(tf.train.latest_checkpoint(train_dir).rsplit("-", 1)[1])
    assert 4 <= killed_at < 10
    # On to step 10 (a step the uninterrupted run logged), without the export
    # or picture at the end: this test reads the log and checkpoints.
    log = _run(_train_command(train_dir, "--checkpoint_every=2", "--steps=10", "--export_dir=", "--image_every=0"))
    resumed = re.search(r"resumed from .*ckpt-(\d+) at step (\d+)", log)
    assert resumed and int(resumed.group(1)) == int(resumed.group(2)) >= killed_at
    assert tf.train.latest_checkpoint(train_dir).endswith("ckpt-10")
    # Same data order and state: the resumed run is where the uninterrupted
    # run of the same flags was.
    _, straight_log = ci_run
    np.testing.assert_allclose(
        _logged_losses(log)[10], _logged_losses(straight_log)[10], rtol=1e-3, atol=1e-3
    )


def test_mirrored_strategy_on_two_logical_cpus(ci_run, tmp_path):
    log = _run(_train_command(str(tmp_path / "run"), "--strategy=mirrored", "--cpu_devices=2",
                              "--steps=10", "--export_dir=", "--image_every=0"))
    assert "MirroredStrategy on /device:CPU:0, /device:CPU:1" in log
    assert "2 replica(s)" in log
    _, straight_log = ci_run
    np.testing.assert_allclose(
        _logged_losses(log)[10], _logged_losses(straight_log)[10], rtol=1e-3, atol=1e-3
    )


def test_nan_batch_is_skipped_counted_and_logged(tiny_config, caplog):
    from hwtf.train import Trainer

    trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, clipnorm=1.0)
    batch = random_batch(np.random.default_rng(0), [12, 9], [4, 3])
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    bad = dict(batch, offsets=batch["offsets"].copy())
    bad["offsets"][0, 3, 0] = np.nan
    with caplog.at_level("WARNING"):
        result = trainer.train(bad, 1.0, seed=0)
    assert int(result["skipped"]) == 1 and int(trainer.skipped.numpy()) == 1
    assert "update skipped" in caplog.text
    for b, v in zip(before, trainer.model.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    result = trainer.train(batch, 1.0, seed=0)
    assert int(result["skipped"]) == 0 and int(trainer.skipped.numpy()) == 1
    assert int(trainer.step.numpy()) == 2
    after = [v.numpy() for v in trainer.model.trainable_variables]
    assert all(np.all(np.isfinite(v)) for v in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))


def test_grad_norm_is_reported_before_clipping(tiny_config):
    from hwtf.train import Trainer

    batch = random_batch(np.random.default_rng(1), [12, 9], [4, 3])
    batch["offsets"][..., :2] *= 1000.0  # huge errors, huge gradients
    trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "rmsprop_graves", 1e-4, clipnorm=0.5)
    result = trainer.train(batch, 1.0, seed=0)
    assert float(result["grad_norm"]) > 0.5  # reported before clipping


def test_the_weights_moving_average_is_the_bias_corrected_mean_of_the_updates(tiny_config):
    from hwtf.train import Trainer

    decay = 0.6
    trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, clipnorm=1.0, ema_decay=decay)
    assert trainer.eval_model is trainer.ema_model
    rng = np.random.default_rng(2)
    seen = []
    for _ in range(3):
        trainer.train(random_batch(rng, [12, 9], [4, 3]), 1.0, seed=0)
        seen.append([v.numpy().copy() for v in trainer.model.trainable_variables])
    # A skipped update leaves the weights, and so their average, as they were.
    bad = random_batch(rng, [12, 9], [4, 3])
    bad["offsets"][0, 3, 0] = np.nan
    assert int(trainer.train(bad, 1.0, seed=0)["skipped"]) == 1
    assert int(trainer.ema_updates.numpy()) == 3
    n = len(seen)
    shares = [decay ** (n - k) * (1 - decay) / (1 - decay**n) for k in range(1, n + 1)]
    assert np.isclose(sum(shares), 1.0)
    averages = trainer.ema_model.trainable_variables
    for i, average in enumerate(averages):
        expected = sum(share * weights[i] for share, weights in zip(shares, seen))
        np.testing.assert_allclose(average.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(a.numpy(), w) for a, w in zip(averages, seen[-1]))
    # Started afresh, it is the weights themselves.
    trainer.reset_ema()
    for a, w in zip(trainer.ema_model.weights, trainer.model.weights):
        np.testing.assert_array_equal(a.numpy(), w.numpy())


def test_a_run_with_a_moving_average_validates_exports_and_packs_it(tmp_path):
    from hwtf import packed
    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import evaluate
    from hwtf.model import EMA_AVERAGE, EMA_OBJECTS, has_ema

    train_dir = str(tmp_path / "run")
    log = _run(_train_command(train_dir, "--steps=20", "--ema_decay=0.9", "--image_every=0"))
    assert re.search(r"step 20  valid NLL -?[\d.]+ nats/line, -?[\d.]+ nats/point \(the weights' moving average\)", log)
    assert re.search(r"step 20  valid NLL -?[\d.]+ nats/line, -?[\d.]+ nats/point \(the weights themselves\)", log)
    events = _events(train_dir)
    assert [s for s, _ in events["valid/weights_nll_per_line"]] == [s for s, _ in events["valid/nll_per_line"]]
    out = str(tmp_path / "curve.png")
    drawn = _run([sys.executable, "docs/make_curve.py", f"--train_dir={train_dir}", "--compare_dir=", f"--out={out}"],
                 timeout=120)
    assert os.path.getsize(out) > 1000, drawn
    latest = tf.train.latest_checkpoint(train_dir)
    assert has_ema(latest)
    # The checkpoint, read by evaluate, and the export are the average, not the weights.
    data = dataset_lib.load("synthetic", ["valid"], cache_dir=str(tmp_path), num_lines=48).subset(range(8))
    from_checkpoint = evaluate(train_dir, data, batch_size=8)["nll_per_line"]
    np.testing.assert_allclose(evaluate(os.path.join(train_dir, "export"), data, batch_size=8)["nll_per_line"],
                               from_checkpoint, rtol=1e-4)
    weights_only = tmp_path / "weights"
    weights_only.mkdir()
    shutil.copy(os.path.join(train_dir, "config.json"), weights_only)
    info = packed.pack(latest, str(weights_only / "ckpt-20.packed.npz"), leave_out=EMA_OBJECTS)
    assert info["bytes"] < 0.8 * packed.pack(latest, str(tmp_path / "whole.npz"))["bytes"]
    assert not has_ema(packed.unpack(str(weights_only / "ckpt-20.packed.npz"), str(tmp_path / "unpacked" / "ckpt-20")))
    assert abs(evaluate(str(weights_only), data, batch_size=8)["nll_per_line"] - from_checkpoint) > 1e-3
    # Packed with the average as its weights (docs/save_stint.py's way), it
    # scores as the average does, and it is the same size.
    average_only = tmp_path / "average"
    average_only.mkdir()
    shutil.copy(os.path.join(train_dir, "config.json"), average_only)
    as_weights = packed.pack(latest, str(average_only / "ckpt-20.packed.npz"), leave_out=EMA_OBJECTS,
                             weights_from=EMA_AVERAGE)
    assert as_weights["bytes"] == info["bytes"]
    np.testing.assert_allclose(evaluate(str(average_only), data, batch_size=8)["nll_per_line"], from_checkpoint,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="the checkpoint has no 'ema'"):
        packed.pack(str(tmp_path / "unpacked" / "ckpt-20"), str(tmp_path / "no.npz"), weights_from="ema")
    # Kept by docs/save_stint.py (its default from 2026-12-07, --weights=both):
    # the average as it is, the weights as int8 codes of their difference
    # from it, Adam's second moments as log8 codes, smaller than the whole.
    # It scores as the average does, and the run goes on from its weights
    # with its average going on too.
    both = tmp_path / "both"
    said = subprocess.run([sys.executable, "docs/save_stint.py", f"--train_dir={train_dir}", f"--out={both}"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert said.returncode == 0, said.stderr[-2000:]
    assert "ckpt-20 with the weights' moving average and the weights near it" in said.stdout, said.stdout
    whole = packed.pack(latest, str(tmp_path / "whole.npz"))["bytes"]
    assert os.path.getsize(both / "ckpt-20.packed.npz") < 0.75 * whole  # 2 bytes a weight where it was 3
    with np.load(both / "ckpt-20.packed.npz", allow_pickle=False) as kept:
        coded = sum(k.startswith(("delta8:", "log8:")) for k in kept.files)
    original = tf.train.load_checkpoint(latest)
    unpacked = tf.train.load_checkpoint(packed.unpack(str(both / "ckpt-20.packed.npz"), str(tmp_path / "b" / "ckpt-20")))
    assert original.get_variable_to_dtype_map() == unpacked.get_variable_to_dtype_map()
    assert original.get_variable_to_shape_map() == unpacked.get_variable_to_shape_map()
    near = packed.stand_ins(original.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"), "model", EMA_AVERAGE)
    log8 = 0
    for key in original.get_variable_to_dtype_map():
        a, b = original.get_tensor(key), unpacked.get_tensor(key)
        if key in near:
            rows = a.shape[0] if a.ndim > 1 else 1
            difference = (a - original.get_tensor(near[key])).reshape(rows, -1)
            bound = np.abs(difference).max(axis=1, keepdims=True) / 254 * 1.001 + 1e-9
            assert np.all(np.abs(b - a).reshape(rows, -1) <= bound), key
            assert not np.array_equal(b, original.get_tensor(near[key])), key  # the weights, not the average
        elif packed.is_moment(key, np.asarray(a)) and np.all(a >= 0):
            _, (lo, hi) = packed.to_log8(a)
            kept = a > 2.0**lo
            assert np.all(np.abs(np.log2(b[kept] / a[kept])) <= (hi - lo) / 508 + 1e-6), key
            log8 += 1
        elif packed.is_moment(key, np.asarray(a)):
            np.testing.assert_allclose(b, a, rtol=2.0**-8, atol=1e-37)
        else:
            assert np.array_equal(a, b), key
    assert log8 >= 1 and coded == len(near) + log8
    np.testing.assert_allclose(evaluate(str(both), data, batch_size=8)["nll_per_line"], from_checkpoint, rtol=1e-5)
    log = _run(_train_command(str(both), "--steps=21", "--ema_decay=0.9", "--export_dir=", "--image_every=0",
                              "--eval_every=1000"))
    assert re.search(r"resumed from .*ckpt-20 at step 20", log)
    updates = int(original.get_tensor("ema_updates/.ATTRIBUTES/VARIABLE_VALUE"))
    assert updates >= 20 and f"the weights' moving average: {updates} updates so far" in log, log[-2000:]
    # Packed without it, the run resumes and starts its average afresh;
    # a run without --ema_decay resumes from a checkpoint that has one.
    log = _run(_train_command(str(weights_only), "--steps=22", "--ema_decay=0.9", "--export_dir=", "--image_every=0"))
    assert re.search(r"resumed from .*ckpt-20 at step 20", log)
    assert "moving average: none in the checkpoint; it starts at the weights" in log
    assert "could not be found in the restored object" not in log  # the partial reads say nothing
    log = _run(_train_command(train_dir, "--steps=21", "--export_dir=", "--image_every=0", "--eval_every=1000"))
    assert re.search(r"resumed from .*ckpt-20 at step 20", log) and "moving average" not in log


@pytest.mark.parametrize("kind", ["constant", "linear", "exponential", "inverse_sigmoid"])
def test_teacher_forcing_schedules(kind):
    from hwtf.train import teacher_forcing_probability

    values = [teacher_forcing_probability(kind, s, 0.7, 100) for s in range(0, 201, 10)]
    assert all(0.7 - 1e-9 <= v <= 1.0 for v in values)
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))  # never rises
    if kind == "constant":
        assert values == [0.7] * len(values)
    else:
        assert values[0] > 0.99 and values[-1] < 0.71


def test_evaluate_agrees_between_checkpoint_and_export(ci_run, tmp_path):
    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import evaluate

    train_dir, log = ci_run
    data = dataset_lib.load("synthetic", ["valid"], cache_dir=str(tmp_path), num_lines=48).subset(range(16))
    from_checkpoint = evaluate(train_dir, data, batch_size=8)
    from_export = evaluate(os.path.join(train_dir, "export"), data, batch_size=8)
    assert from_checkpoint["lines"] == from_export["lines"] == 16
    assert from_checkpoint["points"] == from_export["points"] == sum(len(o) - 1 for o in data.offsets)
    np.testing.assert_allclose(from_checkpoint["nll_per_line"], from_export["nll_per_line"], rtol=1e-4)
    # The best checkpoint is the one validated last in this run (the loss fell).
    valid = [float(v) for v in re.findall(r"valid NLL (-?[\d.]+) nats/line", log)]
    assert from_checkpoint["nll_per_point"] < 3.0 and valid[-1] == min(valid)


def test_learning_rate_schedules():
    from hwtf.train import learning_rate

    assert learning_rate("constant", 1e-3, 100) == 1e-3
    exponential = learning_rate("exponential", 1e-3, 100, decay_steps=10, decay_rate=0.5)
    np.testing.assert_allclose([float(exponential(s)) for s in (0, 10, 20)], [1e-3, 5e-4, 2.5e-4], rtol=1e-5)
    cosine = learning_rate("cosine", 1e-3, 100)
    values = [float(cosine(s)) for s in range(0, 101, 10)]
    assert values[0] == pytest.approx(1e-3) and values[-1] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate("linear", 1e-3, 100)


def test_bad_flags_are_refused_before_anything_is_written(tmp_path):
    for flag in ("--mixtures=0", "--batch_size=0", "--learning_rate=-1", "--capitals_repeat=0",
                 "--synthetic_capitals=-1"):
        train_dir = tmp_path / "run"
        proc = subprocess.run(_train_command(str(train_dir), flag), cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode != 0, flag
        assert f"{flag}: must" in proc.stderr, proc.stderr[-2000:]
        assert not train_dir.exists(), flag


def test_trainer_runs_scheduled_sampling(tiny_config):
    """Through the Trainer: at teacher forcing 1 the loss is the plain NLL of
    the batch; below 1 the model's own samples replace some inputs, so the
    loss changes, the same seed repeats it and another seed does not."""
    from hwtf.model import nll
    from hwtf.train import Trainer

    import keras

    keras.utils.set_random_seed(0)
    batch = random_batch(np.random.default_rng(2), [30, 24], [5, 4])
    trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-3, clipnorm=1.0)
    start = [v.numpy() for v in trainer.model.weights]

    def loss(teacher_forcing, seed):
        for v, value in zip(trainer.model.weights, start):
            v.assign(value)
        return float(trainer.train(batch, teacher_forcing, seed)["loss"])

    plain = float(nll(trainer.model, batch)["loss"])
    assert loss(1.0, 0) == pytest.approx(plain, rel=1e-5)
    trainer.step.assign(0)
    mixed = loss(0.0, 0)
    assert mixed != plain
    trainer.step.assign(0)
    assert loss(0.0, 0) == mixed  # the step's seed is (seed, step): the same draw
    trainer.step.assign(0)
    assert loss(0.0, 1) != mixed


@pytest.mark.parametrize("mirrored", [False, True])
def test_weight_noise_moves_the_gradient_and_not_the_weights(tiny_config, mirrored):
    """An update with weight noise is the update a noiseless trainer makes
    from the noisy weights, applied to the clean ones: the gradient is taken
    at the weights plus the step's noise, and the noise is taken away."""
    from hwtf.train import Trainer, weight_noises

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if mirrored else tf.distribute.get_strategy()
    noisy = Trainer(tiny_config, strategy, "adam", 1e-2, clipnorm=1.0, weight_noise=0.1)
    plain = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, clipnorm=1.0)
    start = [v.numpy().copy() for v in noisy.model.trainable_variables]
    noise = [n.numpy() for n in weight_noises(noisy.model.trainable_variables, 0.1, tf.constant([0, 0], tf.int64))]
    assert np.std(np.concatenate([n.ravel() for n in noise])) == pytest.approx(0.1, rel=0.05)
    for v, w, n in zip(plain.model.trainable_variables, start, noise):
        v.assign(w + n)
    batch = random_batch(np.random.default_rng(3), [12, 9], [4, 3])
    noisy_loss = float(noisy.train(batch, 1.0, seed=0)["loss"])
    assert noisy_loss == pytest.approx(float(plain.train(batch, 1.0, seed=0)["loss"]), rel=1e-5)
    for v, u, w, n in zip(noisy.model.trainable_variables, plain.model.trainable_variables, start, noise):
        np.testing.assert_allclose(v.numpy() - w, u.numpy() - (w + n), atol=1e-5)
    # The noise did move the gradient: from the clean weights the loss and the update differ.
    clean = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, clipnorm=1.0)
    for v, w in zip(clean.model.trainable_variables, start):
        v.assign(w)
    assert float(clean.train(batch, 1.0, seed=0)["loss"]) != pytest.approx(noisy_loss, rel=1e-3)
    assert any(not np.allclose(v.numpy(), u.numpy(), atol=1e-6)
               for v, u in zip(noisy.model.trainable_variables, clean.model.trainable_variables))
    # Each step draws anew, the same again from the same seed and step.
    again = weight_noises(noisy.model.trainable_variables, 0.1, tf.constant([0, 0], tf.int64))
    later = weight_noises(noisy.model.trainable_variables, 0.1, tf.constant([0, 1], tf.int64))
    assert all(np.array_equal(a.numpy(), n) for a, n in zip(again, noise))
    assert not any(np.allclose(b.numpy(), n) for b, n in zip(later, noise))


def test_training_with_weight_noise_lowers_the_loss(tiny_config):
    import keras

    from hwtf.model import nll
    from hwtf.train import Trainer

    keras.utils.set_random_seed(0)
    batch = random_batch(np.random.default_rng(4), [20, 16], [4, 3])
    trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, clipnorm=1.0, weight_noise=0.02)
    before = float(nll(trainer.model, batch)["loss"])
    losses = [float(trainer.train(batch, 1.0, seed=0)["loss"]) for _ in range(30)]
    after = float(nll(trainer.model, batch)["loss"])
    assert after < before - 0.3, (before, after, losses)
    assert len(set(losses[:5])) == 5  # a new draw of noise each step


def test_weight_noise_must_be_a_standard_deviation(tiny_config):
    from hwtf.train import Trainer

    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight_noise=.*must be a standard deviation"):
            Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-2, weight_noise=bad)


def test_ctrl_c_saves_a_checkpoint_and_a_damaged_one_falls_back(tmp_path):
    """Ctrl-C (SIGINT) saves the step reached and exits cleanly; a damaged
    latest checkpoint is named and the one before it used."""
    train_dir = str(tmp_path / "run")
    proc = subprocess.Popen(_train_command(train_dir, "--checkpoint_every=4", "--steps=400", "--export_dir="),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            latest = tf.train.latest_checkpoint(train_dir)
            if latest and int(latest.rsplit("-", 1)[1]) >= 8:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    saved = re.search(r"interrupted at step (\d+): checkpoint saved", err)
    assert saved and tf.train.latest_checkpoint(train_dir).endswith(f"ckpt-{saved.group(1)}")
    # Its rate is logged at the step saved, for the hours of the steps since the last log.
    from hwtf.summaries import read_scalars
    assert read_scalars(os.path.join(train_dir, "tensorboard"), "steps_per_sec")[-1][0] == int(saved.group(1))
    # Damage the latest checkpoint: the run names it and resumes from the one before.
    latest = tf.train.latest_checkpoint(train_dir)
    with open(latest + ".data-00000-of-00001", "r+b") as f:
        f.truncate(100)
    log = _run(_train_command(train_dir, f"--steps={int(saved.group(1)) + 2}", "--export_dir=", "--image_every=0"))
    assert f"checkpoint {latest} cannot be read" in log
    resumed = re.search(r"resumed from .*ckpt-(\d+) at step (\d+)", log)
    assert resumed and int(resumed.group(1)) < int(saved.group(1))


def test_sigterm_while_the_first_step_traces_saves_it(tmp_path):
    """SIGTERM (kill, the end of a session) saves and stops as Ctrl-C does,
    even sent while TensorFlow traces the first step: the handler only asks,
    and the loop stops after the step under way (a KeyboardInterrupt raised
    inside the trace used to surface as another error and save nothing)."""
    train_dir = str(tmp_path / "run")
    proc = subprocess.Popen(_train_command(train_dir, "--export_dir=", "--image_every=0"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        log = []
        for line in proc.stderr:  # the last line before the loop's first step
            log.append(line)
            if "training synthesis:" in line:
                break
        assert proc.poll() is None, "".join(log)[-2000:]
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM: saving and stopping after the step under way" in err
    saved = re.search(r"interrupted at step (\d+): checkpoint saved", err)
    assert saved and int(saved.group(1)) >= 1
    assert tf.train.latest_checkpoint(train_dir).endswith(f"ckpt-{saved.group(1)}")


def test_a_broken_run_stops_and_exports_nothing(tmp_path):
    """A config.json whose normalisation divides by zero: every update is
    skipped; the run stops after MAX_SKIPPED_IN_A_ROW with one line and
    exports nothing (it used to exit 0 and replace the export). A truncated
    config.json is named."""
    import json

    from hwtf.train import MAX_SKIPPED_IN_A_ROW

    train_dir = tmp_path / "run"
    train_dir.mkdir()
    config = {"alphabet": " abcdefghijklmnopqrstuvwxyz.,", "lstm_layers": 2, "lstm_units": 32, "mixtures": 5,
              "model": "synthesis", "normalizer": {"mean": [0.0, 0.0], "std": [0.0, 0.0]}, "window_mixtures": 3}
    (train_dir / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(_train_command(str(train_dir)), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{MAX_SKIPPED_IN_A_ROW} updates in a row were skipped" in proc.stderr
    assert not (train_dir / "export").exists()
    (train_dir / "config.json").write_text('{"alphabet": "ab')
    proc = subprocess.run(_train_command(str(train_dir)), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and f"{train_dir / 'config.json'} is damaged" in proc.stderr


def test_a_resumed_run_takes_its_constant_learning_rate_from_the_flags(ci_run, tmp_path):
    # The checkpoint holds Adam's learning rate; a stint that lowers it must
    # train at the new rate, not silently at the saved one.
    import shutil

    train_dir, _ = ci_run
    resumed = str(tmp_path / "run")
    shutil.copytree(train_dir, resumed, ignore=shutil.ignore_patterns("export"))
    log = _run(_train_command(resumed, "--steps=42", "--learning_rate=0.0003", "--lr_schedule=constant",
                              "--export_dir=", "--image_every=0", "--eval_every=1000"))
    assert "learning rate 0.0003 (the checkpoint's was 0.005)" in log
    latest = tf.train.latest_checkpoint(resumed)
    assert latest.endswith("ckpt-42")
    assert tf.train.load_variable(latest, "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE") == pytest.approx(3e-4)
    # Resumed again at the same rate, it says nothing of a change (the saved
    # rate is float32: 3e-4 reads back as 0.0003000000142492354).
    log = _run(_train_command(resumed, "--steps=43", "--learning_rate=0.0003", "--lr_schedule=constant",
                              "--export_dir=", "--image_every=0", "--eval_every=1000"))
    assert "resumed from" in log and "the checkpoint's was" not in log


@pytest.mark.parametrize("state", ["without timestamps", "missing", "and a newer packed one"])
def test_a_copied_checkpoint_resumes_at_its_step(ci_run, tmp_path, state):
    # A stint kept by docs/save_stint.py has a hand-written `checkpoint` file
    # (no timestamps), or someone copied only the ckpt files: CheckpointManager
    # alone sees no checkpoint there and the run would start again from step 0.
    # Or a newer stint's packed checkpoint was copied beside them: the run
    # goes on from that one.
    from hwtf import packed

    train_dir, _ = ci_run
    copied = tmp_path / "run"
    copied.mkdir()
    for path in glob.glob(os.path.join(train_dir, "ckpt-30.*")) + [os.path.join(train_dir, "config.json")]:
        with open(path, "rb") as src, open(copied / os.path.basename(path), "wb") as dst:
            dst.write(src.read())
    step = 30
    if state != "missing":
        (copied / "checkpoint").write_text('model_checkpoint_path: "ckpt-30"\nall_model_checkpoint_paths: "ckpt-30"\n')
    if state == "and a newer packed one":
        packed.pack(os.path.join(train_dir, "ckpt-40"), str(copied / "ckpt-40.packed.npz"))
        step = 40
    # Scored as it is, it is that checkpoint (the evaluator reads such a
    # folder as training does, and leaves it as it was).
    from hwtf.evaluate import checkpoint_model

    before = sorted(os.listdir(copied))
    scored = checkpoint_model(str(copied))[2]
    assert os.path.basename(scored) == f"ckpt-{step}" and sorted(os.listdir(copied)) == before
    # Resumed in the other layout: a checkpoint is the same in either.
    log = _run(_train_command(str(copied), f"--steps={step + 2}", "--layout=wavefront", "--export_dir=",
                              "--image_every=0", "--eval_every=1000"))
    assert re.search(rf"resumed from .*ckpt-{step} at step {step}", log), log[-2000:]
    assert tf.train.latest_checkpoint(str(copied)).endswith(f"ckpt-{step + 2}")


def test_save_stint_keeps_checkpoint_curves_and_notes_and_make_curve_draws_them(ci_run, tmp_path):
    from hwtf import summaries

    train_dir, _ = ci_run
    kept = str(tmp_path / "kept")
    bad = subprocess.run([sys.executable, "docs/save_stint.py", f"--train_dir={train_dir}", f"--out={kept}",
                          "--note=ten=Some host"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--note='ten=Some host': want STEP=HOST" in bad.stderr
    assert not os.path.exists(kept)
    _run([sys.executable, "docs/save_stint.py", f"--train_dir={train_dir}", f"--out={kept}",
          "--note=10=Other host, mixed_bfloat16"], timeout=120)
    # The checkpoint is kept packed, and nothing else of it.
    assert sorted(os.listdir(kept)) == ["ckpt-40.packed.npz", "config.json", "tensorboard"]
    assert tf.train.latest_checkpoint(kept) is None
    assert summaries.read_scalars(kept, "valid/nll_per_line") == summaries.read_scalars(train_dir, "valid/nll_per_line")
    (_, _, first), (step, _, other) = summaries.stints(kept)
    assert first == summaries.read_texts(train_dir, "run/host")[0][1]
    assert (step, other) == (10, "Other host, mixed_bfloat16")
    out = str(tmp_path / "curve.png")
    _run([sys.executable, "docs/make_curve.py", f"--train_dir={kept}", "--compare_dir=", f"--out={out}"], timeout=120)
    assert tf.io.decode_png(open(out, "rb").read()).shape[2] in (3, 4)
    few = subprocess.run([sys.executable, "docs/make_curve.py", f"--train_dir={kept}", "--compare_dir=",
                          f"--out={out}", "--plateau=0-40"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert few.returncode != 0 and "--plateau=0-40: 2 validations in that range; the fit needs 4" in few.stderr
    # Copied to a run, as each stint begins, it resumes at its step.
    resumed = str(tmp_path / "resumed")
    shutil.copytree(kept, resumed)
    log = _run(_train_command(resumed, "--steps=42", "--export_dir=", "--image_every=0", "--eval_every=1000"))
    assert re.search(r"unpacked .*ckpt-40.packed.npz", log) and re.search(r"resumed from .*ckpt-40 at step 40", log)
    assert tf.train.latest_checkpoint(resumed).endswith("ckpt-42")
    # --drop_momentum keeps the optimizer's first moments as shapes only.
    light = str(tmp_path / "light")
    said = subprocess.run([sys.executable, "docs/save_stint.py", f"--train_dir={train_dir}", f"--out={light}",
                           "--drop_momentum"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert said.returncode == 0, said.stderr[-2000:]
    assert re.search(r"its optimizer's \d+ first moments left out", said.stdout), said.stdout
    with np.load(os.path.join(light, "ckpt-40.packed.npz"), allow_pickle=False) as light_file, \
            np.load(os.path.join(kept, "ckpt-40.packed.npz"), allow_pickle=False) as kept_file:
        zeroed = [k for k in light_file.files if k.startswith("zeros:")]
        assert zeroed and len(light_file.files) == len(kept_file.files)
        assert all("bfloat16:" + k[len("zeros:"):] in kept_file.files for k in zeroed)


def test_a_packed_checkpoint_is_the_checkpoint_with_its_moments_in_bfloat16(ci_run, tmp_path):
    from hwtf import packed
    from hwtf.data import dataset as dataset_lib
    from hwtf.evaluate import evaluate

    train_dir, _ = ci_run
    latest = tf.train.latest_checkpoint(train_dir)
    kept = tmp_path / "kept"
    kept.mkdir()
    path = str(kept / "ckpt-40.packed.npz")
    info = packed.pack(latest, path)
    assert info["rounded"] >= 2  # Adam's m and v
    assert info["bytes"] < 0.75 * os.path.getsize(latest + ".data-00000-of-00001")
    prefix = packed.unpack(path, str(tmp_path / "ckpt-40"))
    original, unpacked = tf.train.load_checkpoint(latest), tf.train.load_checkpoint(prefix)
    assert original.get_variable_to_dtype_map() == unpacked.get_variable_to_dtype_map()
    rounded = 0
    for key in original.get_variable_to_dtype_map():
        a, b = original.get_tensor(key), unpacked.get_tensor(key)
        if packed.is_moment(key, np.asarray(a)):
            np.testing.assert_allclose(b, a, rtol=2.0**-8, atol=1e-37)
            rounded += not np.array_equal(a, b)
        else:
            assert np.array_equal(a, b), key
    assert rounded >= 2
    # Scored straight from the packed folder, it is the run (its best is
    # its latest); the folder gets nothing written into it.
    shutil.copy(os.path.join(train_dir, "config.json"), kept)
    data = dataset_lib.load("synthetic", ["valid"], cache_dir=str(tmp_path), num_lines=48).subset(range(8))
    np.testing.assert_allclose(evaluate(str(kept), data, batch_size=8)["nll_per_line"],
                               evaluate(train_dir, data, batch_size=8)["nll_per_line"], rtol=1e-5)
    assert sorted(os.listdir(kept)) == ["ckpt-40.packed.npz", "config.json"]
    # A packed file cut short is named, not read as a checkpoint.
    with open(path, "r+b") as f:
        f.truncate(info["bytes"] // 2)
    with pytest.raises(Exception, match="(?i)zip|file|truncat"):
        packed.unpack(path, str(tmp_path / "cut" / "ckpt-40"))


def test_a_packed_checkpoint_without_momentum_unpacks_it_as_zeros_and_resumes(ci_run, tmp_path):
    from hwtf import packed

    train_dir, _ = ci_run
    latest = tf.train.latest_checkpoint(train_dir)
    whole = packed.pack(latest, str(tmp_path / "whole.npz"))
    kept = tmp_path / "kept"
    kept.mkdir()
    path = str(kept / "ckpt-40.packed.npz")
    info = packed.pack(latest, path, drop_momentum=True)
    # Adam's m left out (one a weight), its v kept: half the moments' bytes.
    assert info["zeroed"] == info["rounded"] == whole["rounded"] // 2 >= 1
    assert info["bytes"] < 0.8 * whole["bytes"]  # 6 bytes a weight where it was 8
    original = tf.train.load_checkpoint(latest)
    momenta = packed.momentum_keys(original.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    assert len(momenta) == info["zeroed"] and all(k.startswith("optimizer/_variables/") for k in momenta)
    unpacked = tf.train.load_checkpoint(packed.unpack(path, str(tmp_path / "ckpt-40")))
    assert original.get_variable_to_dtype_map() == unpacked.get_variable_to_dtype_map()
    assert original.get_variable_to_shape_map() == unpacked.get_variable_to_shape_map()
    for key in original.get_variable_to_dtype_map():
        a, b = original.get_tensor(key), unpacked.get_tensor(key)
        if key in momenta:
            assert np.any(a) and not np.any(b), key
        elif packed.is_moment(key, np.asarray(a)):
            np.testing.assert_allclose(b, a, rtol=2.0**-8, atol=1e-37)
        else:
            assert np.array_equal(a, b), key
    # A checkpoint without them (weights only) is refused, not packed as it is.
    from hwtf.model import ModelConfig

    weights_only = tf.train.Checkpoint(model=ModelConfig.load(os.path.join(train_dir, "config.json")).build_model())
    with pytest.raises(ValueError, match="no optimizer first moments"):
        packed.pack(weights_only.save(str(tmp_path / "weights" / "ckpt")), str(tmp_path / "no.npz"),
                    drop_momentum=True)
    # A run resumes from it at its step and trains on.
    shutil.copy(os.path.join(train_dir, "config.json"), kept)
    log = _run(_train_command(str(kept), "--steps=42", "--export_dir=", "--image_every=0", "--eval_every=1000"))
    assert re.search(r"resumed from .*ckpt-40 at step 40", log), log[-2000:]
    resumed = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(kept)))
    assert resumed.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 42
    assert all(np.any(resumed.get_tensor(k)) for k in momenta)  # the moments rebuilt from the new gradients


def test_average_checkpoints_writes_the_mean_weights_that_evaluate_scores(ci_run, tmp_path):
    from hwtf.model import ModelConfig
    from hwtf.train import run_checkpoints

    train_dir, _ = ci_run
    checkpoints = [*run_checkpoints(train_dir), tf.train.latest_checkpoint(os.path.join(train_dir, "best"))]
    assert len(set(checkpoints)) >= 2
    out = str(tmp_path / "average")
    _run([sys.executable, "docs/average_checkpoints.py", f"--train_dir={train_dir}",
          f"--checkpoints={','.join(checkpoints)}", f"--out={out}"], timeout=120)
    config = ModelConfig.load(os.path.join(out, "config.json"))

    def weights(checkpoint):  # read through the object graph: some are saved under the optimizer's path
        model = config.build_model()
        tf.train.Checkpoint(model=model).read(checkpoint).assert_existing_objects_matched().expect_partial()
        return [v.numpy() for v in model.weights]

    averaged, each = weights(tf.train.latest_checkpoint(out)), [weights(c) for c in checkpoints]
    differ = 0
    for i, value in enumerate(averaged):
        values = [w[i] for w in each]
        differ += not np.array_equal(values[0], values[-1])
        np.testing.assert_allclose(value, np.mean(values, axis=0), rtol=1e-6, atol=1e-7)
    assert differ, "the checkpoints averaged are all the same"
    scored = subprocess.run([sys.executable, "-m", "hwtf.evaluate", f"--model={out}", "--max_lines=8", "--json",
                             f"--cache_dir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert np.isfinite(json.loads(scored.stdout.strip().splitlines()[-1])["nll_per_line"])
    bad = subprocess.run([sys.executable, "docs/average_checkpoints.py", f"--train_dir={train_dir}",
                          f"--checkpoints={train_dir}/ckpt-999", f"--out={out}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and f"no checkpoint at {train_dir}/ckpt-999" in bad.stderr


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_loopback_reach_the_single_process_loss(ci_run, tmp_path):
    """--strategy=multi_worker: two processes, each one worker of a
    MultiWorkerMirroredStrategy cluster on 127.0.0.1, split each global batch
    of 8 lines between them and end where one process does on the same
    batches; only the chief writes checkpoints and the export."""
    import json

    train_dir = str(tmp_path / "run")
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            _train_command(train_dir, "--strategy=multi_worker", "--steps=10", "--image_every=0"),
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        ))
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=300)[1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-3000:]
        assert "MultiWorkerMirroredStrategy: worker" in log and "2 replica(s) in all" in log
    _, straight_log = ci_run
    for log in logs:
        np.testing.assert_allclose(
            _logged_losses(log)[10], _logged_losses(straight_log)[10], rtol=1e-3, atol=1e-3
        )
    assert tf.train.latest_checkpoint(train_dir).endswith("ckpt-10")
    assert os.path.exists(os.path.join(train_dir, "export", "saved_model.pb"))
    assert not glob.glob(os.path.join(train_dir, "worker-*"))


def test_multi_worker_without_tf_config_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    proc = subprocess.run(_train_command(str(tmp_path / "run"), "--strategy=multi_worker"),
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "needs TF_CONFIG" in proc.stderr and "Traceback" not in proc.stderr
    env["TF_CONFIG"] = '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}'
    proc = subprocess.run(_train_command(str(tmp_path / "run"), "--strategy=multi_worker"),
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "task index 3" in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_a_time_limit_ends_the_run_at_the_step_reached_as_its_last(ci_run, tmp_path):
    """A stint of known length: the step reached when --time_limit runs out
    is validated, checkpointed and exported as the last of --steps would be."""
    import re
    import shutil

    train_dir, _ = ci_run
    resumed = str(tmp_path / "run")
    shutil.copytree(train_dir, resumed, ignore=shutil.ignore_patterns("export"))
    log = _run(_train_command(resumed, "--steps=100000", "--time_limit=0.001", "--image_every=0",
                              "--eval_every=1000", "--checkpoint_every=1000"))
    reached = re.search(r"--time_limit=0.001 minutes reached at step (\d+): it is the last", log)
    assert reached, log[-2000:]
    step = int(reached.group(1))
    assert step > 40 and f"step {step}  valid NLL" in log
    assert tf.train.latest_checkpoint(resumed).endswith(f"ckpt-{step}")
    assert os.path.exists(os.path.join(resumed, "export", "saved_model.pb"))


@pytest.mark.parametrize("flags, message", [
    (["--time_limit=-1"], "--time_limit=-1.0: must be minutes"),
    (["--time_limit=5", "--strategy=multi_worker"], "--time_limit cannot end a multi_worker run"),
    (["--layout=wavefront", "--lstm_layers=1"], "--layout=wavefront: needs --model=synthesis and --lstm_layers"),
    (["--layout=wavefront", "--model=prediction"], "--layout=wavefront: needs --model=synthesis"),
])
def test_a_bad_time_limit_or_layout_is_refused(tmp_path, flags, message):
    train_dir = tmp_path / "run"
    proc = subprocess.run(_train_command(str(train_dir), *flags), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert not train_dir.exists()



def test_a_step_in_the_wavefront_layout_updates_as_the_layered_one(tiny_config):
    # --layout changes how the recurrence runs, not the model: from the same
    # weights, one compiled training step on the same batch gives the same
    # loss, gradient norm and updated weights in either layout.
    import keras

    from hwtf.train import Trainer

    batch = random_batch(np.random.default_rng(2), [14, 9, 11], [5, 3, 4])
    results = {}
    for layout in ("layered", "wavefront"):
        keras.utils.set_random_seed(4)
        trainer = Trainer(tiny_config, tf.distribute.get_strategy(), "adam", 1e-3, clipnorm=10.0, layout=layout)
        assert trainer.model.stack.layout == layout
        out = trainer.train(batch, 1.0, seed=0)
        results[layout] = (float(out["loss"]), float(out["grad_norm"]),
                           [v.numpy() for v in trainer.model.trainable_variables])
    (loss, norm, weights), (wf_loss, wf_norm, wf_weights) = results["layered"], results["wavefront"]
    assert wf_loss == pytest.approx(loss, rel=1e-5) and wf_norm == pytest.approx(norm, rel=1e-4)
    # Adam moves every weight by about the learning rate: equal to far less.
    for a, b in zip(weights, wf_weights):
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_the_new_units_masks_are_what_widening_added(tiny_config):
    """`hwtf.unit_weights.new_unit_mask` marks exactly the weights that widening
    added; the rest are the narrower network's, in order."""
    import dataclasses

    from hwtf.stint_state import state_arrays
    from hwtf.train import Trainer
    from hwtf.unit_weights import new_unit_mask, rate_scales
    from hwtf.widen import widen_arrays

    config = dataclasses.replace(tiny_config, lstm_layers=3)
    narrow, m, v = state_arrays(Trainer(config, tf.distribute.get_strategy(), "adam", 1e-2))
    wide = widen_arrays(narrow, m, v, 3, 16, 20, np.random.default_rng(0))[0]
    for name, array in wide.items():
        mask = new_unit_mask(name, array.shape, 3, 16, 20)
        assert mask.sum() == array.size - narrow[name].size, name
        np.testing.assert_array_equal(array[~mask], narrow[name].ravel(), err_msg=name)
    scales = rate_scales({k: a.shape for k, a in wide.items()}, 3, 16, 20, 7.0)
    assert sorted(scales) == sorted(k for k in wide if k not in ("window_bias", "head_bias"))
    assert all(set(np.unique(s)) == {1.0, 7.0} for s in scales.values())


def test_new_units_learn_at_their_multiple_of_the_rate(tiny_config):
    """--new_units_rate: an update of the new units' weights is that
    multiple of the update the optimizer makes; every other weight's is the
    optimizer's own."""
    from hwtf.model import named_weights
    from hwtf.train import Trainer
    from hwtf.unit_weights import new_unit_mask

    strategy = tf.distribute.get_strategy()
    for bad in (dict(new_units_from=16), dict(new_units_from=10, new_units_rate=0.0)):
        with pytest.raises(ValueError, match="new_units_"):
            Trainer(tiny_config, strategy, "adam", 1e-2, new_units_from=bad["new_units_from"],
                    new_units_rate=bad.get("new_units_rate", 3.0))
    plain = Trainer(tiny_config, strategy, "adam", 1e-2, clipnorm=1.0)
    faster = Trainer(tiny_config, strategy, "adam", 1e-2, clipnorm=1.0, new_units_from=10, new_units_rate=3.0)
    assert faster.new_unit_weights == sum(
        int(new_unit_mask(k, tuple(w.shape), 2, 10, 16).sum()) for k, w in named_weights(faster.model).items())
    faster.model.set_weights(plain.model.get_weights())
    before = {k: w.numpy().copy() for k, w in named_weights(plain.model).items()}
    batch = random_batch(np.random.default_rng(4), [12, 9], [4, 3])
    for trainer in (plain, faster):
        trainer.train(batch, 1.0, seed=0)
    moved = {}
    for trainer in (plain, faster):
        moved[trainer] = {k: w.numpy() - before[k] for k, w in named_weights(trainer.model).items()}
    for name, step in moved[plain].items():
        mask = new_unit_mask(name, step.shape, 2, 10, 16)
        assert np.any(step[mask] != 0) or not mask.any(), name
        np.testing.assert_allclose(moved[faster][name], np.where(mask, 3.0, 1.0) * step, rtol=1e-4,
                                   atol=1e-7, err_msg=name)


def test_widen_writes_as_the_run_did_and_trains_on(ci_run, tmp_path):
    """`python -m hwtf.widen`: the run's checkpoint with more units a layer
    scores a batch as the narrow one does (the new units' outgoing weights
    are zero), resumes at the same step, and training moves those weights."""
    import dataclasses

    from hwtf.model import ModelConfig, nll

    train_dir, _ = ci_run
    wide_dir = str(tmp_path / "wide")
    widen = [sys.executable, "-m", "hwtf.widen", "--flagfile=flags/ci.cfg", f"--train_dir={train_dir}"]
    narrower = subprocess.run(widen + ["--lstm_units=16", f"--out={wide_dir}"], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
    assert narrower.returncode != 0 and "--lstm_units=16: the run has 32 units a layer" in narrower.stderr
    _run(widen + ["--lstm_units=48", f"--out={wide_dir}"])
    narrow_config = ModelConfig.load(os.path.join(train_dir, "config.json"))
    wide_config = ModelConfig.load(os.path.join(wide_dir, "config.json"))
    assert dataclasses.replace(wide_config, lstm_units=32) == narrow_config and wide_config.lstm_units == 48
    assert tf.train.latest_checkpoint(wide_dir).endswith("ckpt-40")

    def restored(config, path):
        model = config.build_model()
        tf.train.Checkpoint(model=model).restore(path).expect_partial()
        return model

    narrow = restored(narrow_config, tf.train.latest_checkpoint(train_dir))
    wide = restored(wide_config, tf.train.latest_checkpoint(wide_dir))
    batch = random_batch(np.random.default_rng(3), [40, 25, 9], [7, 4, 2], narrow.stack.alphabet_size)
    np.testing.assert_allclose(nll(wide, batch)["loss"].numpy(), nll(narrow, batch)["loss"].numpy(), rtol=1e-5)
    head = wide.head.dense.kernel.numpy()
    new_rows = np.concatenate([head[n * 48 + 32 : (n + 1) * 48] for n in range(2)])
    assert not np.any(new_rows) and np.any(wide.stack.recurrent_kernels[0].numpy()[:, 32:48])
    # Every weight out of the new units is zero (into the recurrence, the
    # layer above, the window and the head); those out of the old are not.
    from hwtf.model import named_weights
    from hwtf.widen import unit_scales

    def scales(model):
        return unit_scales({k: v.numpy() for k, v in named_weights(model).items()}, 2, 32, 48)

    assert all(new == 0 < old for old, new in scales(wide)), scales(wide)

    log = _run(_train_command(wide_dir, "--lstm_units=48", "--steps=45", "--export_dir=", "--image_every=0",
                              "--eval_every=1000"))
    assert re.search(r"resumed from .*ckpt-40 at step 40", log), log[-2000:]
    assert np.isfinite(_logged_losses(log)[45])
    trained = restored(wide_config, tf.train.latest_checkpoint(wide_dir))
    head = trained.head.dense.kernel.numpy()
    assert np.any(np.concatenate([head[n * 48 + 32 : (n + 1) * 48] for n in range(2)]))
    # docs/new_units.py reads the same: the new units' weights have grown,
    # still well short of the old units'.
    assert all(0 < new < old / 2 for old, new in scales(trained)), scales(trained)
    said = subprocess.run([sys.executable, "docs/new_units.py", f"--model={wide_dir}", "--old_units=32"], cwd=REPO,
                          capture_output=True, text=True, timeout=120).stdout
    rows = [line.split() for line in said.splitlines() if re.match(r"\s*\d+ ", line)]
    assert len(rows) == 2 and all(float(r[3]) == pytest.approx(new / old, abs=1e-3)
                                  for r, (old, new) in zip(rows, scales(trained))), said
