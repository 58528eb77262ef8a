"""How much of a batch is padding: the work a training or validation step does
on points that are not there.

    python benchmarks/padding.py [--data_dir=../shared/data/iamondb.tar.xz] [--buckets=1,4,8,16,32]

A step of the recurrence costs as much as its batch's longest line times the
batch's size, so the figure that sets a step's time is the padded length.
For each bucket count, this draws `--batches` training batches from
`hwtf.data.dataset.make_dataset` exactly as `python -m hwtf.train` does
(`--length_buckets`) and reports the mean padded length and the share of
real points in the padded batches; for the validation split, the same in
file order and in order of length (what validation now uses). Needs no
model; prints one JSON object.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "iamondb.tar.xz"),
                    "IAM-OnDB folder or archive.")
flags.DEFINE_list("train_splits", ["trainset", "testset_t", "testset_f"], "Training splits.")
flags.DEFINE_string("valid_split", "testset_v", "Validation split.")
flags.DEFINE_list("buckets", ["1", "4", "8", "16", "32"], "Bucket counts to compare.")
flags.DEFINE_integer("batch_size", 32, "Lines per batch.")
flags.DEFINE_integer("batches", 1000, "Training batches drawn per bucket count (about 3 passes over the lines).")
flags.DEFINE_integer("max_length", 1200, "Training lines longer than this are dropped, as in training.")


def _figures(batches) -> dict:
    real = padded = 0
    longest = []
    for batch in batches:
        lengths = batch["lengths"]
        real += int(lengths.sum())
        padded += len(lengths) * int(lengths.max())
        longest.append(int(lengths.max()))
    return {"batches": len(longest), "mean_padded_length": round(sum(longest) / len(longest), 1),
            "real_share": round(real / padded, 3)}


def main(argv):
    del argv
    import numpy as np

    from hwtf.data import dataset as dataset_lib
    from hwtf.data import strokes as strokes_lib

    train = dataset_lib.load("iamondb", FLAGS.train_splits, FLAGS.data_dir)
    valid = dataset_lib.load("iamondb", [FLAGS.valid_split], FLAGS.data_dir)
    alphabet = strokes_lib.Alphabet.from_texts(train.texts)
    normalizer = strokes_lib.Normalizer.fit(train.offsets)
    kept = [len(o) for o in train.offsets if len(o) <= FLAGS.max_length]
    result = {"benchmark": "padding", "batch_size": FLAGS.batch_size, "train_lines": len(kept),
              "train_mean_length": round(float(np.mean(kept)), 1), "train": {}}
    for count in (int(b) for b in FLAGS.buckets):
        ds = dataset_lib.make_dataset(train, alphabet, normalizer, FLAGS.batch_size, seed=0,
                                      max_length=FLAGS.max_length, buckets=count, bucket=count > 1)
        result["train"][f"buckets_{count}"] = _figures(ds.take(FLAGS.batches).as_numpy_iterator())
    result["valid_lines"] = len(valid)
    for name, by_length in (("file_order", False), ("by_length", True)):
        ds = dataset_lib.make_dataset(valid, alphabet, normalizer, FLAGS.batch_size, shuffle=False, repeat=False,
                                      bucket=False, by_length=by_length)
        result[f"valid_{name}"] = _figures(ds.as_numpy_iterator())
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
