"""`tools/container.sh`: the GPUs it passes to a container, from the host's inventory (what
`nvidia-smi -L` lists and, for podman, the CDI devices `nvidia-ctk cdi list` knows), faked here
by those two commands on PATH; and the paths it refuses before any container starts."""

import os
import stat
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT

TOOL = os.path.join(PROJECT_ROOT, "tools", "container.sh")
TWO_GPUS = ("GPU 0: NVIDIA H200 (UUID: GPU-0a)\nGPU 1: NVIDIA H200 (UUID: GPU-1b)\n")
CDI_DEVICES = "Found 3 CDI devices\nnvidia.com/gpu=0\nnvidia.com/gpu=1\nnvidia.com/gpu=all\n"


def fake_host(tmp_path, gpus: str | None, cdi: str | None) -> dict[str, str]:
    """An environment whose PATH answers `nvidia-smi -L` with `gpus` (None: as on a host without
    a driver) and `nvidia-ctk cdi list` with `cdi` (None: not installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    no_driver = ("echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                 "driver.\"; exit 9")
    scripts = {"nvidia-smi": f"cat <<'EOF'\n{gpus}EOF" if gpus is not None else no_driver}
    if cdi is not None:
        scripts["nvidia-ctk"] = f"cat <<'EOF'\n{cdi}EOF"
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    # Only the fakes and the shell's own tools: a real driver of this host must not answer.
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}


def gpu_args(env: dict[str, str], engine: str, gpus: str | None = None):
    if gpus is not None:
        env = {**env, "GPUS": gpus}
    result = subprocess.run(["bash", TOOL, "gpu-args", engine], capture_output=True, text=True,
                            env=env, cwd=PROJECT_ROOT)
    return result.returncode, result.stdout.splitlines(), result.stderr.strip()


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_a_host_without_gpus_passes_none_and_refuses_a_request_for_them(tmp_path, engine):
    env = fake_host(tmp_path, gpus=None, cdi=None)
    assert gpu_args(env, engine) == (0, [], "")
    assert gpu_args(env, engine, "none") == (0, [], "")
    code, args, error = gpu_args(env, engine, "all")
    assert (code, args) == (2, [])
    assert error == "error: GPUS=all: this host has no NVIDIA GPU ('nvidia-smi -L' lists none)"


def test_docker_gets_all_gpus_or_the_ones_named(tmp_path):
    env = fake_host(tmp_path, gpus=TWO_GPUS, cdi=None)
    assert gpu_args(env, "docker") == (0, ["--gpus", "all"], "")
    assert gpu_args(env, "docker", "1") == (0, ["--gpus", '"device=1"'], "")
    assert gpu_args(env, "docker", "0,1") == (0, ["--gpus", '"device=0,1"'], "")
    assert gpu_args(env, "docker", "none") == (0, [], "")


def test_podman_gets_the_cdi_devices_where_a_cdi_spec_exists(tmp_path):
    env = fake_host(tmp_path, gpus=TWO_GPUS, cdi=CDI_DEVICES)
    assert gpu_args(env, "podman") == (0, ["--device", "nvidia.com/gpu=all"], "")
    assert gpu_args(env, "podman", "0,1") == (
        0, ["--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1"], "")
    assert gpu_args(env, "podman", "none") == (0, [], "")


@pytest.mark.parametrize("cdi", [None, "Found 0 CDI devices\n"])
def test_podman_without_a_cdi_spec_says_what_to_install(tmp_path, cdi):
    env = fake_host(tmp_path, gpus=TWO_GPUS, cdi=cdi)
    code, args, note = gpu_args(env, "podman")
    assert (code, args) == (0, [])  # GPUS not given: on the CPU, and said so
    assert note.startswith("note: podman needs NVIDIA's CDI spec")
    assert "nvidia-ctk cdi generate" in note
    code, args, error = gpu_args(env, "podman", "all")
    assert (code, args) == (2, [])
    assert error.startswith("error: GPUS=all: podman needs NVIDIA's CDI spec")


@pytest.mark.parametrize("option, name",
                         [("--read", "DATA_ROOT"), ("--flags", "--warm_start_from")])
def test_a_missing_path_is_refused_in_one_line_before_any_container(tmp_path, option, name):
    missing = "/nonexistent/yt8m-tfx-test"  # outside the work tree (whose paths are mounted)
    value = f"{name}={missing}" if option == "--read" else f"--model=MoeModel {name}={missing}"
    # PATH holds no container engine: anything past the check would fail differently.
    result = subprocess.run(["bash", TOOL, "run", option, value, "--", "true"],
                            capture_output=True, text=True, cwd=PROJECT_ROOT,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "ENV_REPO": "unused", "UV_VERSION": "0"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {name}={missing}: no such file or directory on this host"]
