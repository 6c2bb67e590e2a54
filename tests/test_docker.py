"""The pipeline image's Dockerfile and build context: what it copies exists and is not ignored,
its base matches the installed TFX, and the project installs from that context alone."""

import fnmatch
import os
import re
import shutil
import subprocess
import sys

import tfx

from pipeline.pipeline import METRICS_MODULE, PREPROCESSING_FN, RUN_FN
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


def test_base_image_is_the_installed_tfx_version():
    (instruction, base), *_ = dockerfile_instructions()
    assert instruction == "FROM" and base == f"tensorflow/tfx:{tfx.__version__}"


def test_copied_files_exist_and_are_in_the_context():
    sources = copied_sources()
    assert {"trainer_module", "components", "pipeline", "serving", "pyproject.toml"} <= set(
        sources)
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


def test_the_project_installs_from_the_build_context_in_a_clean_venv(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    build_context(context)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # What the Dockerfile's RUN does: the project alone, its dependencies come with the base.
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", str(context)],
                   check=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    module_files = {path.rpartition(".")[0].replace(".", "/") + ".py"
                    for path in (RUN_FN, PREPROCESSING_FN)}
    module_files.add(METRICS_MODULE.replace(".", "/") + ".py")
    expected = {*module_files, "components/batch_predict.py", "serving/batch_predict.py",
                "trainer_module/vocabulary.csv", "pipeline/schemas/frame_level.pbtxt"}
    for relative in sorted(expected):
        assert os.path.isfile(os.path.join(site, relative)), f"{relative} not installed"
