"""What every hwtf command shares: a quiet start and one-line errors.

    if __name__ == "__main__":
        define_flags()
        cli.run(main)

TensorFlow prints eight to ten lines of C++ start-up log on import (oneDNN,
CUDA probing, CPU features), some before its logging can be configured, so
`TF_CPP_MIN_LOG_LEVEL` alone does not silence them. `run` imports TensorFlow
with standard error pointed at /dev/null (restored at once, and before any
import error is reported), and sets Python logging to warnings, unless
`--verbose` is on the command line. A `UsageError` (a bad flag value, data
that cannot be read) ends the command with its message on one line and exit
status 2, without the usage text; absl still prints usage for flag syntax
errors, before `main` runs.
"""

from __future__ import annotations

import importlib
import os
import sys

from absl import app, flags, logging

flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up log and informational messages.")


def quiet_import_tensorflow() -> None:
    """Imports TensorFlow, TensorFlow Probability and tf_keras (which TFP
    loads on first use) with the C++ start-up log silenced."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # quiet means quiet; --verbose shows everything
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        for module in ("tensorflow", "tensorflow_probability", "tf_keras"):
            importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _HwtfInfoOnly:
    """Passes warnings and errors, and INFO records from hwtf's own code (many
    TensorFlow modules log their internals through absl too)."""

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep

    def filter(self, record) -> bool:
        import logging as python_logging

        return record.levelno >= python_logging.WARNING or os.path.abspath(record.pathname).startswith(self.package)


def verbose_requested() -> bool:
    return "--verbose" in sys.argv[1:] or "--verbose=true" in sys.argv[1:]


def quiet_start() -> None:
    """The quiet import of TensorFlow, unless `--verbose`: for a command
    module that imports TensorFlow at its top (call it before that import)."""
    if not verbose_requested():
        quiet_import_tensorflow()


def run(main, name: str, info: bool = False, check=None) -> None:
    """`app.run(main)` with a quiet start and one-line errors.

    Args:
      name: the command, for its error lines (`hwtf.sample: error: ...`).
      info: keep Python INFO logging when not `--verbose` (training's
        progress); otherwise only warnings and errors.
      check: a function of no arguments that refuses bad flag values (raising
        `UsageError`) without TensorFlow: it runs once the flags are parsed
        and before TensorFlow is imported, so that a mistyped flag is named
        in about a second rather than after TensorFlow's ten.

    TensorFlow is imported (quietly) once the flags are parsed, so that a
    flag absl cannot parse is refused at once; a command module that imports
    it at its top calls `quiet_start` before that import instead.
    """
    verbose = verbose_requested()

    def wrapped(argv):
        try:
            if check is not None:
                check()
            quiet_start()
            if not (verbose or info):
                logging.set_verbosity(logging.WARNING)
            if not verbose:
                # TensorFlow's own INFO lines (checkpoint sharding, signature
                # input renaming, assets written) are internals, not progress.
                import logging as python_logging

                python_logging.getLogger("tensorflow").setLevel(python_logging.WARNING)
                logging.get_absl_handler().addFilter(_HwtfInfoOnly())
            return main(argv)
        except app.UsageError as e:
            sys.stderr.write(f"{name}: error: {e}\n")
            sys.exit(2)

    app.run(wrapped)


def dataset_flag(flag_values=None) -> str:
    """The data set that `--dataset` and `--data_dir` ask for: IAM-OnDB
    whenever `--data_dir` is given without `--dataset` (a path was never meant
    to be ignored), refusing `--dataset=synthetic` with a `--data_dir` and
    `--dataset=iamondb` without one, and a `--data_dir` that is not there."""
    values = flag_values or flags.FLAGS
    dataset, data_dir = values.dataset, values.data_dir
    if data_dir and not values["dataset"].present:
        dataset = "iamondb"
    if data_dir and dataset == "synthetic":
        raise app.UsageError(f"--data_dir={data_dir} is for --dataset=iamondb; the synthetic set is embedded "
                             "(drop --data_dir, or say --dataset=iamondb)")
    if dataset == "iamondb" and not data_dir:
        raise app.UsageError("--dataset=iamondb needs --data_dir (the IAM-OnDB folder or archive you have)")
    if data_dir and not os.path.exists(data_dir):
        raise app.UsageError(f"--data_dir={data_dir}: no such folder or archive")
    return dataset
