"""TensorFlow's multi-line op errors (a corrupt shard, a model op that fails) as the one line
a user needs."""

from __future__ import annotations

import re

_NOISE = ("Graph execution error", "Detected at node", "[[", "File ", "Traceback")


def op_error_reason(message: str) -> str:
    """The cause in a TF error message, without stack frames, node names and op suffixes."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(_NOISE)]
    reason = causes[-1] if causes else (lines[0] if lines else "unknown TensorFlow error")
    return re.sub(r"\s*\[Op:[^\]]*\]$", "", reason)
