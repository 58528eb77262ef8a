"""Custom Keras layers: the soft window, the LSTM stack, the mixture-density head."""

from hwtf.layers.lstm_stack import LSTMStack, StackState
from hwtf.layers.mdn import MixtureDensityHead
from hwtf.layers.window import GaussianWindow

__all__ = ["GaussianWindow", "LSTMStack", "MixtureDensityHead", "StackState"]
