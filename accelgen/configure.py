"""A block's configuration from the command line's ``--config`` file and ``--set`` values.

The preset of every block is its config class's defaults (``accelgen/params/``), defined
once; a YAML file and ``--set key=value`` override them, and the result is validated.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from accelgen.params.base import ConfigError, build_config
from accelgen.registry import Block

__all__ = ["UsageError", "load_config"]


class UsageError(ConfigError):
    """Bad command-line input; exit code 2."""


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not UTF-8 text; expected a YAML mapping "
                         "of parameter: value") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UsageError(f"--config {path}: malformed YAML{line}; expected a mapping "
                         "of parameter: value") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: top level is {type(data).__name__}; "
                         "expected a mapping of parameter: value")
    return data


def _parse_sets(sets: list[str]) -> dict:
    values = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected key=value")
        values[key.strip()] = value.strip()
    return values


def load_config(block: Block, config: str | None, sets: list[str]):
    """The block's preset (its config class's defaults) < ``--config`` file < ``--set``
    values, validated."""
    values = {}
    if config:
        values.update(_read_yaml(Path(config)))
    values.update(_parse_sets(sets))
    return build_config(block.config, values)
