"""Run configuration: JSON-schema validation with defaults, and the config -> CLI bridge.

The workflow's config (``config/*.yaml``) is validated against ``bali/config.schema.yaml``
(package data, so an installed wheel validates too): unknown keys and wrong types fail with
one line naming the key path; missing keys get the schema's defaults. Stage options are typed
dataclasses whose field names equal the config keys and the CLI flags
(``sab_include`` <-> ``--sab-include``), so a rule passes ``cli_flags(config[...])`` to
``bali`` and the CLI rebuilds the dataclass with :func:`options_from_args`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import shlex
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from bali.errors import ConfigError

T = TypeVar("T")
DEFAULT_SCHEMA = Path(__file__).with_name("config.schema.yaml")  # package data


def _defaults_validator(cls: type) -> type:
    """A jsonschema validator class that fills ``default`` values before validating."""
    import jsonschema

    validate_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


@functools.cache
def _read_schema(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def load_schema(path: str | Path = DEFAULT_SCHEMA) -> dict:
    """The config schema at ``path`` (read once per process; callers must not mutate it)."""
    return _read_schema(Path(path).resolve())


def validate_config(
    config: dict, schema_path: str | Path = DEFAULT_SCHEMA, source: str = "config"
) -> dict:
    """Validate ``config`` in place, filling defaults; raise ConfigError on the first error."""
    import jsonschema

    schema = load_schema(schema_path)
    cls = _defaults_validator(jsonschema.validators.validator_for(schema))
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise ConfigError(f"{source}: {where}: {error.message}")
    return config


def load_config(path: str | Path, schema_path: str | Path = DEFAULT_SCHEMA) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    import yaml

    p = Path(path)
    try:
        config = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{p}: {str(err).splitlines()[0]}") from err
    return validate_config(config, schema_path, source=str(p))


def cli_flags(options: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``{"sab_include": ["MSH"], "keep_suppressed": False}`` ->
    ``"--sab-include MSH --no-keep-suppressed"`` (shell-quoted; nested mappings and None
    skipped; an empty list is passed as a bare flag, meaning "none")."""
    parts: list[str] = []
    for key, value in options.items():
        if key in skip or value is None or isinstance(value, Mapping):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list | tuple):
            parts.append(" ".join([flag, *(shlex.quote(str(v)) for v in value)]))
        else:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(parts)


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    return typing.get_type_hints(cls)[f.name]


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per field of dataclass ``cls`` (bool -> --x/--no-x, tuple -> nargs='*';
    metadata ``help`` and ``choices``)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        hint = _field_type(cls, f)
        doc = f.metadata.get("help", "")
        default = f.default
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=doc)
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(flag, nargs="*", default=list(default), metavar="X",
                                help=f"{doc} (default: {' '.join(default) or 'none'})")
        else:
            base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            parser.add_argument(flag, type=base, default=default,
                                choices=f.metadata.get("choices"),
                                help=f"{doc} (default: {default})")


def options_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build dataclass ``cls`` from the flags added by :func:`add_options`."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
