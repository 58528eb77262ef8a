"""Hours of this machine a training run needed to reach given testset_v NLLs.

    python benchmarks/time_to_quality.py                       # the committed runs
    python benchmarks/time_to_quality.py --runs=runs/iamondb   # any training dirs

Read from each run's TensorBoard scalars (what `docs/save_stint.py` keeps):
validation NLL in nats per line against hours of training, summed from the
logged steps per second, so the time between stints does not count. Prints
one JSON object: per run and threshold, the first validation at or below it
(step and hours), or null where the run has not reached it yet, its best,
and where each stretch of it on one host and precision began (its notes).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

flags.DEFINE_list("runs", ["checkpoints/iamondb-2x256", "checkpoints/iamondb"], "Training directories.")
flags.DEFINE_list("thresholds", ["-900", "-1000", "-1050"], "NLLs in nats per line (lower is better).")
FLAGS = flags.FLAGS


def time_to(steps, hours, nll, threshold: float):
    for step, hour, value in zip(steps, hours, nll):
        if value <= threshold:
            return {"step": step, "hours": round(hour, 2), "nll": round(value, 1)}
    return None


def main(argv):
    del argv
    from hwtf import summaries

    result = {"benchmark": "time_to_quality", "runs": {}}
    for run in FLAGS.runs:
        steps, hours, nll = summaries.validation_curve(run)
        if not steps:
            raise app.UsageError(f"{run}: no valid/nll_per_line events")
        best = min(range(len(nll)), key=nll.__getitem__)
        result["runs"][run] = {
            **{t: time_to(steps, hours, nll, float(t)) for t in FLAGS.thresholds},
            "best": {"step": steps[best], "hours": round(hours[best], 2), "nll": round(nll[best], 1)},
            "last": {"step": steps[-1], "hours": round(hours[-1], 2), "nll": round(nll[-1], 1)},
            # Where each stretch began: hours of different hosts are not alike.
            "stints": [{"step": s, "hours": round(h, 2), "host": host} for s, h, host in summaries.stints(run)],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
