"""Output files that appear under their name only when complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def written_atomically(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path` to write; renames it to `path` only if the block
    succeeds, and removes it otherwise, so a failure never leaves a half-written file."""
    partial = path + ".partial"
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
