"""`python -m hwtf.evaluate`: negative log-likelihood in Graves's units.

    python -m hwtf.evaluate --model=saved_models/synthetic-demo --split=valid
    python -m hwtf.evaluate --model=runs/graves2013 --dataset=iamondb \
        --data_dir=PATH --split=testset_v --json

    python -m hwtf.evaluate --legibility --model=saved_models/iamondb-synthesis \
        --dataset=iamondb --data_dir=PATH --split=testset_v

Prints the mean NLL in nats per line and per point over a split: the summed
`-log p` of each line's offsets after the first (normalised offsets with the
model's own statistics, pen-up term included), as in Graves (2013) table 3,
whose synthesis network scores -1096.9 nats per line on IAM-OnDB's
validation set. `--model` is an exported SavedModel (its `log_prob`
signature) or a training directory (its best checkpoint, else its latest).

`--legibility` instead writes the split's texts with an exported model at
each of `--biases`, reads them with Tesseract and prints the character error
rate beside that of the split's real ink of the same texts, rendered the same
way (`hwtf.legibility`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags; defined when it runs, not on import, so that the
    library parts of several commands can share one process (tests)."""
    flags.DEFINE_string("model", None, "A SavedModel directory or a training directory.", required=True)
    flags.DEFINE_enum("dataset", "synthetic", ["synthetic", "iamondb"], "Embedded synthetic set or IAM-OnDB.")
    flags.DEFINE_string("data_dir", None, "IAM-OnDB folder or archive.")
    flags.DEFINE_string("split", None, "Split to score (default: testset_v or valid).")
    flags.DEFINE_string("cache_dir", None, "Preprocessed-data cache (default ~/.cache/hwtf).")
    flags.DEFINE_integer("batch_size", 16, "Lines per batch.")
    flags.DEFINE_integer("max_lines", 0, "Score only the first this many lines (0 = all).")
    flags.DEFINE_bool("json", False, "Print one JSON object.")
    flags.DEFINE_bool("legibility", False, "Instead of the NLL, the character error rate of Tesseract reading "
                      "the model's writing of the split's texts, beside real ink's (hwtf.legibility).")
    flags.DEFINE_integer("legibility_lines", 32, "Texts to write for --legibility.")
    flags.DEFINE_list("biases", ["0", "0.5", "1"], "Sampling biases for --legibility.")
    flags.DEFINE_integer("seed", 0, "Sampling seed for --legibility.")
    flags.DEFINE_list("candidates", ["1"], "Best-of-N settings for --legibility: write each text N times and keep "
                      "the version the model rates best, for each N listed.")
    flags.DEFINE_string("legibility_dir", None, "Keep --legibility's rendered lines (PNG) here.")


def _scorer(path: str):
    """`(config, score)` where `score(strokes [B, T, 3], lengths [B], texts)`
    returns summed NLL and points per line, from a SavedModel or a training
    directory."""
    import tensorflow as tf

    from hwtf.model import ModelConfig

    if os.path.exists(os.path.join(path, "saved_model.pb")):
        loaded = tf.saved_model.load(path)
        config = ModelConfig.from_json(loaded.config()["config"].numpy().decode())

        def score(strokes, lengths, texts):
            out = loaded.log_prob(
                strokes=tf.constant(strokes), lengths=tf.constant(lengths), text=tf.constant(texts)
            )
            return -out["log_prob"].numpy(), out["points"].numpy()

        return config, score

    config, model, _ = checkpoint_model(path)
    return config, model_scorer(config, model)


def _step_of(checkpoint: str) -> int:
    """N of a checkpoint prefix `.../ckpt-N` (-1 for another name)."""
    found = re.search(r"-(\d+)$", checkpoint)
    return int(found.group(1)) if found else -1


def checkpoint_model(path: str):
    """`(config, model, checkpoint)`: the model of training directory `path`
    with the weights of its best checkpoint, else its latest, else its
    newest `ckpt-N` (their moving average where the run kept one), or a
    committed stint's packed checkpoint (checkpoints/iamondb) where that is
    newer still, as training resumes from it; that is unpacked outside the
    folder, so that reading it writes nothing into the repository, and
    removed once read."""
    import tensorflow as tf

    from hwtf import packed
    from hwtf.model import ModelConfig, read_weights

    config_path = os.path.join(path, "config.json")
    if not os.path.exists(config_path):
        raise app.UsageError(f"--model={path}: neither a SavedModel nor a training directory (no config.json)")
    config = ModelConfig.load(config_path)
    model = config.build_model()
    checkpoint = tf.train.latest_checkpoint(os.path.join(path, "best"))
    unpacked_dir = None
    if checkpoint is None:
        checkpoint = tf.train.latest_checkpoint(path)
        if checkpoint is None:
            # `ckpt-N` files without a `checkpoint` state file (copied by
            # hand): the newest, as training's `run_checkpoints` reads them.
            numbered = packed.checkpoint_prefixes(path)
            checkpoint = numbered[max(numbered)] if numbered else None
        newest_packed = max(packed.packed_checkpoints(path), default=None)
        if newest_packed is not None and (checkpoint is None or newest_packed > _step_of(checkpoint)):
            unpacked_dir = tempfile.mkdtemp(prefix="hwtf-unpacked-")
            checkpoint = packed.unpack_into(path, out_dir=unpacked_dir)
    if checkpoint is None:
        raise app.UsageError(f"--model={path}: no checkpoint")
    try:
        ema = read_weights(model, checkpoint)
    finally:
        if unpacked_dir:
            shutil.rmtree(unpacked_dir, ignore_errors=True)
    logging.info("scoring %s%s", checkpoint, " (the weights' moving average)" if ema else "")
    return config, model, checkpoint


def model_scorer(config, model):
    """`_scorer`'s `score` for a built Keras model: it reads the model's
    weights as they are at each call."""
    import tensorflow as tf

    from hwtf.model import nll

    @tf.function(reduce_retracing=True)
    def per_line(batch):
        out = nll(model, batch)
        return out["line_nll"], out["line_points"]

    def score(strokes, lengths, texts):
        line_nll, points = per_line(text_batch(config, strokes, lengths, texts))
        return line_nll.numpy(), points.numpy()

    return score


def pad_lines(offsets: list) -> tuple:
    """Lines' raw offsets (`[n_i, 3]` each) as one zero-padded float32
    `[B, max n_i, 3]` array, with their `lengths`."""
    import numpy as np

    strokes = np.zeros((len(offsets), max(len(o) for o in offsets), 3), np.float32)
    for row, o in enumerate(offsets):
        strokes[row, : len(o)] = o
    return strokes, np.array([len(o) for o in offsets], np.int32)


def text_batch(config, strokes, lengths, texts) -> dict:
    """`hwtf.model.nll`'s batch from raw offsets `[B, T, 3]` (zero-padded),
    their `lengths` and the lines' `texts`: the offsets normalised and the
    texts encoded as the model's `config` says, as training feeds them."""
    import numpy as np

    chars = [config.alphabet_lib.encode(t) for t in texts]
    u = max(1, max(len(c) for c in chars))
    return {
        "offsets": np.stack([config.normalizer_lib.normalize(s) for s in strokes]).astype(np.float32),
        "lengths": np.asarray(lengths, np.int32),
        "chars": np.stack([np.pad(c, (0, u - len(c))) for c in chars]).astype(np.int32),
        "char_lengths": np.array([len(c) for c in chars], np.int32),
    }


def evaluate(path: str, data, batch_size: int = 16) -> dict:
    """Mean NLL per line and per point of `data` (a `HandwritingSet`)."""
    config, score = _scorer(path)
    return {"model": path, "kind": config.model, **score_set(score, data, batch_size)}


def score_set(score, data, batch_size: int = 16) -> dict:
    """`lines`, `points`, `nll_per_line` and `nll_per_point` of `data` by
    `score` (`_scorer`'s), in batches of similar lengths."""
    import numpy as np

    order = np.argsort([len(o) for o in data.offsets])  # similar lengths together
    total_nll = total_points = 0.0
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        strokes, lengths = pad_lines([data.offsets[i] for i in index])
        line_nll, points = score(strokes, lengths, [data.texts[i] for i in index])
        total_nll += float(np.sum(line_nll))
        total_points += float(np.sum(points))
    return {
        "lines": len(data),
        "points": int(total_points),
        "nll_per_line": total_nll / max(len(data), 1),
        "nll_per_point": total_nll / max(total_points, 1.0),
    }


def check_flags() -> None:
    """Refuses flag values that cannot evaluate, before TensorFlow loads."""
    from hwtf import cli

    FLAGS.dataset = cli.dataset_flag()
    if FLAGS.max_lines < 0:
        raise app.UsageError(f"--max_lines={FLAGS.max_lines}: must be 0 (all) or more")
    if FLAGS.batch_size < 1:
        raise app.UsageError(f"--batch_size={FLAGS.batch_size}: must be at least 1")
    if FLAGS.legibility:
        legibility_options()


def legibility_options() -> tuple[list[float], list[int]]:
    """`--legibility`'s model check, and its biases and candidates."""
    if not os.path.exists(os.path.join(FLAGS.model, "saved_model.pb")):
        raise app.UsageError(f"--legibility needs an exported SavedModel; --model={FLAGS.model} is not one")
    try:
        biases = [float(b) for b in FLAGS.biases]
    except ValueError as e:
        raise app.UsageError(f"--biases={','.join(FLAGS.biases)}: {e}") from e
    try:
        candidates = [int(n) for n in FLAGS.candidates]
    except ValueError as e:
        raise app.UsageError(f"--candidates={','.join(FLAGS.candidates)}: {e}") from e
    if not candidates or min(candidates) < 1:
        raise app.UsageError(f"--candidates={','.join(FLAGS.candidates)}: each must be at least 1")
    return biases, candidates


def main(argv):
    del argv
    from hwtf.data import dataset as dataset_lib

    split = FLAGS.split or ("testset_v" if FLAGS.dataset == "iamondb" else "valid")
    try:
        data = dataset_lib.load(FLAGS.dataset, [split], FLAGS.data_dir, FLAGS.cache_dir)
    except (ValueError, OSError) as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.max_lines:
        data = data.subset(range(min(FLAGS.max_lines, len(data))))
    if not len(data):
        raise app.UsageError(f"{FLAGS.dataset}/{split} has no usable lines ({len(data.skipped)} skipped): nothing to score")
    if FLAGS.legibility:
        return _main_legibility(data, split)
    result = evaluate(FLAGS.model, data, FLAGS.batch_size)
    result.update(dataset=FLAGS.dataset, split=split, skipped=len(data.skipped))
    if FLAGS.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {FLAGS.dataset}/{split}: {result['lines']} lines, "
            f"{result['points']} points\n"
            f"  NLL {result['nll_per_line']:.1f} nats/line, {result['nll_per_point']:.4f} nats/point"
            f"  (Graves 2013, synthesis on IAM-OnDB testset_v: -1096.9 nats/line)"
        )


def _main_legibility(data, split: str) -> None:
    from hwtf import legibility

    biases, candidates = legibility_options()
    try:
        result = legibility.legibility(
            FLAGS.model, data, FLAGS.legibility_lines, biases, FLAGS.seed, FLAGS.legibility_dir, candidates
        )
    except (legibility.TesseractMissing, ValueError) as e:
        raise app.UsageError(str(e)) from e
    result.update(dataset=FLAGS.dataset, split=split)
    if FLAGS.json:
        print(json.dumps(result))
        return
    print(f"{FLAGS.model} on {FLAGS.dataset}/{split}: Tesseract's character error rate, seed {FLAGS.seed}")
    print("\n".join(legibility_table(result)))


def legibility_table(result: dict) -> list[str]:
    """`hwtf.legibility.legibility`'s result as lines of text: each row's CER,
    mean line CER and lines over 0.5, and how many of those are texts in
    capitals."""
    lines = [f"{result['lines']} lines ({result['chars']} characters; {len(result['in_capitals'])} of the lines "
             f"in capitals)"]
    row = "  {:<16} CER {:.3f}  mean line CER {:.3f}  lines over 0.5: {} of {} ({} in capitals){}"
    for name, out in [("real ink", result["real"]), ("neat print", result["print"]),
                      *[(f"bias {key}", out) for key, out in result["generated"].items()]]:
        timing = f"  {out['seconds_per_line']:.2f} s/line" if "seconds_per_line" in out else ""
        over_half = sum(c > 0.5 for c in out["line_cers"])
        lines.append(row.format(name, out["cer"], out["mean_cer"], over_half, result["lines"],
                                out["over_half_in_capitals"], timing))
    return lines


if __name__ == "__main__":
    define_flags()
    from hwtf import cli

    cli.run(main, "hwtf.evaluate", info=True, check=check_flags)
