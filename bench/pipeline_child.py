"""Runs `pipeline.run_local` once in this process and prints, as JSON on the last line, the
seconds each component took (from ML Metadata) and this process's peak RSS."""

from __future__ import annotations

import json
import resource
import sys
import time


def component_seconds(metadata_sqlite: str) -> dict[str, float]:
    """Wall seconds of each component execution in the latest run."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.summary import _store

    store = _store(metadata_sqlite)
    runs = store.get_contexts_by_type("pipeline_run")
    latest = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    type_names = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    seconds = {}
    for execution in store.get_executions_by_context(latest.id):
        if execution.last_known_state == metadata_store_pb2.Execution.COMPLETE:
            seconds[type_names[execution.type_id]] = (
                execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
    return seconds


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage: Linux carries ru_maxrss over from
    the parent across exec, so a child would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    from pipeline.run_local import main as run_local

    start = time.perf_counter()
    code = run_local(argv)
    wall = time.perf_counter() - start
    root = argv[argv.index("--pipeline_root") + 1]
    print(json.dumps({
        "exit_code": code, "wall_seconds": wall,
        "components": component_seconds(f"{root}/metadata.sqlite") if code == 0 else {},
        "peak_rss_mb": peak_rss_mb()}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
