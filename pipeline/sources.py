"""Fingerprints of the code that components run by name, for TFX's cache.

The Trainer, the Tuner and Transform get their code as module paths (`run_fn`, `tuner_fn`,
`preprocessing_fn`), so TFX's cache key holds the names, not the code: after an edit under
`trainer_module/` a cached run would reuse the old model. TFX keys a `module_file` on the
hash of the wheel it builds from it (tfx/components/util/udf_utils.py); module paths get the
same here: each of those components' `custom_config` carries a hash of the files it runs, so
an edit re-runs it and every component downstream of it.
"""

from __future__ import annotations

import hashlib
import os

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_KEY = "source_fingerprint"  # the custom_config entry
# What the Trainer and the Tuner run: the model code and what it imports.
TRAINER_SOURCES = ("trainer_module", "shards", "contract")
# What preprocessing_fn runs (tests/test_sources.py checks these cover transform.py's
# imports): only these, so that editing a model leaves Transform cached.
TRANSFORM_SOURCES = ("trainer_module/transform.py", "trainer_module/features.py",
                     "trainer_module/training_config.py", "trainer_module/metrics.py",
                     "trainer_module/segments.py", "trainer_module/vocabulary.py",
                     "trainer_module/hparams.py", "trainer_module/vocabulary.csv",
                     "trainer_module/segment_label_ids.csv", "contract/__init__.py",
                     "contract/saved_model.py")
_CODE_SUFFIXES = (".py", ".csv")


def _files(paths: tuple[str, ...], root: str) -> list[str]:
    found = []
    for path in paths:
        full = os.path.join(root, path)
        if os.path.isfile(full):
            found.append(path)
            continue
        for directory, subdirectories, names in os.walk(full):
            subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
            found += [os.path.relpath(os.path.join(directory, name), root) for name in names
                      if name.endswith(_CODE_SUFFIXES)]
    return sorted(found)


def source_fingerprint(paths: tuple[str, ...], root: str = PROJECT_ROOT) -> str:
    """A hash of the names and contents of the code files under `paths` (relative to
    `root`); raises FileNotFoundError naming a path that is not there."""
    for path in paths:
        if not os.path.exists(os.path.join(root, path)):
            raise FileNotFoundError(f"no such source path: {os.path.join(root, path)}")
    digest = hashlib.sha256()
    for path in _files(paths, root):
        with open(os.path.join(root, path), "rb") as f:
            digest.update(f"{path}\0".encode() + f.read() + b"\0")
    return digest.hexdigest()[:16]
