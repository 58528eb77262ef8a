"""The exported SavedModel, used the way a server uses it."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[0])


def _generate(model, texts, seed=1, max_steps=200, bias=0.5):
    out = model.generate(
        text=tf.constant(texts), bias=tf.constant(bias), seed=tf.constant(seed, tf.int64),
        max_steps=tf.constant(max_steps),
    )
    return {k: v.numpy() for k, v in out.items()}


FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
out = model.generate(text=tf.constant(["hello world", "ab"]), bias=tf.constant(0.5),
                     seed=tf.constant(3, tf.int64), max_steps=tf.constant(300))
prime = np.zeros([2, 40, 3], np.float32); prime[:, :, 0] = 12.0; prime[:, ::8, 2] = 1.0
primed = model.generate_primed(text=tf.constant(["more", "text"]), prime_strokes=tf.constant(prime),
                               prime_text=tf.constant(["a line", "b"]), bias=tf.constant(0.0),
                               seed=tf.constant(4, tf.int64), max_steps=tf.constant(300))
print(json.dumps({
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("hwtf", "tensorflow_probability")),
    "signatures": sorted(model.signatures),
    "shapes": {k: list(v.shape) for k, v in out.items()},
    "primed_shapes": {k: list(v.shape) for k, v in primed.items()},
    "lengths": out["lengths"].numpy().tolist(),
    "finite": bool(np.isfinite(out["strokes"].numpy()).all() and np.isfinite(primed["strokes"].numpy()).all()),
}))
"""


def test_loads_in_a_fresh_process_without_hwtf(exported, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, exported[0]],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["modules"] == [], "loading needs neither hwtf nor TFP"
    assert {"generate", "generate_primed", "serving_default", "log_prob", "mixture", "config"} <= set(
        result["signatures"]
    )
    t = result["shapes"]["strokes"][1]
    assert result["shapes"] == {"strokes": [2, t, 3], "lengths": [2], "phi": [2, t, 11]}
    assert max(result["lengths"]) == t <= 300
    assert result["primed_shapes"]["strokes"][0] == 2 and result["finite"]


def test_saved_model_cli_shows_and_runs(exported, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--all", "--dir", exported[0]], capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for name in ("generate", "generate_primed", "log_prob", "config", "serving_default"):
        assert f"signature_def['{name}']" in show.stdout
    run = subprocess.run(
        [cli, "run", "--dir", exported[0], "--tag_set", "serve", "--signature_def", "generate",
         "--input_exprs", 'text=["hello"];bias=0.5;seed=1;max_steps=60', "--outdir", str(tmp_path), "--overwrite"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    strokes = np.load(tmp_path / "strokes.npy", allow_pickle=False)
    lengths = np.load(tmp_path / "lengths.npy", allow_pickle=False)
    assert strokes.shape[0] == 1 and strokes.shape[2] == 3 and 0 < lengths[0] <= 60


def test_empty_text_writes_nothing(loaded):
    out = _generate(loaded, [""])
    assert out["lengths"].tolist() == [0] and out["strokes"].shape == (1, 0, 3)
    out = _generate(loaded, ["", "ab"])
    assert out["lengths"][0] == 0 and out["lengths"][1] > 0
    np.testing.assert_array_equal(out["strokes"][0], 0.0)


def test_characters_outside_the_alphabet_are_written_as_unknown(loaded):
    # Both strings differ only in characters the model does not know, which
    # all become the one unknown character: the ink is the same.
    a = _generate(loaded, ["héllo wörld!"])
    b = _generate(loaded, ["h☃llo w€rld?"])
    np.testing.assert_array_equal(a["strokes"], b["strokes"])
    assert a["phi"].shape[2] == len("héllo wörld!")


def test_long_text_is_bounded_by_max_steps(loaded):
    out = _generate(loaded, ["the quick brown fox " * 500], max_steps=150)  # 10,000 characters
    assert out["lengths"].tolist() == [150] and out["strokes"].shape == (1, 150, 3)
    assert out["phi"].shape == (1, 150, 10000)


def test_same_seed_same_strokes(loaded):
    a, b, c = (_generate(loaded, ["same seed"], seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a["strokes"], b["strokes"])
    assert not np.array_equal(a["strokes"], c["strokes"])


def test_strokes_come_back_in_the_data_units(loaded, exported):
    _, config = exported
    out = _generate(loaded, ["abc"], bias=3.0)
    n = out["lengths"][0]
    # With a large bias the model writes near its means; denormalised, the
    # typical step is on the scale of the data's std, not of unit variance.
    assert np.abs(out["strokes"][0, :n, :2]).mean() > 2.0
    assert set(np.unique(out["strokes"][0, :n, 2])) <= {0.0, 1.0}


def test_log_prob_signature_matches_training_nll(loaded, exported):
    from hwtf.model import nll

    path, config = exported
    rng = np.random.default_rng(0)
    strokes = rng.normal(size=(2, 30, 3)).astype(np.float32) * 20
    strokes[..., 2] = rng.random((2, 30)) < 0.1
    strokes[1, 20:] = 0
    out = loaded.log_prob(strokes=tf.constant(strokes), lengths=tf.constant([30, 20]), text=tf.constant(["abc", "de"]))
    model = config.build_model()
    for v, w in zip(model.weights, loaded.weights):  # the export's weights
        v.assign(w)
    batch = {
        "offsets": config.normalizer_lib.normalize(strokes.reshape(-1, 3)).reshape(2, 30, 3),
        "lengths": np.array([30, 20], np.int32),
        "chars": config.alphabet_lib.encode("abc")[None].repeat(2, 0),
        "char_lengths": np.array([3, 2], np.int32),
    }
    batch["chars"][1, :2] = config.alphabet_lib.encode("de")
    want = nll(model, batch)
    np.testing.assert_allclose(-out["log_prob"].numpy().sum(), want["nll_sum"].numpy(), rtol=1e-5)
    assert out["points"].numpy().tolist() == [29, 19]


def test_mixture_signature_gives_the_next_offset_distribution_in_data_units(loaded, exported):
    _, config = exported
    strokes = np.random.default_rng(1).normal(size=(2, 12, 3)).astype(np.float32) * 20
    strokes[..., 2] = strokes[..., 2] > 10
    out = loaded.mixture(strokes=tf.constant(strokes), lengths=tf.constant([12, 7]), text=tf.constant(["ab", "c"]))
    out = {k: v.numpy() for k, v in out.items()}
    assert out["weights"].shape == (2, 12, 4) and out["mu"].shape == (2, 12, 4, 2)
    np.testing.assert_allclose(out["weights"][0].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(out["weights"][1, 7:], 0.0)
    assert np.all(out["sigma"][0] >= 1e-3 * min(config.normalizer["std"]))
    assert np.all(np.abs(out["rho"]) < 1) and np.all((out["pen_up"] >= 0) & (out["pen_up"] <= 1))


def test_eight_threads_share_one_loaded_model(loaded):
    expected = {s: _generate(loaded, [f"thread {s}"], seed=s)["strokes"] for s in range(8)}
    results, errors = {}, []

    def worker(s):
        try:
            for _ in range(3):
                results.setdefault(s, []).append(_generate(loaded, [f"thread {s}"], seed=s)["strokes"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for s in range(8):
        for got in results[s]:
            np.testing.assert_array_equal(got, expected[s])


def test_prediction_model_export_scribbles(tmp_path):
    from hwtf.export import export
    from hwtf.model import ModelConfig

    config = ModelConfig(model="prediction", lstm_units=8, lstm_layers=1, mixtures=3)
    path = export(config.build_model(), config, str(tmp_path / "prediction"))
    model = tf.saved_model.load(path)
    assert {"scribble", "serving_default", "log_prob", "config"} <= set(model.signatures)
    assert "generate" not in model.signatures
    out = model.scribble(num_steps=tf.constant(25), bias=tf.constant(0.0), seed=tf.constant(1, tf.int64))
    assert out["strokes"].shape == (1, 25, 3) and out["lengths"].numpy().tolist() == [25]
    assert json.loads(model.config()["config"].numpy())["model"] == "prediction"


def test_an_export_never_replaces_a_folder_of_other_files(tmp_path, exported):
    """--export_dir on an existing folder used to delete everything in it."""
    from hwtf.export import export

    path, config = exported
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="not an hwtf export"):
        export(config.build_model(), config, str(precious))
    assert (precious / "thesis.tex").read_text() == "years of work"
    proc = subprocess.run(
        [sys.executable, "-m", "hwtf.train", "--flagfile=flags/ci.cfg", f"--train_dir={tmp_path / 'run'}",
         f"--export_dir={precious}"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2 and "--export_dir: " in proc.stderr and "not an hwtf export" in proc.stderr
    assert not (tmp_path / "run").exists() and (precious / "thesis.tex").exists()
    # An empty folder is written into (and an export is replaced: the
    # in-place re-export of the float32 test below).
    empty = tmp_path / "empty"
    empty.mkdir()
    export(config.build_model(), config, str(empty))
    assert (empty / "saved_model.pb").exists()


def test_signatures_refuse_what_they_cannot_write(loaded):
    """A NaN or negative bias, a prime with NaN or with no points: an error
    naming the input (a NaN prime used to write a straight line to max_steps,
    an empty one failed in a GatherV2); and no call runs unbounded."""
    for bias in (float("nan"), -1.0, float("inf")):
        with pytest.raises(tf.errors.InvalidArgumentError, match="bias must be a finite number >= 0"):
            _generate(loaded, ["abc"], bias=bias)
    prime = np.full([1, 12, 3], 5.0, np.float32)
    prime[0, 3, 0] = np.nan
    args = dict(text=tf.constant(["abc"]), prime_text=tf.constant(["ab"]), bias=tf.constant(0.5),
                seed=tf.constant(1, tf.int64), max_steps=tf.constant(50))
    with pytest.raises(tf.errors.InvalidArgumentError, match="prime_strokes has non-finite values"):
        loaded.generate_primed(prime_strokes=tf.constant(prime), **args)
    with pytest.raises(tf.errors.InvalidArgumentError, match="prime_strokes has no points"):
        loaded.generate_primed(prime_strokes=tf.zeros([1, 0, 3]), **args)
    out = _generate(loaded, ["ab"], max_steps=2**31 - 1)  # an untrained model may never stop on its own
    assert out["lengths"][0] <= 100 * 2 + 100


def test_python_m_hwtf_export_starts_quietly(exported, tmp_path):
    """hwtf.export is the serving module too: run as a command it prints no
    start-up log and none of TensorFlow's INFO internals (signature
    input renaming, checkpoint sharding), only its own result line."""
    path, _ = exported
    out = tmp_path / "again"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "hwtf.export", f"--model={path}", f"--out={out}"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"re-exported {path} to {out}"), proc.stderr[-2000:]
    assert proc.stdout == ""


def test_an_export_computes_in_float32_whatever_its_model_trained_in(tmp_path, tiny_config):
    """Emulated bfloat16 is twice as slow a sampling step on a CPU without it,
    and an export moves between hosts: float32 unless asked, weights kept."""
    import keras

    from hwtf.export import computes_in_bfloat16, export, reexport

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_config.build_model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.stack.compute_dtype == "bfloat16"
    strokes = np.random.default_rng(0).normal(10, 20, size=(2, 30, 3)).astype(np.float32)
    strokes[..., 2] = 0
    args = dict(strokes=tf.constant(strokes), lengths=tf.constant([30, 20]), text=tf.constant(["abc", "de"]))

    def log_prob(path):
        loaded = tf.saved_model.load(path)  # held while its function runs
        return loaded.log_prob(**args)["log_prob"].numpy()

    plain = export(model, tiny_config, str(tmp_path / "plain"))
    half = export(model, tiny_config, str(tmp_path / "half"), precision="mixed_bfloat16")
    assert not computes_in_bfloat16(plain) and computes_in_bfloat16(half)
    # The same weights: float32 and bfloat16 agree as far as bfloat16 goes.
    np.testing.assert_allclose(log_prob(plain), log_prob(half), rtol=0.02)
    (tmp_path / "half" / "README.md").write_text("# a model card\n")
    styles = (tmp_path / "half" / "styles.json").read_bytes()
    # In place, a re-export keeps the precision; anywhere, it keeps the model
    # card and the styles (the README's pictures prime with them).
    assert computes_in_bfloat16(reexport(half))
    again = reexport(half, str(tmp_path / "again"), precision="float32")
    assert not computes_in_bfloat16(again)
    np.testing.assert_allclose(log_prob(again), log_prob(plain), rtol=1e-6)
    for folder in ("half", "again"):
        assert (tmp_path / folder / "README.md").read_text() == "# a model card\n"
        assert (tmp_path / folder / "styles.json").read_bytes() == styles
    with pytest.raises(ValueError, match="precision must be one of"):
        export(model, tiny_config, str(tmp_path / "bad"), precision="float16")
