"""A cached run re-runs what an edit changed: the Trainer and Transform carry fingerprints of
the code they run by name (pipeline/sources.py)."""

import json
import modulefinder
import os
import shutil

import pytest

from pipeline.pipeline import create_pipeline
from pipeline.pipeline_config import PipelineConfig
from pipeline.sources import (
    PROJECT_ROOT,
    SOURCE_KEY,
    TRAINER_SOURCES,
    TRANSFORM_SOURCES,
    source_fingerprint,
)


def test_an_edit_a_new_file_or_a_rename_changes_the_fingerprint(tmp_path):
    for source in TRAINER_SOURCES:
        shutil.copytree(os.path.join(PROJECT_ROOT, source), tmp_path / source,
                        ignore=shutil.ignore_patterns("__pycache__"))
    before = source_fingerprint(TRAINER_SOURCES, str(tmp_path))
    assert before == source_fingerprint(TRAINER_SOURCES, PROJECT_ROOT)
    (tmp_path / "trainer_module" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "trainer_module" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert source_fingerprint(TRAINER_SOURCES, str(tmp_path)) == before, "caches do not count"
    models = tmp_path / "trainer_module" / "video_level_models.py"
    models.write_text(models.read_text() + "\n# an edit\n")
    edited = source_fingerprint(TRAINER_SOURCES, str(tmp_path))
    assert edited != before
    (tmp_path / "shards" / "new_helper.py").write_text("")
    added = source_fingerprint(TRAINER_SOURCES, str(tmp_path))
    assert added != edited
    (tmp_path / "shards" / "new_helper.py").rename(tmp_path / "shards" / "renamed.py")
    assert source_fingerprint(TRAINER_SOURCES, str(tmp_path)) != added
    with pytest.raises(FileNotFoundError, match="no such source path: .*nowhere"):
        source_fingerprint(("nowhere",), str(tmp_path))


def test_transform_sources_cover_what_preprocessing_fn_imports():
    finder = modulefinder.ModuleFinder(path=[PROJECT_ROOT])
    finder.run_script(os.path.join(PROJECT_ROOT, "trainer_module", "transform.py"))
    project = {os.path.relpath(module.__file__, PROJECT_ROOT)
               for module in finder.modules.values()
               if module.__file__ and module.__file__.startswith(PROJECT_ROOT + os.sep)}
    assert project - {"trainer_module/__init__.py"} <= set(TRANSFORM_SOURCES)


def test_the_trainer_and_transform_carry_their_fingerprints():
    pipeline = create_pipeline(PipelineConfig())
    nodes = {component.id: component for component in pipeline.components}
    trainer = json.loads(nodes["Trainer"].exec_properties["custom_config"])
    transform = json.loads(nodes["Transform"].exec_properties["custom_config"])
    assert trainer[SOURCE_KEY] == source_fingerprint(TRAINER_SOURCES)
    assert transform[SOURCE_KEY] == source_fingerprint(TRANSFORM_SOURCES)
