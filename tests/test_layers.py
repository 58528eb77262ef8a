import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import random_batch
from hwtf.layers import GaussianWindow, LSTMStack, MixtureDensityHead
from hwtf.model import HandwritingModel


@pytest.mark.parametrize(
    "layer",
    [
        GaussianWindow(window_mixtures=4, kappa_bias=-2.0, name="w"),
        LSTMStack(lstm_units=8, lstm_layers=3, window_mixtures=2, alphabet_size=7, name="s"),
        LSTMStack(lstm_units=8, lstm_layers=1, window_mixtures=0, name="p"),
        MixtureDensityHead(mixtures=5, name="h"),
        HandwritingModel(lstm_units=8, lstm_layers=2, window_mixtures=2, mixtures=3, alphabet_size=7),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_from_config_round_trip(layer):
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()


def test_window_shapes_masking_and_monotone_kappa():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    window = GaussianWindow(window_mixtures=3)
    window.build((None, 6))
    chars = tf.one_hot([[2, 3, 4, 0], [5, 0, 0, 0]], 6)
    mask = tf.sequence_mask([3, 1], 4, dtype=tf.float32)
    kappa = tf.zeros([2, 3])
    for _ in range(20):
        h = tf.constant(rng.normal(size=(2, 6)) * 3, tf.float32)
        w, phi, new_kappa = window(h, kappa, chars, mask)
        assert w.shape == (2, 6) and phi.shape == (2, 4) and new_kappa.shape == (2, 3)
        assert np.all(new_kappa.numpy() >= kappa.numpy())  # never backwards
        # The window vector only mixes real characters: no padding id, and for
        # the one-character line only that character.
        assert np.all(w.numpy()[:, 0] == 0)
        assert np.all(w.numpy()[1, [1, 2, 3, 4]] == 0)
        kappa = new_kappa


def _stack_and_batch(window_mixtures=2):
    rng = np.random.default_rng(1)
    stack = LSTMStack(lstm_units=8, lstm_layers=3, window_mixtures=window_mixtures, alphabet_size=9)
    stack.build()
    return stack, random_batch(rng, [12, 7, 3], [5, 2, 4], alphabet_size=9)


def test_stack_shapes_and_padding_independence():
    stack, batch = _stack_and_batch()
    out = stack(batch["offsets"], batch["chars"], batch["char_lengths"])
    assert out["outputs"].shape == (3, 12, 24)
    assert out["phi"].shape == (3, 12, 5)
    assert out["kappa"].shape == (3, 12, 2)
    assert out["window"].shape == (3, 12, 9)
    assert np.all(np.diff(out["kappa"].numpy(), axis=1) > 0)
    np.testing.assert_array_equal(out["phi"].numpy()[1, :, 2:], 0.0)  # padded chars
    # Changing what lies in the padding changes nothing before it.
    noisy = dict(batch)
    noisy["offsets"] = batch["offsets"].copy()
    noisy["offsets"][1, 7:] = 99.0
    noisy["chars"] = batch["chars"].copy()
    noisy["chars"][1, 2:] = 3
    out2 = stack(noisy["offsets"], noisy["chars"], noisy["char_lengths"])
    np.testing.assert_allclose(out2["outputs"].numpy()[1, :7], out["outputs"].numpy()[1, :7], atol=1e-6)


@pytest.mark.parametrize("window_mixtures", [2, 0], ids=["synthesis", "prediction"])
def test_one_step_path_equals_whole_sequence(window_mixtures):
    stack, batch = _stack_and_batch(window_mixtures)
    chars = batch["chars"] if window_mixtures else None
    char_lengths = batch["char_lengths"] if window_mixtures else None
    whole = stack(batch["offsets"], chars, char_lengths)
    state = stack.initial_state(3)
    onehot = mask = None
    if window_mixtures:
        onehot, mask = stack.encode_chars(chars, char_lengths)
    for t in range(12):
        outputs, state, phi = stack.step(batch["offsets"][:, t], state, onehot, mask)
        np.testing.assert_allclose(outputs.numpy(), whole["outputs"].numpy()[:, t], atol=1e-5)
        if window_mixtures:
            np.testing.assert_allclose((phi * mask).numpy(), whole["phi"].numpy()[:, t], atol=1e-5)
    for a, b in zip(tf.nest.flatten(state), tf.nest.flatten(whole["state"])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_stack_rejects_bad_sizes():
    with pytest.raises(ValueError, match="alphabet_size"):
        LSTMStack(lstm_units=4, lstm_layers=1, window_mixtures=2, alphabet_size=0)
    with pytest.raises(ValueError, match="lstm_units"):
        LSTMStack(lstm_units=0)
    with pytest.raises(ValueError, match="window_mixtures"):
        GaussianWindow(0)
    with pytest.raises(ValueError, match="mixtures"):
        MixtureDensityHead(0)
