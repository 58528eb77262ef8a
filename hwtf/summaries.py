"""TensorBoard summaries written with TensorFlow alone.

TensorFlow 2.21 no longer installs the `tensorboard` package, and
`tf.summary.scalar`/`image` need it. The event format is simple: a summary
is a tensor tagged with the plugin that displays it, which `tf.summary.write`
records with a `SummaryMetadata` from TensorFlow's own protos. The files are
the ones TensorBoard reads (`pip install tensorboard` to view them).
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str) -> bytes:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    return metadata.SerializeToString()


_SCALARS = _metadata("scalars")
_IMAGES = _metadata("images")


def scalar(name: str, value, step: int) -> None:
    """A float32 scalar, under the default writer."""
    tf.summary.write(name, tf.cast(value, tf.float32), step=step, metadata=_SCALARS)


def image(name: str, png: bytes, step: int) -> None:
    """One PNG image, under the default writer (TensorBoard's image layout:
    `[width, height, encoded image]` as strings)."""
    height_width = tf.shape(tf.io.decode_png(png))[:2]
    tensor = tf.stack(
        [tf.strings.as_string(height_width[1]), tf.strings.as_string(height_width[0]), tf.constant(png)]
    )
    tf.summary.write(name, tensor, step=step, metadata=_IMAGES)


def read_scalars(logdir: str, tag: str) -> list[tuple[int, float]]:
    """`(step, value)` of every scalar `tag` in the event files of `logdir`
    (searched recursively), sorted by step; the last value wins a step
    written twice (a resumed run)."""
    import glob
    import os

    from tensorflow.core.util import event_pb2

    values = {}
    for path in sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    values[int(event.step)] = float(tf.make_ndarray(value.tensor))
    return sorted(values.items())
