"""Writing files so that a crash or kill never leaves half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Opens a temporary file beside `path` for writing; when the block ends
    without an exception, the data is flushed to disk and the file renamed to
    `path` in one step. Readers see the old file or the new, never a part.
    The folder is created if needed; the file is readable by all (0644).

        with atomic_write("config.json") as f:
            f.write(text)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# An hwtf export's model config, beside its saved_model.pb.
CONFIG_FILE = "hwtf_config.json"


def check_export_dir(export_dir: str) -> None:
    """Refuses to export into a folder that holds anything but an hwtf
    export: an export replaces its folder, which must never be the user's
    files (`--export_dir=.` would have been the checkout).

    Raises:
      ValueError: naming the folder and what is in it.
    """
    path = os.path.abspath(export_dir)
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"{export_dir} is a file, not an export folder")
    entries = os.listdir(path)
    is_export = os.path.exists(os.path.join(path, "saved_model.pb")) and os.path.exists(os.path.join(path, CONFIG_FILE))
    if entries and not is_export:
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise ValueError(f"{export_dir} holds files that are not an hwtf export ({shown}); "
                         "an export replaces its folder, so give a new or empty one")
