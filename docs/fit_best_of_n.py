"""Fits the weights of best-of-N writing's score (`hwtf.export`'s `_score`).

    python docs/fit_best_of_n.py --collect --work_dir=/tmp/best_of_n    # write, read, save features
    python docs/fit_best_of_n.py --work_dir=/tmp/best_of_n              # fit and compare

`--collect` writes `--fit_texts` texts of `testset_v` (12 to 60 characters,
after the legibility set's first `--eval_texts`, so that the fit never sees
the texts it is judged on) and the legibility set's own texts, each
`--candidates` times at `--bias`, reads every line with Tesseract and saves
each candidate's features (`features`, below) and CER to
`WORK_DIR/candidates.npz` (numbers only; keep it outside the repository:
they are measurements of IAM-OnDB texts).

The fit then takes `hwtf.writer.SCORE_FEATURES` (or `--score_features`) and their squares, standardises
them, takes out each text's mean (only the differences between a text's
candidates matter to the choice) and fits the CER by ridge regression on
the fit texts. It prints the score's weights on the raw features and, on the
legibility set's texts (first 4 of their candidates), the mean CER and lines
with CER > 0.5 of a random candidate, of the choice of the score in use
(`hwtf.writer.candidate_score`), of the fitted one's and of the best
candidate (Tesseract's own choice, the ceiling); and the same figures over
all the texts, the fit cross-validated (4 folds, 20 random splits).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_bool("collect", False, "Write, read and save the candidates' features (else: fit).")
flags.DEFINE_string("work_dir", None, "Where the features are saved (outside the repository).", required=True)
flags.DEFINE_string("model", os.path.join(REPO, "saved_models", "iamondb-synthesis"), "An exported synthesis model.")
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data", "iamondb.tar.xz"), "IAM-OnDB archive or folder.")
flags.DEFINE_integer("eval_texts", 64, "The legibility set's texts (judged on, never fitted on).")
flags.DEFINE_integer("fit_texts", 192, "Texts after them to fit on.")
flags.DEFINE_integer("candidates", 8, "Candidates per text.")
flags.DEFINE_float("bias", 0.75, "Sampling bias.")
flags.DEFINE_float("ridge", 1.0, "Ridge penalty, in units of the fit's rows.")
flags.DEFINE_integer("judged_candidates", 4, "Candidates per text the choice is judged among.")
flags.DEFINE_list("score_features", None, "Fit these of FEATURES (default: hwtf.writer.SCORE_FEATURES, the "
                  "shipped score's), to compare sets of features.")

# `hwtf.writer.candidate_features`, in the order saved.
FEATURES = ("peak", "coverage", "log_aspect", "unfinished", "log_points_per_char", "backward",
            "log_strokes_per_char", "log_width_per_char", "log_longest_step", "last_on_end", "log_dwell_spread",
            "log_ink_per_width")


def features(offsets: np.ndarray, phi: np.ndarray, chars: int, finished: bool) -> list[float]:
    """One candidate's features (`FEATURES`, in order)."""
    from hwtf.writer import candidate_features

    found = candidate_features(offsets, phi, chars, finished)
    return [found[name] for name in FEATURES]


def collect() -> None:
    from hwtf import legibility
    from hwtf.data import dataset as dataset_lib
    from hwtf.writer import Writer

    data = dataset_lib.load("iamondb", ["testset_v"], FLAGS.data_dir, None)
    writer = Writer.load(FLAGS.model)
    index = legibility.choose_lines(data, FLAGS.eval_texts + FLAGS.fit_texts)
    texts = [legibility._normal(data.texts[i]) for i in index]
    scale = legibility.pixels_per_unit(float(writer.config.normalizer_lib.mean[0]))
    n, rows, cers = FLAGS.candidates, [], []
    for first in range(0, len(texts), 16):
        batch = [t for t in texts[first : first + 16] for _ in range(n)]
        ink = writer.write(batch, FLAGS.bias, 0, steps_per_char=40)
        rows.extend(features(line.offsets, line.phi, len(line.text), line.finished) for line in ink)
        readings = legibility.render_and_read([line.strokes for line in ink], scale)
        cers.extend(legibility.character_error_rate([r], [t]) for r, t in zip(readings, batch))
        print(f"{min(first + 16, len(texts))} of {len(texts)} texts", flush=True)
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    np.savez(os.path.join(FLAGS.work_dir, "candidates.npz"),
             features=np.array(rows).reshape(len(texts), n, len(FEATURES)),
             cer=np.array(cers).reshape(len(texts), n), eval_texts=FLAGS.eval_texts, bias=FLAGS.bias)


def current_score(x: np.ndarray) -> np.ndarray:
    """The score in use (`hwtf.writer.candidate_score`), from the same features."""
    from hwtf.writer import candidate_score

    return np.array([[candidate_score(dict(zip(FEATURES, row))) for row in text] for text in x])


def judged(cer: np.ndarray, score: np.ndarray) -> dict:
    pick = cer[np.arange(len(cer)), score.argmax(1)]
    return {"mean_cer": round(float(pick.mean()), 3), "lines_over_half": int((pick > 0.5).sum())}


# The fitted score's features (with their squares), `hwtf.writer.SCORE_FEATURES`:
# dropping each of the others in turn moved the cross-validated CER by under 0.001.
def score_features() -> list[str]:
    """The features the fit uses: `--score_features`, else the shipped score's."""
    from hwtf.writer import SCORE_FEATURES

    names = FLAGS.score_features or list(SCORE_FEATURES)
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        raise app.UsageError(f"--score_features: {', '.join(unknown)} not among {', '.join(FEATURES)}")
    return names


def design(x: np.ndarray) -> np.ndarray:
    """The fitted score's inputs: the `score_features` and their squares."""
    scored = x[..., [FEATURES.index(name) for name in score_features()]]
    return np.concatenate([scored, np.square(scored)], -1)


def ridge_fit(d: np.ndarray, cer: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
    """Fits the CER of texts `rows` from their design `d [texts, N, F]`: the
    features standardised over those rows, each text's mean taken out (only
    a text's differences between candidates matter to the choice), ridge
    regression. Returns `(z, w)`: every text's standardised design and the
    weights; `-(z @ w)` scores the candidates (higher is better)."""
    mean, std = d[rows].reshape(-1, d.shape[-1]).mean(0), d[rows].reshape(-1, d.shape[-1]).std(0) + 1e-9
    z = (d - mean) / std
    a = (z - z.mean(1, keepdims=True))[rows].reshape(-1, d.shape[-1])
    b = (cer[rows] - cer[rows].mean(1, keepdims=True)).reshape(-1)
    return z, np.linalg.solve(a.T @ a + FLAGS.ridge * np.eye(a.shape[1]), a.T @ b)


def fit() -> None:
    saved = np.load(os.path.join(FLAGS.work_dir, "candidates.npz"), allow_pickle=False)
    x, cer, split = saved["features"], saved["cer"], int(saved["eval_texts"])
    d = design(x)
    cer_fit = cer[split:]
    z, w = ridge_fit(d, cer, slice(split, None))
    # The score is -CER's prediction on the raw features (constants dropped):
    # sum over SCORE_FEATURES of linear * f + square * f^2; higher is better.
    raw = -w / (d[split:].reshape(-1, d.shape[-1]).std(0) + 1e-9)
    names = score_features()
    k = FLAGS.judged_candidates
    ev_cer = cer[:split, :k]
    fitted = lambda rows: -(z[rows, :k] @ w)
    result = {
        "bias": float(saved["bias"]), "fit_texts": int(len(cer_fit)), "eval_texts": split, "judged_among": k,
        "score_linear": {n: float(f"{v:.4g}") for n, v in zip(names, raw[: len(names)])},
        "score_square": {n: float(f"{v:.4g}") for n, v in zip(names, raw[len(names):])},
        "random": {"mean_cer": round(float(ev_cer.mean()), 3),
                   "lines_over_half": round(float((ev_cer > 0.5).sum(0).mean()), 2)},
        "current_score": judged(ev_cer, current_score(x[:split, :k])),
        "fitted_score": judged(ev_cer, fitted(slice(0, split))),
        "oracle": judged(ev_cer, -ev_cer),
        "fit_texts_random": round(float(cer_fit[:, :k].mean()), 3),
        "fit_texts_current": judged(cer_fit[:, :k], current_score(x[split:, :k])),
        "fit_texts_fitted": judged(cer_fit[:, :k], fitted(slice(split, None))),
        "cross_validated": cross_validate(x, cer, k),
    }
    print(json.dumps(result, indent=1))


def cross_validate(x: np.ndarray, cer: np.ndarray, k: int, repeats: int = 20, folds: int = 4) -> dict:
    """Mean line CER and lines over 0.5 (all texts, averaged over the
    splits) of each choice, the fitted score refitted on 3/4 of the texts
    and judged on the rest, `repeats` random splits."""
    rng = np.random.default_rng(0)
    d = design(x)
    current = current_score(x[:, :k]).argmax(1)  # the score in use is not refitted
    picks = {"random": [], "current_score": [], "fitted_score": [], "oracle": []}
    over = {name: 0.0 for name in picks}
    for _ in range(repeats):
        order = rng.permutation(len(x))
        for held in np.array_split(order, folds):
            z, w = ridge_fit(d, cer, np.setdiff1d(order, held))
            c = cer[held, :k]
            rows = np.arange(len(held))
            fitted = c[rows, (-(z[held, :k] @ w)).argmax(1)]
            # Each choice's CER and share of lines over 0.5, per text (one
            # candidate: the mean over the candidates).
            chosen = {
                "random": (c.mean(1), (c > 0.5).mean(1)),
                "current_score": (c[rows, current[held]], c[rows, current[held]] > 0.5),
                "fitted_score": (fitted, fitted > 0.5),
                "oracle": (c.min(1), c.min(1) > 0.5),
            }
            for name, (line_cer, line_over) in chosen.items():
                picks[name].append(line_cer.mean())
                over[name] += float(line_over.sum())
    return {name: {"mean_cer": round(float(np.mean(v)), 4), "lines_over_half": round(over[name] / repeats, 2)}
            for name, v in picks.items()}


def main(argv):
    del argv
    collect() if FLAGS.collect else fit()


if __name__ == "__main__":
    app.run(main)
