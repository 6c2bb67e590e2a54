"""How a setting is declared, once: as a field of a frozen dataclass with its default, help,
range check and the Tuner's choices. `TrainingConfig` declares the training flags this way and
each model its hyperparameters (`video_level_models.py`, `frame_level_models.py`, beside the
model); the flags, their help, the range checks and the Tuner's search space read the fields.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

# The types a flag can have; anything else is refused when the dataclass is declared.
FLAG_TYPES = (bool, int, float, str)


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


def not_negative(value) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def fraction(value) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def weight(value) -> str | None:
    return None if 0 <= value <= 1 else "must be in [0, 1]"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


def setting(default: Any = dataclasses.MISSING, help: str = "",
            check: Callable[[Any], str | None] | None = None, search: tuple = (),
            flag: bool = True, default_factory: Any = dataclasses.MISSING) -> Any:
    """A declared field: its default, command-line help, `check` (what is wrong with a value,
    or None), `search` (the Tuner's choices; empty: not searched); `flag=False` fields get no
    generated flag."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help, "check": check, "search": tuple(search),
                                       "flag": flag})


def redefault(owner: type, name: str, default: Any) -> Any:
    """`owner`'s field `name` (its help, check and search) with another default: for a model
    that takes a hyperparameter of another with a default of its own."""
    field = owner.__dataclass_fields__[name]
    return dataclasses.field(default=default, metadata=field.metadata)


def field_types(cls: type) -> dict[str, type]:
    """Each field's type, as the dataclass `cls` annotates it."""
    return typing.get_type_hints(cls)


def check_values(settings: Any) -> None:
    """Raises ValueError naming the flag of the first field of `settings` that its check
    refuses."""
    for field in dataclasses.fields(settings):
        check = field.metadata.get("check")
        value = getattr(settings, field.name)
        problem = check(value) if check else None
        if problem:
            raise ValueError(f"--{field.name} {problem}, got {value}")


class Hyperparameters:
    """Base of a model's hyperparameter dataclass (declared with `@hyperparameters`)."""

    def __post_init__(self):
        check_values(self)

    @classmethod
    def of(cls, values: Mapping[str, Any]):
        """The hyperparameters of `cls` in `values` (others ignored), each checked against
        its type (an int is taken for a float) and range; raises ValueError naming the flag."""
        types = field_types(cls)
        chosen = {}
        for field in dataclasses.fields(cls):
            if field.name not in values:
                continue
            value, kind = values[field.name], types[field.name]
            if kind is float and type(value) is int:
                value = float(value)
            if type(value) is not kind:
                raise ValueError(f"--{field.name} must be {kind.__name__}, got {value!r}")
            chosen[field.name] = value
        return cls(**chosen)


def hyperparameters(cls: type) -> type:
    """Declares `cls` (a `Hyperparameters` subclass) as a model's hyperparameters: a frozen,
    keyword-only dataclass whose every field is a flag of one of FLAG_TYPES, declared with
    `setting` and help; raises TypeError naming the field otherwise."""
    cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
    for name, kind in field_types(cls).items():
        field = cls.__dataclass_fields__[name]
        if kind not in FLAG_TYPES:
            raise TypeError(f"{cls.__name__}.{name}: a hyperparameter is one of "
                            f"{', '.join(t.__name__ for t in FLAG_TYPES)}, not {kind}")
        if not field.metadata.get("help"):
            raise TypeError(f"{cls.__name__}.{name}: declare it with setting(default, help)")
    return cls
