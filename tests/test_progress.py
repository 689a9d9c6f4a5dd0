"""bali.progress: one summary line in the log; a bar only when interactive."""

import logging

from bali.progress import Progress, interactive


def test_summary_line_counts_the_work(caplog, capsys, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "0")
    with (caplog.at_level(logging.INFO, logger="bali"),
          Progress("annotate", total=3, unit="doc") as bar):
        for _ in range(3):
            bar.update(1)
        bar.set_postfix("mentions 7")
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("annotate: 3 doc in ") and line.endswith("doc/s), mentions 7")
    assert capsys.readouterr().err == ""  # no bar drawn when not interactive


def test_bar_is_drawn_when_forced(capsys, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "1")
    assert interactive()
    with Progress("tokenize", total=2, unit="sent") as bar:
        bar.update(2)
    assert "tokenize" in capsys.readouterr().err


def test_no_summary_on_error(caplog, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="bali"):
        try:
            with Progress("sample") as bar:
                bar.update(1)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert not caplog.records


def test_total_known_later_and_small_rates(caplog, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "1")
    with caplog.at_level(logging.INFO, logger="bali"), Progress("kg obo", unit="file") as bar:
        bar.set_total(3)
        assert bar._bar.total == 3
        bar.update(3)
        bar._t0 -= 20  # as if the three files took 20 s
    (line,) = [r.getMessage() for r in caplog.records]
    assert "(0.15 file/s)" in line
