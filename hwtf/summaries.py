"""TensorBoard summaries written with TensorFlow alone.

TensorFlow 2.21 no longer installs the `tensorboard` package, and
`tf.summary.scalar`/`image` need it. The event format is simple: a summary
is a tensor tagged with the plugin that displays it, which `tf.summary.write`
records with a `SummaryMetadata` from TensorFlow's own protos. The files are
the ones TensorBoard reads (`pip install tensorboard` to view them).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str) -> bytes:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    return metadata.SerializeToString()


_SCALARS = _metadata("scalars")
_IMAGES = _metadata("images")
_TEXT = _metadata("text")
# Text summaries under this prefix are a run's notes (where a stint trained,
# in what precision) and are kept with its curves; sample titles are not.
NOTES = "run/"


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


def text(name: str, value: str, step: int) -> None:
    """A string, under the default writer (TensorBoard's text dashboard)."""
    tf.summary.write(name, tf.constant(value), step=step, metadata=_TEXT)


def _string(value) -> str:
    return tf.make_ndarray(value.tensor).item().decode("utf-8")


def read_texts(logdir: str, tag: str) -> list[tuple[int, str]]:
    """`(step, text)` of every text summary `tag` under `logdir`, sorted by
    step; the last wins a step written twice."""
    values = {}
    for event, value in _events(logdir):
        if value.tag == tag:
            values[int(event.step)] = _string(value)
    return sorted(values.items())


def read_scalars(logdir: str, tag: str) -> list[tuple[int, float]]:
    """`(step, value)` of every scalar `tag` in the event files of `logdir`
    (searched recursively), sorted by step; the last value wins a step
    written twice (a resumed run)."""
    values = {}
    for event, value in _events(logdir):
        if value.tag == tag:
            values[int(event.step)] = float(tf.make_ndarray(value.tensor))
    return sorted(values.items())


def _events(logdir: str):
    """Every `(event, value)` of the event files under `logdir`, file by file."""
    import glob
    import os

    from tensorflow.core.util import event_pb2

    for path in sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                yield event, value


def copy_scalars(logdir: str, out_dir: str, notes: dict[int, str] | None = None) -> int:
    """Writes the scalars of `logdir`'s events and its notes (text under
    `NOTES`), and nothing else, as one event file in `out_dir` (replacing
    what is there): a run's curves without its sample pictures, whose titles
    quote the validation texts. `notes` adds `run/host` notes by step, for
    stints that trained before runs wrote them. Returns how many scalars were
    copied; the last value wins a step written twice."""
    import os
    import shutil

    latest, texts = {}, {}
    for event, value in _events(logdir):
        if value.metadata.plugin_data.plugin_name == "scalars" or value.HasField("simple_value"):
            number = value.simple_value if value.HasField("simple_value") else float(tf.make_ndarray(value.tensor))
            latest[(value.tag, int(event.step))] = number
        elif value.tag.startswith(NOTES) and value.metadata.plugin_data.plugin_name == "text":
            texts[(value.tag, int(event.step))] = _string(value)
    texts.update({(NOTES + "host", step): note for step, note in (notes or {}).items()})
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    writer = tf.summary.create_file_writer(out_dir)
    with writer.as_default():
        for (tag, step), number in sorted(latest.items(), key=lambda item: (item[0][1], item[0][0])):
            scalar(tag, number, step)
        for (tag, step), note in sorted(texts.items(), key=lambda item: (item[0][1], item[0][0])):
            text(tag, note, step)
    writer.close()
    return len(latest)


def training_hours(logdir: str) -> list[tuple[int, float]]:
    """`(step, hours)`: the training time to each logged step, summed from the
    logged `steps_per_sec` (each interval's steps over its rate), so that the
    hours count training only, not the time between stints."""
    hours, total, last = [], 0.0, 0
    for step, rate in read_scalars(logdir, "steps_per_sec"):
        if rate > 0:
            total += (step - last) / rate / 3600.0
        hours.append((step, total))
        last = step
    return hours


def stints(logdir: str) -> list[tuple[int, float, str]]:
    """`(step, hours, host)` where each stretch of training on one host began,
    from the run's `run/host` notes (written whenever training starts or
    resumes; a resume on the same host starts no new stretch), the hours
    being `training_hours` at that step."""
    hours = training_hours(logdir)
    found = []
    for step, note in read_texts(logdir, NOTES + "host"):
        if not found or found[-1][2] != note:
            found.append((step, max((h for s, h in hours if s <= step), default=0.0), note))
    return found


def rate_changes(logdir: str) -> list[tuple[int, float, float]]:
    """`(step, hours, learning rate)` where each rate a run was started or
    resumed with began: the first logged rate, and each change of the logged
    `learning_rate` across a resume (a `run/host` note between the two log
    steps, whose step it takes). A schedule's changes between resumes are not
    listed."""
    hours = training_hours(logdir)
    resumes = [step for step, _ in read_texts(logdir, NOTES + "host")]
    found, last = [], None
    for step, rate in read_scalars(logdir, "learning_rate"):
        if last is None:
            began = min([s for s in resumes if s <= step] or [step])
        elif abs(rate - last[1]) > 1e-6 * abs(last[1]):
            between = [s for s in resumes if last[0] <= s < step]
            began = between[-1] if between else None
        else:
            began = None
        if began is not None:
            found.append((began, max((h for s, h in hours if s <= began), default=0.0), rate))
        last = (step, rate)
    return found


def validation_curve(logdir: str) -> tuple[list, list, list]:
    """`(steps, hours, nll)` of a run's validations (`valid/nll_per_line`):
    the hours at each validation are those of the last logged step at or
    before it (`training_hours`). Empty lists for a run without validations."""
    valid = read_scalars(logdir, "valid/nll_per_line")
    hours = dict(training_hours(logdir))
    logged = sorted(hours)
    steps = [s for s, _ in valid]
    at = [hours[max((s2 for s2 in logged if s2 <= s), default=logged[0])] if logged else 0.0 for s in steps]
    return steps, at, [v for _, v in valid]


def plateau(steps, nll) -> dict:
    """Fits a flattening validation curve, `nll = floor + scale *
    (step / 1000) ** -exponent`, by least squares (`floor` and `scale` exactly
    for each exponent of a grid from 0.05 to 5, the best exponent kept):
    where the curve is heading if its recipe goes on unchanged. Returns
    `floor`, `scale`, `exponent`, `rms` (the fit's error, nats) and `at_edge`
    (the best exponent is the grid's first or last: the data do not pin the
    curve's bend, so the floor is loose). Needs at least four points."""
    t = np.asarray(steps, np.float64) / 1000.0
    y = np.asarray(nll, np.float64)
    if t.shape != y.shape or t.size < 4 or np.any(t <= 0):
        raise ValueError(f"plateau needs at least 4 validations at positive steps, got {t.size}")
    grid = np.linspace(0.05, 5.0, 496)
    best = None
    for c in grid:
        x = np.stack([np.ones_like(t), t ** -c], axis=1)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        sse = float(np.sum((x @ coef - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, float(c), float(coef[0]), float(coef[1]))
    sse, c, floor, scale = best
    return {"floor": floor, "scale": scale, "exponent": c, "rms": (sse / t.size) ** 0.5,
            "at_edge": c in (float(grid[0]), float(grid[-1]))}
