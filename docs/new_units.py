"""How far a widened network's new units have come.

    python docs/new_units.py --model=checkpoints/iamondb --old_units=512

`python -m hwtf.widen` starts each layer's new units with zero weights out
of them, so that the network writes as before; they matter only as training
grows those weights. Adam moves a weight by at most about its learning rate
an update, so at the campaign's 3e-5 that takes many updates. For each layer
this prints the root mean square of the weights out of its first
`--old_units` units (into its own recurrence, the layer above, the window
and the mixture head: `hwtf.unit_weights.reading_rows`) and out of the rest, and
their ratio. `--model` is a training folder, a committed stint's included
(the weights' moving average where it has one, as `hwtf.evaluate` reads it).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "checkpoints/iamondb", "A training folder (config.json and a checkpoint).")
flags.DEFINE_integer("old_units", 512, "The units a layer the network had before it was widened.")


def main(argv):
    del argv
    from hwtf.evaluate import checkpoint_model
    from hwtf.model import named_weights
    from hwtf.widen import unit_scales

    config, model, checkpoint = checkpoint_model(FLAGS.model)
    if not 0 < FLAGS.old_units < config.lstm_units:
        raise app.UsageError(f"--old_units={FLAGS.old_units}: the network has {config.lstm_units} units a layer")
    weights = {name: variable.numpy() for name, variable in named_weights(model).items()}
    print(f"{FLAGS.model} ({os.path.basename(checkpoint)}): {config.lstm_layers}x{config.lstm_units}, "
          f"widened from {FLAGS.old_units} units a layer")
    print(f"{'layer':>5} {'old units rms':>14} {'new units rms':>14} {'ratio':>7}")
    for n, (old, new) in enumerate(unit_scales(weights, config.lstm_layers, FLAGS.old_units, config.lstm_units)):
        print(f"{n:>5} {old:>14.5f} {new:>14.5f} {new / old:>7.3f}")


if __name__ == "__main__":
    app.run(main)
