"""TF Serving's model layout: `<base_path>/<version>/saved_model.pb`, version a positive integer.

Shared by the REST server and the batch CLIs, which accept either a base path (the latest
version is used) or one version's folder.
"""

from __future__ import annotations

import os


class ModelNotFoundError(Exception):
    """No servable SavedModel where the user pointed."""


def is_saved_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def available_versions(base_path: str) -> dict[int, str]:
    """Version number → folder, for every numbered subfolder holding a SavedModel."""
    if not os.path.isdir(base_path):
        return {}
    return {int(name): os.path.join(base_path, name) for name in os.listdir(base_path)
            if name.isdigit() and int(name) > 0
            and is_saved_model(os.path.join(base_path, name))}


def resolve_model_dir(path: str) -> str:
    """`path` itself if it is a SavedModel, else its latest version; ModelNotFoundError names
    the path otherwise."""
    if is_saved_model(path):
        return path
    versions = available_versions(path)
    if not versions:
        raise ModelNotFoundError(
            f"{path} is neither a SavedModel nor a folder of numbered SavedModel versions "
            "(run `make run-local` to push one)")
    return versions[max(versions)]
