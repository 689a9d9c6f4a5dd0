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
    """`bali kg umls --help` builds only the kg stage's parser: no torch, no transformers."""
    import subprocess
    import sys

    code = ("import sys; from bali.cli import main\n"
            "try:\n    main(['kg', 'umls', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("[]"), out[-300:]
