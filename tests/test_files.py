"""atomic_write: the old file or the new, never a part, and no litter."""

import os

import pytest

from hwtf.files import atomic_write


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "sub" / "config.json"
    with atomic_write(path) as f:
        f.write("old")
    assert path.read_text() == "old" and oct(os.stat(path).st_mode & 0o777) == "0o644"
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(path.parent) == ["config.json"]  # the temporary file is gone
    with atomic_write(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(path.parent) == ["config.json"]
