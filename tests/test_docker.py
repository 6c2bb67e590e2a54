"""The images: what the release Dockerfile copies exists and is not ignored, the environment's
base is Debian 13 with the lock's Python, a container of the built release image imports
everything the compiled spec names and holds exactly the lock, and the CUDA image loads the
CUDA libraries TensorFlow was built for."""

import fnmatch
import json
import os
import pathlib
import re
import sys

import pytest

from pipeline.pipeline import EXTRACTORS_MODULE, METRICS_MODULE, PREPROCESSING_FN, RUN_FN
from tests import containers
from tests.conftest import PROJECT_ROOT


def dockerfile_instructions(name: str = "Dockerfile"):
    with open(os.path.join(PROJECT_ROOT, name)) as f:
        text = re.sub(r"\\\n", " ", f.read())
    return [line.split(None, 1) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def dockerignore_patterns():
    with open(os.path.join(PROJECT_ROOT, ".dockerignore")) as f:
        return [line.strip().rstrip("/") for line in f
                if line.strip() and not line.startswith("#")]


def ignored(relative_path: str) -> bool:
    parts = relative_path.split(os.sep)
    return any(fnmatch.fnmatch(relative_path, p) or fnmatch.fnmatch(parts[0], p)
               or (p.startswith("**/") and any(fnmatch.fnmatch(x, p[3:]) for x in parts))
               for p in dockerignore_patterns())


def copied_sources():
    sources = []
    for instruction, args in dockerfile_instructions():
        if instruction == "COPY" and not args.startswith("--from="):  # not from a stage
            sources.extend(args.split()[:-1])
    return [s.rstrip("/") for s in sources]


def test_base_image_is_debian_13_and_its_python_is_the_locks():
    (instruction, base), *_ = dockerfile_instructions("env.Dockerfile")
    assert instruction == "FROM" and base.split()[0] == "debian:trixie-slim"
    with open(os.path.join(PROJECT_ROOT, "requirements.lock")) as f:
        assert f"--python-version {makefile_variable('PYTHON_VERSION')} " in f.read()
    if os.environ.get("YT8M_TFX_VENV"):  # in the image: Debian 13's own python3
        assert sys.prefix == os.environ["YT8M_TFX_VENV"]
        assert "{}.{}".format(*sys.version_info) == makefile_variable("PYTHON_VERSION")


def test_copied_files_exist_and_are_in_the_context():
    sources = copied_sources()
    # Every package the project installs (pyproject.toml), and its metadata.
    packages = {path.parent.name for path in pathlib.Path(PROJECT_ROOT).glob("*/__init__.py")}
    assert packages - {"tests", "bench"} | {"pyproject.toml"} <= set(sources)
    for source in sources:
        assert os.path.exists(os.path.join(PROJECT_ROOT, source)), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"


def makefile_variable(name: str) -> str:
    with open(os.path.join(PROJECT_ROOT, "Makefile")) as f:
        return re.search(rf"^{name} := (\S+)$", f.read(), re.M).group(1)


IMPORT_CHECK = """
import importlib, json, sys
imported = []
for path in json.loads(sys.argv[1]):
    try:
        importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        getattr(importlib.import_module(module), name)
    imported.append(path)
print(json.dumps(imported))
"""


def spec_module_paths(spec_path) -> set[str]:
    """Every Python path a compiled spec makes the image import: entrypoint modules,
    executor classes, and the project paths in component configs (run_fn, …)."""
    with open(spec_path) as f:
        text = f.read()
    paths = set(re.findall(r"--executor_class_path\n\s+- ([\w.]+)", text))
    paths |= set(re.findall(r"- -m\n\s+- ([\w.]+)", text))
    project = (r"(?<![\w.])(?:shards|contract|trainer_module|evaluation|components|pipeline"
               r"|serving)(?:\.\w+)+")
    return paths | set(re.findall(project, text))


@pytest.mark.e2e
@pytest.mark.skipif(containers.engine_socket() is None,
                    reason="needs a container engine: run `make test`")
def test_the_image_imports_everything_the_spec_names_and_holds_the_lock(tmp_path, capsys):
    from pipeline.kubeflow_runner import main as kubeflow_main

    spec = tmp_path / "pipeline.yaml"
    assert kubeflow_main(["compile", "--pipeline_root", "gs://b/r", "--data_root", "gs://b/d",
                          "--output", str(spec), "--predict_data_pattern", "gs://b/t/*",
                          "--warm_start", "--image", containers.test_image()]) == 0
    paths = spec_module_paths(spec)
    assert {"pipeline.kfp_entrypoint", RUN_FN, PREPROCESSING_FN, METRICS_MODULE, EXTRACTORS_MODULE,
            "components.predictions_csv.BatchPredict_Executor",
            "components.latest_pushed_model.LatestPushedModel_Executor",
            "tfx.components.trainer.executor.GenericExecutor"} <= paths

    # A new container of the image, from its own working directory, as a pod starts it.
    result = containers.run(containers.test_image(), ["python", "-c", IMPORT_CHECK,
                                                      json.dumps(sorted(paths))],
                            {"TF_CPP_MIN_LOG_LEVEL": "2"}, [])
    assert result.exit_code == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.splitlines()[-1])
    with capsys.disabled():
        print(f"\nimported in the image: {', '.join(imported)}")
    assert imported == sorted(paths)
    # The venv holds exactly the lock file and the project.
    frozen = containers.run(containers.test_image(),
                            ["uv", "pip", "freeze", "--python", "python"], {},
                            [])
    assert frozen.exit_code == 0, frozen.stderr
    with open(os.path.join(PROJECT_ROOT, "requirements.lock")) as f:
        locked = {canonical(line) for line in f if "==" in line}
    installed = {canonical(line) for line in frozen.stdout.splitlines() if "==" in line}
    assert locked == installed
    (project,) = [line for line in frozen.stdout.splitlines() if "==" not in line]
    assert project.startswith("yt8m-tfx @ file://")


def canonical(requirement: str) -> str:
    """`name==version` with the name normalized as PyPI does."""
    name, _, version = requirement.strip().partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version.split()[0]}"


CUDA_CHECK = """
import ctypes, glob, json, sysconfig
from tensorflow.python.platform import build_info  # tf.sysconfig.get_build_info()

info = build_info.build_info
cuda, cudnn = info["cuda_version"].split(".")[0], info["cudnn_version"].split(".")[0]
loaded = {}
for name in (f"libcudart.so.{cuda}", f"libcublas.so.{cuda}", f"libcudnn.so.{cudnn}"):
    (path,) = glob.glob(f"{sysconfig.get_paths()['purelib']}/nvidia/*/lib/{name}")
    ctypes.CDLL(path)
    loaded[name] = path
print(json.dumps({"build": [info["cuda_version"], info["cudnn_version"]], "loaded": loaded}))
"""


@pytest.mark.e2e
@pytest.mark.skipif(containers.engine_socket() is None,
                    reason="needs a container engine: run `make test`")
def test_the_cuda_image_loads_the_cuda_libraries_tensorflow_was_built_for(capsys):
    result = containers.run(containers.test_image(containers.GPU_IMAGE_VARIABLE),
                            ["python", "-c", CUDA_CHECK], {"TF_CPP_MIN_LOG_LEVEL": "2"}, [])
    assert result.exit_code == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    with capsys.disabled():
        print(f"\nCUDA {found['build'][0]} / cuDNN {found['build'][1]} build; loaded in the "
              f"CUDA image: {', '.join(found['loaded'])}")
    assert len(found["loaded"]) == 3


@pytest.mark.skipif(not (os.environ.get(containers.CONTAINER_VARIABLE)
                         and containers.engine_socket()),
                    reason="runs in the container `make test` starts (tools/container.sh)")
def test_the_container_make_started_mounts_only_what_it_names():
    from tests.conftest import PROJECT_ROOT

    mounts = containers.inspect(os.environ[containers.CONTAINER_VARIABLE])["Mounts"]
    destinations = {mount["Destination"] for mount in mounts}
    # The work tree; the engine's socket for the Kubeflow tasks; the host's CA bundle.
    assert destinations <= {PROJECT_ROOT, "/run/yt8m-tfx-engine.sock",
                            "/run/host-ca-certificates.crt"}, destinations
    assert PROJECT_ROOT in destinations
    assert os.path.dirname(PROJECT_ROOT) not in destinations
