"""Shared test setup: quiet TensorFlow, a small model configuration."""

import os

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


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A tiny untrained synthesis model, exported: `(path, config)`."""
    from hwtf.export import export
    from hwtf.model import ModelConfig

    config = ModelConfig(
        lstm_units=16, lstm_layers=2, window_mixtures=3, mixtures=4,
        alphabet="abcdefghijklmnopqrstuvwxyz .", normalizer={"mean": [8.0, 0.5], "std": [20.0, 25.0]},
    )
    path = str(tmp_path_factory.mktemp("export") / "synthesis")
    export(config.build_model(), config, path)
    return path, config
