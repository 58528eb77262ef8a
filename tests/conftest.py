"""Shared test setup: quiet TensorFlow, a small model configuration."""

import fcntl
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def tiny_config():
    from hwtf.model import ModelConfig

    return ModelConfig(
        lstm_units=16,
        lstm_layers=2,
        window_mixtures=3,
        mixtures=4,
        alphabet="abcdefghijklmnopqrstuvwxyz ",
        normalizer={"mean": [5.0, 0.0], "std": [20.0, 20.0]},
    )


def random_batch(rng: np.random.Generator, lengths, char_lengths, alphabet_size=29):
    """A padded batch like `make_dataset`'s, with zeros past each length."""
    lengths = np.asarray(lengths, np.int32)
    char_lengths = np.asarray(char_lengths, np.int32)
    t, u = lengths.max(), char_lengths.max()
    offsets = rng.normal(size=(len(lengths), t, 3)).astype(np.float32)
    offsets[..., 2] = rng.random((len(lengths), t)) < 0.1
    chars = rng.integers(2, alphabet_size, size=(len(lengths), u)).astype(np.int32)
    for b, (n, m) in enumerate(zip(lengths, char_lengths)):
        offsets[b, n:] = 0
        chars[b, m:] = 0
    return {"offsets": offsets, "lengths": lengths, "chars": chars, "char_lengths": char_lengths}


def line_nll_alone(model, config, offsets: np.ndarray, text: str) -> float:
    """`hwtf.model.nll`'s NLL of one line of raw offsets, in a batch of its own."""
    import tensorflow as tf

    from hwtf.model import nll

    return float(nll(model, {
        "offsets": tf.constant(config.normalizer_lib.normalize(offsets)[None]),
        "lengths": tf.constant([len(offsets)], tf.int32),
        "chars": tf.constant([config.alphabet_lib.encode(text)], tf.int32),
        "char_lengths": tf.constant([len(text)], tf.int32),
    })["line_nll"][0])


def made_once(tmp_path_factory, name, make):
    """The folder `name`, filled by `make(folder)` once in the whole test run.

    Under pytest-xdist each worker has its own session, so a session fixture
    would be made once a worker: here the first worker to ask makes it,
    under a lock in the folder the workers share, and the others wait for it
    and read it. Whoever uses it must not change it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # popen-gw0, popen-gw1, ... share their parent
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".made").exists():  # a failed make is made again
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


def _export_config():
    from hwtf.model import ModelConfig

    return ModelConfig(
        lstm_units=16, lstm_layers=2, window_mixtures=3, mixtures=4,
        alphabet="abcdefghijklmnopqrstuvwxyz .", normalizer={"mean": [8.0, 0.5], "std": [20.0, 25.0]},
    )


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A tiny untrained synthesis model, exported: `(path, config)` (one
    export for all the test processes: read it, never change it)."""

    def make(folder):
        import keras

        from hwtf.export import export

        # Seeded: tests compare its candidates' scores, which unseeded weights
        # left now and then within a rounding of each other (CI, 2026-12-06).
        keras.utils.set_random_seed(0)
        export(_export_config().build_model(), _export_config(), str(folder / "synthesis"))

    return str(made_once(tmp_path_factory, "exported", make) / "synthesis"), _export_config()
