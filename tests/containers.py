"""Runs a command in a new container of the pipeline image, as a Kubernetes pod runs it (test
code): through the container engine's API on the socket `tools/container.sh` hands over in
YT8M_TFX_ENGINE_SOCKET.

The calls are the Docker Engine API's (docs.docker.com/engine/api/v1.41: `POST
/containers/create`, `/start`, `/wait`, `GET /logs`, `DELETE /containers/{id}`), which
podman's API service implements too (docs.podman.io, "podman system service": the Docker-
compatible API). As in a pod, the container starts from the image's own environment and
working directory with the spec's `command` + `args`; what it reads and writes outside itself
comes through bind mounts at the same paths (a pod's volumes).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import struct
import subprocess
import urllib.parse

SOCKET_VARIABLE = "YT8M_TFX_ENGINE_SOCKET"
IMAGE_VARIABLE = "YT8M_TFX_IMAGE"
GPU_IMAGE_VARIABLE = "YT8M_TFX_GPU_IMAGE"
# The container `make` runs this suite in (tools/container.sh names it here).
CONTAINER_VARIABLE = "YT8M_TFX_CONTAINER"
API = "/v1.41"


@dataclasses.dataclass
class Finished:
    exit_code: int
    stdout: str
    stderr: str


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def engine_socket() -> str | None:
    """The engine's API socket, when `make test` (tools/container.sh) provided one."""
    return os.environ.get(SOCKET_VARIABLE)


def test_image(variable: str = IMAGE_VARIABLE) -> str:
    """The release image `make test` built (the Makefile passes its name), else the Makefile's
    IMAGE (GPU_IMAGE for GPU_IMAGE_VARIABLE), where its name is derived."""
    from tests.conftest import PROJECT_ROOT

    if os.environ.get(variable):
        return os.environ[variable]
    name = variable.removeprefix("YT8M_TFX_")
    return subprocess.run(["make", "-s", "NATIVE=1", f"print-{name}"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()


def inspect(container: str) -> dict:
    """The engine's description of a container (`GET /containers/{id}/json`)."""
    return json.loads(_call("GET", f"/containers/{container}/json"))


def _call(method: str, path: str, body: dict | None = None, timeout: float = 60) -> bytes:
    connection = _UnixConnection(engine_socket(), timeout)
    try:
        connection.request(method, API + path, body=json.dumps(body) if body else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:500]!r}")
    return data


def _demultiplex(stream: bytes) -> tuple[str, str]:
    """The logs endpoint's framing: 8-byte headers (stream 1 or 2, size), then the bytes."""
    out, err, offset = [], [], 0
    while offset + 8 <= len(stream):
        kind, size = struct.unpack(">BxxxL", stream[offset:offset + 8])
        chunk = stream[offset + 8:offset + 8 + size]
        (err if kind == 2 else out).append(chunk)
        offset += 8 + size
    return b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


def run(image: str, argv: list[str], env: dict[str, str], mounts: list[str],
        timeout: float = 1800) -> Finished:
    """Runs `argv` (entrypoint and arguments, as a pod's command + args) in a new container of
    `image` on the host's network, `mounts` bound read-write at their own paths; waits for it
    (at most `timeout` seconds) and removes it."""
    body = {"Image": image, "Entrypoint": argv[:1], "Cmd": argv[1:],
            "Env": [f"{k}={v}" for k, v in env.items()],
            "HostConfig": {"Binds": [f"{path}:{path}" for path in mounts],
                           "NetworkMode": "host",
                           "Ulimits": [{"Name": "nofile", "Soft": 10000, "Hard": 10000},
                                       {"Name": "nproc", "Soft": 4096, "Hard": 4096}]}}
    container = json.loads(_call("POST", "/containers/create", body))["Id"]
    try:
        _call("POST", f"/containers/{container}/start")
        status = json.loads(_call("POST", f"/containers/{container}/wait", timeout=timeout))
        query = urllib.parse.urlencode({"stdout": 1, "stderr": 1})
        stdout, stderr = _demultiplex(_call("GET", f"/containers/{container}/logs?{query}"))
        return Finished(status["StatusCode"], stdout, stderr)
    finally:
        _call("DELETE", f"/containers/{container}?force=1")
