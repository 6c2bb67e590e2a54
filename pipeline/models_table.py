"""`python -m pipeline.models_table`: the model zoo as the Markdown table in docs/models.md,
generated from the model classes (their docstrings' first paragraph, their declared
hyperparameters and defaults), so the
documentation cannot drift from the code (a test compares them)."""

from __future__ import annotations

import inspect

from trainer_module.frame_level_models import FRAME_LEVEL_MODELS
from trainer_module.models import CLASSIFIER_HPARAM, MODELS, model_hyperparameters

HEADER = ("| model | level | what it is | hyperparameters (flag=default) |\n"
          "|---|---|---|---|\n")


def _default(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def models_table() -> str:
    """One row per registered model: its level, its docstring's first paragraph and its own
    hyperparameters (the classifier's are in the classifier's row)."""
    rows = []
    for name, model_class in MODELS.items():
        level = "frame" if name in FRAME_LEVEL_MODELS else "video"
        summary = " ".join(inspect.getdoc(model_class).split("\n\n")[0].split())
        params = model_hyperparameters(name, with_classifier=False)
        flags = ", ".join(f"`{key}`={_default(value)}" for key, value in params.items()
                          if key != CLASSIFIER_HPARAM)
        if CLASSIFIER_HPARAM in params:
            flags += (f"; then `{CLASSIFIER_HPARAM}`={params[CLASSIFIER_HPARAM]} "
                      "(its flags apply)")
        rows.append(f"| `{name}` | {level} | {summary} | {flags or '-'} |\n")
    return HEADER + "".join(rows)


if __name__ == "__main__":
    print(models_table(), end="")
