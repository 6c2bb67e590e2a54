"""Every component's start, end and duration, printed whatever the log level: by the local
runner for each component it launches, and by a Kubeflow task for its one component.

TFX's own "Component X is running/finished" lines are absl INFO records, which vanish once
absl's verbosity drops to WARNING (its default when flags get parsed, as they are in the
Trainer), so they cannot be relied on for progress.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from components.compat import around_each_local_launch


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


@contextlib.contextmanager
def component_timer(name: str) -> Iterator[None]:
    """Prints that component `name` started, then that it finished or failed, and after how
    long."""
    print(f"Component {name} is running.", file=sys.stdout, flush=True)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        print(f"Component {name} failed after {_duration(time.monotonic() - start)}.",
              file=sys.stdout, flush=True)
        raise
    print(f"Component {name} is finished ({_duration(time.monotonic() - start)}).",
          file=sys.stdout, flush=True)


@contextlib.contextmanager
def timed_local_components() -> Iterator[None]:
    """While active, every component LocalDagRunner launches is timed."""
    with around_each_local_launch(component_timer):
        yield
