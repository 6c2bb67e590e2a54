"""The pipeline image's Dockerfile and build context: what it copies exists and is not ignored,
its base matches the installed TFX, and the project installs from that context alone."""

import fnmatch
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from pipeline.pipeline import EXTRACTORS_MODULE, METRICS_MODULE, PREPROCESSING_FN, RUN_FN
from tests.conftest import PROJECT_ROOT


def dockerfile_instructions():
    with open(os.path.join(PROJECT_ROOT, "Dockerfile")) as f:
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
        if instruction == "COPY":
            sources.extend(args.split()[:-1])
    return [s.rstrip("/") for s in sources]


def test_base_image_is_a_pinned_python_of_the_venvs_version():
    (instruction, base), *_ = dockerfile_instructions()
    version = ".".join(map(str, sys.version_info[:3]))
    assert instruction == "FROM" and base == f"python:{version}-slim-bookworm"


def test_copied_files_exist_and_are_in_the_context():
    sources = copied_sources()
    # Every package the project installs (pyproject.toml), and its metadata.
    packages = {path.parent.name for path in pathlib.Path(PROJECT_ROOT).glob("*/__init__.py")}
    assert packages - {"tests", "bench"} | {"pyproject.toml"} <= set(sources)
    for source in sources:
        assert os.path.exists(os.path.join(PROJECT_ROOT, source)), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"


def build_context(destination):
    """The files Docker would send and copy: COPY sources minus .dockerignore matches."""
    for source in copied_sources():
        path = os.path.join(PROJECT_ROOT, source)
        if os.path.isfile(path):
            shutil.copy(path, destination / source)
            continue
        for root, dirs, files in os.walk(path):
            relative_root = os.path.relpath(root, PROJECT_ROOT)
            dirs[:] = [d for d in dirs if not ignored(os.path.join(relative_root, d))]
            os.makedirs(destination / relative_root, exist_ok=True)
            for name in files:
                if not ignored(os.path.join(relative_root, name)):
                    shutil.copy(os.path.join(root, name), destination / relative_root / name)


def makefile_variable(name: str) -> str:
    with open(os.path.join(PROJECT_ROOT, "Makefile")) as f:
        return re.search(rf"^{name} := (\S+)$", f.read(), re.M).group(1)


def run_dockerfile_commands(context, venv) -> None:
    """The Dockerfile's RUN commands, in order, in the build context, with the image's
    VIRTUAL_ENV pointing at `venv` and `python` this interpreter's base Python 3.10 (the
    image's). BuildKit cache mounts are left out: uv then uses this machine's cache."""
    shims = context.parent / "shims"
    shims.mkdir()
    base_python = pathlib.Path(sys.base_prefix, "bin", "python{}.{}".format(*sys.version_info))
    os.symlink(base_python, shims / "python")
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "UV_VERSION": makefile_variable("UV_VERSION"),
           "PATH": f"{venv}/bin:{shims}:{os.environ['PATH']}"}
    for instruction, command in dockerfile_instructions():
        if instruction == "RUN":
            command = re.sub(r"^(--mount=\S+\s+)+", "", command)
            subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=context, env=env,
                           check=True)


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
    project = (r"(?<![\w.])(?:shards|trainer_module|evaluation|components|pipeline|serving)"
               r"(?:\.\w+)+")
    return paths | set(re.findall(project, text))


@pytest.mark.e2e
def test_the_image_environment_imports_everything_the_spec_names(tmp_path, capsys):
    from pipeline.kubeflow_runner import main as kubeflow_main

    spec = tmp_path / "pipeline.yaml"
    assert kubeflow_main(["compile", "--pipeline_root", "gs://b/r", "--data_root", "gs://b/d",
                          "--output", str(spec), "--predict_data_pattern", "gs://b/t/*",
                          "--warm_start"]) == 0
    paths = spec_module_paths(spec)
    assert {"pipeline.kfp_entrypoint", RUN_FN, PREPROCESSING_FN, METRICS_MODULE, EXTRACTORS_MODULE,
            "components.predictions_csv.BatchPredict_Executor",
            "components.latest_pushed_model.LatestPushedModel_Executor",
            "tfx.components.trainer.executor.GenericExecutor"} <= paths

    context = tmp_path / "context"
    context.mkdir()
    build_context(context)
    venv = tmp_path / "venv"
    run_dockerfile_commands(context, venv)
    result = subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT_CHECK,
                             json.dumps(sorted(paths))], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.splitlines()[-1])
    with capsys.disabled():
        print(f"\nimported in the image's environment: {', '.join(imported)}")
    assert imported == sorted(paths)
    # The venv holds exactly the lock file (what `make test` tests) and the project.
    frozen = subprocess.run([str(venv / "bin" / "uv"), "pip", "freeze", "--python",
                             str(venv / "bin" / "python")], capture_output=True, text=True,
                            check=True).stdout
    with open(os.path.join(PROJECT_ROOT, "requirements.lock")) as f:
        locked = {canonical(line) for line in f if "==" in line}
    installed = {canonical(line) for line in frozen.splitlines() if "==" in line}
    assert locked == installed
    (project,) = [line for line in frozen.splitlines() if "==" not in line]
    assert project.startswith("yt8m-tfx @ file://")


def canonical(requirement: str) -> str:
    """`name==version` with the name normalized as PyPI does."""
    name, _, version = requirement.strip().partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version.split()[0]}"
