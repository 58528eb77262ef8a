"""hwtf: handwriting synthesis after Graves (2013), in Keras 3 and TensorFlow."""

__version__ = "0.1.0"
