"""The versions of one model under TF Serving's layout, loaded and unloaded as TF Serving's
default version policy does: the newest version is served; a newly pushed one replaces it
and the old one is unloaded once its in-flight requests finish; a version that fails to load
is retried with back-off while the previous one keeps serving. Status entries follow
`get_model_status_impl.cc`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from tensorflow.core.protobuf import error_codes_pb2

from contract.saved_model import SAVED_MODEL_FILENAME
from serving.errors import ServingError
from serving.model_dir import available_versions
from serving.session_model import SessionModel
from shards.tf_errors import op_error_reason

log = logging.getLogger(__name__)

# A broken newest version is retried after these many seconds, doubling up to the maximum.
RETRY_SECONDS, MAX_RETRY_SECONDS = 2.0, 300.0


@dataclasses.dataclass
class VersionStatus:
    """One version's entry in the status response (`ModelVersionStatus`)."""

    state: str  # AVAILABLE or END (unloaded, or failed to load)
    error_code: str = "OK"
    error_message: str = ""


class Servable:
    """A loaded version; unloaded once it is retired and its last request has finished."""

    def __init__(self, version: int, model: SessionModel):
        self.version = version
        self.model = model
        self.users = 0
        self.retired = False

    def unload(self) -> None:
        self.model.close()
        # The graph and session sit in reference cycles: without a collection, each version
        # switch would keep ~0.6 MB until the collector happens to run.
        gc.collect()


@dataclasses.dataclass
class _FailedLoad:
    fingerprint: tuple
    retry_at: float
    wait: float


class ModelRegistry:
    """The latest version of one model under a base path, reloaded when a newer one appears."""

    def __init__(self, name: str, base_path: str, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.base_path = base_path
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Servable | None = None
        self._statuses: dict[int, VersionStatus] = {}
        self._failed: dict[int, _FailedLoad] = {}

    def refresh(self) -> None:
        """Loads the newest version if it is not the one being served; the old one is
        unloaded when its requests have finished."""
        versions = available_versions(self.base_path)
        if not versions:
            return
        newest = max(versions)
        if self._current is not None and self._current.version == newest:
            return
        path = versions[newest]
        fingerprint = _fingerprint(path)
        failed = self._failed.get(newest)
        if failed and failed.fingerprint == fingerprint and self._clock() < failed.retry_at:
            return
        try:
            model = SessionModel(path)
        except Exception as error:  # a half-copied or broken version must not stop serving
            wait = min(failed.wait * 2, MAX_RETRY_SECONDS) if failed else RETRY_SECONDS
            self._failed[newest] = _FailedLoad(fingerprint, self._clock() + wait, wait)
            code = error_codes_pb2.Code.Name(getattr(error, "error_code", error_codes_pb2.UNKNOWN))
            message = op_error_reason(str(error))
            with self._lock:
                self._statuses[newest] = VersionStatus("END", code, message)
            log.error("cannot load %s version %d (retrying in %.0f s): %s", self.name, newest,
                      wait, message)
            return
        self._failed.pop(newest, None)
        close_old = False
        with self._lock:
            old, self._current = self._current, Servable(newest, model)
            self._statuses[newest] = VersionStatus("AVAILABLE")
            if old is not None:
                self._statuses[old.version] = VersionStatus("END")
                old.retired = True
                close_old = old.users == 0
        if old is not None and close_old:
            old.unload()
        log.warning("serving %s version %d from %s", self.name, newest, path)

    @property
    def serving_version(self) -> int | None:
        with self._lock:
            return self._current.version if self._current else None

    @contextlib.contextmanager
    def use(self, name: str, version: int | None) -> Iterator[Servable]:
        """The servable for a request (`GetServableHandle`), kept loaded while in use."""
        with self._lock:
            servable = self._current
            if name != self.name or servable is None or (
                    version is not None and version != servable.version):
                wanted = f"Specific({name}, {version})" if version is not None else (
                    f"Latest({name})")
                raise ServingError(f"Servable not found for request: {wanted}", 404)
            servable.users += 1
        try:
            yield servable
        finally:
            with self._lock:
                servable.users -= 1
                close = servable.retired and servable.users == 0
            if close:
                servable.unload()

    def status(self, name: str, version: int | None) -> dict:
        """`GetModelStatusImpl`: every version this server has known, newest first."""
        with self._lock:
            statuses = dict(self._statuses) if name == self.name else {}
        if version is not None:
            if version not in statuses:
                raise ServingError(f"Could not find version {version} of model {name}", 404)
            statuses = {version: statuses[version]}
        elif not statuses:
            raise ServingError(f"Could not find any versions of model {name}", 404)
        return {"model_version_status": [
            {"version": str(v), "state": s.state,
             "status": {"error_code": s.error_code, "error_message": s.error_message}}
            for v, s in sorted(statuses.items(), reverse=True)]}

    def poll_forever(self, interval_seconds: float) -> None:
        while True:
            time.sleep(interval_seconds)
            self.refresh()


def _fingerprint(path: str) -> tuple:
    """What changes when a version's files are (re)written."""
    names = (SAVED_MODEL_FILENAME, "variables/variables.index")
    return tuple(os.stat(os.path.join(path, n)).st_mtime_ns
                 if os.path.exists(os.path.join(path, n)) else None for n in names)
