"""The mixture-density head: LSTM outputs -> parameters of the next offset."""

from __future__ import annotations

import keras

from hwtf import distributions


@keras.saving.register_keras_serializable(package="hwtf")
class MixtureDensityHead(keras.layers.Layer):
    """A linear map from the stack's outputs to `1 + 6M` raw parameters.

    The layout and the constraints applied to it are in `hwtf.distributions`
    (`split_head`); the raw outputs are returned so that the bias and the
    distribution are chosen at use.

    Args:
      mixtures: M, the number of bivariate Gaussian components.
    """

    def __init__(self, mixtures: int = 20, **kwargs):
        super().__init__(**kwargs)
        if mixtures < 1:
            raise ValueError(f"mixtures must be >= 1, got {mixtures}")
        self.mixtures = mixtures
        self.dense = keras.layers.Dense(distributions.head_size(mixtures), name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, outputs):
        """`outputs [..., L*H]` -> raw head `[..., 1 + 6M]`."""
        return self.dense(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], distributions.head_size(self.mixtures))

    def get_config(self):
        return {**super().get_config(), "mixtures": self.mixtures}
