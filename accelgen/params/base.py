"""Validated block parameters: one declaration gives type, default, range and meaning.

A block's config is a frozen dataclass whose fields are declared with :func:`param`.
:func:`build_config` turns user text (YAML values, ``--set key=value`` strings) into a
config, raising :class:`ConfigError` with one line that names the field and the allowed
values. This module imports no Amaranth, so ``golden/`` may use the configs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """Bad user input: the message is one line naming the field and what is allowed."""


@dataclass(frozen=True)
class ParamSpec:
    """What one parameter accepts: ``kind`` is int, bool or str."""

    kind: type
    doc: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] | None = None
    power_of_two: bool = False

    def allowed(self) -> str:
        """The allowed values, as shown in errors and ``accelgen list``."""
        if self.kind is bool:
            return "true or false"
        if self.choices is not None:
            return " | ".join(self.choices)
        text = f"integer {self.lo}..{self.hi}"
        return text + (", a power of two" if self.power_of_two else "")

    def coerce(self, name: str, value: Any) -> Any:
        """Convert ``value`` (from YAML or a ``--set`` string) and check its range."""
        if self.kind is bool:
            value = _as_bool(name, value, self)
        elif self.kind is int:
            value = _as_int(name, value, self)
            if not self.lo <= value <= self.hi or (
                self.power_of_two and value & (value - 1)
            ):
                raise ConfigError(f"{name}: {value} is out of range; allowed: {self.allowed()}")
        else:
            value = str(value)
            if value not in self.choices:
                raise ConfigError(f"{name}: {value!r} is not allowed; allowed: {self.allowed()}")
        return value


def _as_bool(name: str, value: Any, spec: ParamSpec) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ConfigError(f"{name}: {value!r} is not a boolean; allowed: {spec.allowed()}")


def _as_int(name: str, value: Any, spec: ParamSpec) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not an integer; allowed: {spec.allowed()}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ConfigError(f"{name}: {value!r} is not an integer; allowed: {spec.allowed()}")


def param(default: Any, doc: str, *, lo: int | None = None, hi: int | None = None,
          choices: tuple[str, ...] | None = None, power_of_two: bool = False) -> Any:
    """Declare a config field with its default, meaning and allowed range."""
    kind = type(default)
    spec = ParamSpec(kind=kind, doc=doc, lo=lo, hi=hi, choices=choices,
                     power_of_two=power_of_two)
    return field(default=default, metadata={"spec": spec})


def specs(config_cls: type) -> dict[str, ParamSpec]:
    """Field name → spec, in declaration order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(config_cls)}


def validate(config: Any) -> None:
    """Check every field of a constructed config; used by ``__post_init__``."""
    for name, spec in specs(type(config)).items():
        spec.coerce(name, getattr(config, name))
        if spec.kind is int and isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name}: bool is not an integer; allowed: {spec.allowed()}")


def build_config(config_cls: type, values: dict[str, Any]) -> Any:
    """A config from raw values; unknown names and bad values raise ConfigError."""
    known = specs(config_cls)
    clean = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"{name}: unknown parameter; allowed: {', '.join(known)}")
        clean[name] = known[name].coerce(name, value)
    return config_cls(**clean)


def as_dict(config: Any) -> dict[str, Any]:
    """The config's parameters as a plain dict (manifest, report, cache keys)."""
    return dataclasses.asdict(config)


__all__ = ["ConfigError", "ParamSpec", "param", "specs", "validate", "build_config",
           "as_dict", "dataclass"]
