"""TF Serving's model layout: `<base_path>/<version>/saved_model.pb`, version a positive integer.

Shared by the REST server, the batch CLIs (which accept either a base path, whose latest
version is used, or one version's folder) and the pipeline's LatestPushedModel step. Paths
may be object-store URIs (gs://, s3://), as for TF Serving itself.
"""

from __future__ import annotations

import os

from contract.saved_model import is_saved_model


class ModelNotFoundError(Exception):
    """No servable SavedModel where the user pointed."""


def available_versions(base_path: str) -> dict[int, str]:
    """Version number → folder, for every numbered subfolder holding a SavedModel (the
    Pusher writes `saved_model.pb` last, so a version being copied is not listed)."""
    from tensorflow.io import gfile

    if not gfile.isdir(base_path):
        return {}
    names = [name.rstrip("/") for name in gfile.listdir(base_path)]  # gs:// adds a "/"
    return {int(name): os.path.join(base_path, name) for name in names
            if name.isdigit() and int(name) > 0
            and is_saved_model(os.path.join(base_path, name))}


def latest_version(base_path: str) -> str | None:
    """The folder of the newest version under `base_path`, if any."""
    versions = available_versions(base_path)
    return versions[max(versions)] if versions else None


def resolve_model_dir(path: str) -> str:
    """`path` itself if it is a SavedModel, else its latest version; ModelNotFoundError names
    the path otherwise."""
    if is_saved_model(path):
        return path
    latest = latest_version(path)
    if latest is None:
        raise ModelNotFoundError(
            f"{path} is neither a SavedModel nor a folder of numbered SavedModel versions "
            "(run `make run-local` to push one)")
    return latest
