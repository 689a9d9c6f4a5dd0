"""The experiment grid: pretraining runs, evaluation jobs, subsets, merged options."""

from __future__ import annotations

import pytest

from bali.config import ConfigError, validate_config
from bali.grid import checkpoint, eval_jobs, pretrain_options, pretrain_runs


def _config(**extra):
    config = {
        "models": {"a": "dir/a", "b": {"checkpoint": "dir/b", "pretrain": {"lr_lm": 1e-5}}},
        "variants": {"gat": {}, "lin": {"pretrain": {"graph_encoder": "linear"}, "models": ["a"]}},
        "evaluate": {"seeds": [0, 1], "benchmarks": {
            "qa": {"command": "pubmedqa"},
            "el": {"command": "el-zeroshot", "seeds": [0], "variants": ["base", "gat"]}}},
    } | extra
    return validate_config(config)


def test_runs_and_jobs():
    config = _config()
    assert pretrain_runs(config) == [("a", "gat"), ("b", "gat"), ("a", "lin")]
    jobs = eval_jobs(config)
    qa = [j for j in jobs if j[0] == "qa"]
    assert len(qa) == (2 + 3) * 2  # 2 base LMs + 3 runs, 2 seeds
    assert sorted(j[1:3] for j in jobs if j[0] == "el") == [
        ("a", "base"), ("a", "gat"), ("b", "base"), ("b", "gat")]
    assert checkpoint(config, "b") == "dir/b"


def test_only_narrows_the_grid():
    config = _config(only={"models": ["a"], "variants": ["lin"], "benchmarks": ["qa"]})
    assert pretrain_runs(config) == [("a", "lin")]
    assert eval_jobs(config) == [("qa", "a", "lin", 0), ("qa", "a", "lin", 1)]
    with pytest.raises(ConfigError, match=r"only.models: unknown \['zz'\]"):
        pretrain_runs(_config(only={"models": ["zz"]}))


def test_merged_options_are_validated():
    config = _config(pretrain={"steps": 7})
    assert pretrain_options(config, "b", "gat")["lr_lm"] == 1e-5
    opts = pretrain_options(config, "a", "lin")
    assert (opts["graph_encoder"], opts["steps"], opts["lr_lm"]) == ("linear", 7, 2e-5)
    bad = _config(variants={"x": {"pretrain": {"graph_encoder": "cnn"}}})
    with pytest.raises(ConfigError, match="pretrain options of a/x: graph_encoder"):
        pretrain_options(bad, "a", "x")
    with pytest.raises(ConfigError, match="variants.x.models: unknown"):
        pretrain_runs(_config(variants={"x": {"models": ["nope"]}}))
    with pytest.raises(ConfigError, match="evaluate.benchmarks.qa.variants"):
        eval_jobs(_config(evaluate={"benchmarks": {"qa": {"command": "c",
                                                          "variants": ["nope"]}}}))
