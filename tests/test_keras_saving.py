"""hwtf's layers and model are Keras-native: registered, with output shapes,
and a model saved to a `.keras` file loads back and computes the same."""

import keras
import numpy as np
import pytest

from conftest import random_batch
from hwtf.layers import GaussianWindow, LSTMStack, MixtureDensityHead
from hwtf.model import HandwritingModel


@pytest.mark.parametrize("model_kind", ["synthesis", "prediction"])
def test_keras_file_round_trip(tiny_config, tmp_path, model_kind):
    import dataclasses

    config = dataclasses.replace(tiny_config, model=model_kind)
    model = config.build_model()
    batch = random_batch(np.random.default_rng(0), [9, 6], [4, 2])
    chars = (batch["chars"], batch["char_lengths"]) if model_kind == "synthesis" else (None, None)
    before = model(batch["offsets"], *chars)
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    assert type(loaded) is HandwritingModel and loaded.get_config() == model.get_config()
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    after = loaded(batch["offsets"], *chars)
    np.testing.assert_allclose(after["head"], before["head"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(after["phi"], before["phi"], rtol=1e-6, atol=1e-6)


def test_layers_are_registered():
    for layer in (HandwritingModel, LSTMStack, MixtureDensityHead, GaussianWindow):
        assert keras.saving.get_registered_object(f"hwtf>{layer.__name__}") is layer


def test_output_shapes_match_what_the_model_computes(tiny_config):
    model = tiny_config.build_model()
    batch = random_batch(np.random.default_rng(1), [7, 5], [3, 3])
    out = model(batch["offsets"], batch["chars"], batch["char_lengths"])
    shapes = model.compute_output_shape(batch["offsets"].shape, batch["chars"].shape, batch["char_lengths"].shape)
    for key in ("head", "phi", "kappa"):
        assert tuple(out[key].shape) == tuple(shapes[key]), key
    head = MixtureDensityHead(4)
    assert head.compute_output_shape((2, 7, 32)) == (2, 7, 25)
