"""Runs `pipeline.run_local` once in this process and prints, as JSON on the last line, the
seconds each component took (from ML Metadata) and the peak RSS of this process and its Beam
worker processes while it ran (sampled), overall and per component."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

RSS_SAMPLE_SECONDS = 0.2


def component_windows(metadata_sqlite: str) -> dict[str, tuple[float, float]]:
    """(start, end) epoch seconds of each component execution in the latest run."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.summary import latest_run_executions

    windows = {}
    for name, execution in latest_run_executions(metadata_sqlite):
        if execution.last_known_state == metadata_store_pb2.Execution.COMPLETE:
            windows[name] = (
                execution.create_time_since_epoch / 1e3,
                execution.last_update_time_since_epoch / 1e3)
    return windows


def _process_pss_mb(pid: int | str) -> float:
    """The process's proportional set size: its private pages, and each page it shares
    (TensorFlow's libraries, mapped by every Beam worker) divided among its sharers, so that
    a process tree's sum counts each page once (VmRSS would count shared ones per process)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # it ended meanwhile
        pass
    return 0.0


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (Beam's worker processes), from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The parent id follows the parenthesised command name, which may hold spaces.
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def rss_mb() -> float:
    """Resident memory now of this process and every process below it (PSS summed)."""
    return sum(_process_pss_mb(pid) for pid in [os.getpid(), *_descendants(os.getpid())])


class RssSampler(threading.Thread):
    """Samples rss_mb() every RSS_SAMPLE_SECONDS; `peak(start, end)` is the highest sample in
    a window. Not VmHWM: that only grows, so it would charge each component with the peaks
    of the ones before it."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(RSS_SAMPLE_SECONDS):
            self.samples.append((time.time(), rss_mb()))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> float:
        inside = [mb for at, mb in self.samples if start <= at <= end]
        return max(inside, default=0.0)


def main(argv: list[str]) -> int:
    from pipeline.run_local import main as run_local

    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    code = run_local(argv)
    wall = time.perf_counter() - start
    sampler.stop()
    root = argv[argv.index("--pipeline_root") + 1]
    windows = component_windows(f"{root}/metadata.sqlite") if code == 0 else {}
    print(json.dumps({
        "exit_code": code, "wall_seconds": wall,
        "components": {name: end - begin for name, (begin, end) in windows.items()},
        "component_windows": windows,
        "component_peak_rss_mb": {name: sampler.peak(begin, end)
                                  for name, (begin, end) in windows.items()},
        "peak_rss_mb": sampler.peak()}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
