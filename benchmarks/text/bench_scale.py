"""One baseline-sized PubMed file through the text stage: read -> dictionary annotation
(1M names) -> sentences, each stage the ``bali text`` command its workflow rule runs.

    python benchmarks/text/bench_scale.py                 # 30,000 citations, 1,000,000 names
    python benchmarks/text/bench_scale.py --citations 3000 --names 100000   # a quick look

Inputs, generated once under ``--out`` (default ``benchmarks/out/scale``, git-ignored) and
reused while their parameters are the same:

- ``pubmed26n0001.xml.gz``: a PubMed baseline file (``PubmedArticleSet`` of
  ``PubmedArticle``, the elements and attributes of NLM's DTD: dates, journal, structured
  abstract, authors with affiliations, publication types, MeSH headings, article ids, some
  reference lists) of ``--citations`` citations with distinct ascending PMIDs. Titles and
  abstracts are the real ones of ``../shared/data/bern2/pubmed_abstracts_1k.jsonl``, drawn in
  shuffled order (each about 30 times for 30k); the other fields are generated.
- ``kg/``: the four KG tables (``bali.kg.schema.write_kg``) of ``--names`` names, about 3
  per concept: the word 1-3-grams seen at least 3 times in those abstracts (so that the
  annotation finds mentions, as a UMLS-scale dictionary does in real text) and, for the
  rest, the generated multi-word names of ``bench_dictionary.py``.

Each stage runs as ``python -m bali text ...`` in its own process, as its Snakemake job
does (interpreter start and imports included), pinned to at most 2 CPUs; wall and CPU
seconds and peak RSS come from ``os.wait4``. The annotation's dictionary build and matching
times come from its report and its progress log line. Prints the stage table, then what
1,200 such files cost on N cluster jobs, and appends the result to
``benchmarks/out/scale_results.jsonl``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import polars as pl
from bench_dictionary import make_names  # same folder; it puts benchlib on the path
from benchlib import ABSTRACTS, OUT, ROOT

from bali.kg.schema import write_kg
from bali.text.dictionary import STOP_NAMES

FILES = 1200  # PubMed baseline files (pubmed26n0001 .. n1200 or so)
JOBS = (1, 16, 64, 256)
THREADS = {"read": 1, "annotate": 2, "sentences": 1}  # workflow/rules/text.smk

SURNAMES = ("Smith Wang Li Zhang Müller García Kim Nguyen Rossi Kowalski Silva Ivanov "
            "Tanaka Brown Johnson O'Brien Dubois Andersson Novak Cohen Patel Singh Costa "
            "Yamamoto Schmidt Fischer Martínez López Hansen Jensen").split()
FORENAMES = "Anna Paul J Mark Eric Maria Wei Hiroshi Olga Carlos Sara Ahmed Lucía Jan".split()
CITIES = ("Boston", "Heidelberg", "Shanghai", "Toronto", "Lyon", "Uppsala", "Osaka", "Madrid",
          "Cape Town", "Seoul")
MESH = [("D006801", "Humans"), ("D008297", "Male"), ("D005260", "Female"),
        ("D000328", "Adult"), ("D008875", "Middle Aged"), ("D000368", "Aged"),
        ("D015331", "Cohort Studies"), ("D012189", "Retrospective Studies"),
        ("D016896", "Treatment Outcome"), ("D001249", "Asthma"), ("D003924", "Diabetes "
        "Mellitus, Type 2"), ("D009369", "Neoplasms"), ("D006973", "Hypertension"),
        ("D051379", "Mice"), ("D017207", "Rats, Sprague-Dawley"), ("D002478", "Cells, "
        "Cultured"), ("D015398", "Signal Transduction"), ("D009154", "Mutation"),
        ("D020133", "Reverse Transcriptase Polymerase Chain Reaction"),
        ("D011446", "Prospective Studies")]
QUALIFIERS = [("Q000175", "diagnosis"), ("Q000188", "drug therapy"), ("Q000235", "genetics"),
              ("Q000378", "metabolism"), ("Q000473", "pathology"), ("Q000453", "epidemiology")]
PUBTYPES = [("D016428", "Journal Article"), ("D013485", "Research Support, Non-U.S. Gov't"),
            ("D016449", "Randomized Controlled Trial"), ("D016454", "Review"),
            ("D003160", "Comparative Study")]
JOURNALS = [("0028-4793", "The New England journal of medicine", "N Engl J Med", "0255562"),
            ("0031-4005", "Pediatrics", "Pediatrics", "0376422"),
            ("1932-6203", "PloS one", "PLoS One", "101285081"),
            ("0027-8424", "Proceedings of the National Academy of Sciences of the United "
             "States of America", "Proc Natl Acad Sci U S A", "7505876"),
            ("0021-9258", "The Journal of biological chemistry", "J Biol Chem", "2985121R")]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
LABELS = ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")


def _date(tag: str, rng, year: int, indent: str) -> str:
    return (f"{indent}<{tag}>\n{indent}  <Year>{year}</Year>\n{indent}  <Month>"
            f"{rng.integers(1, 13):02d}</Month>\n{indent}  <Day>{rng.integers(1, 29):02d}</Day>\n"
            f"{indent}</{tag}>\n")


def _abstract(text: str, rng) -> str:
    """One AbstractText, or four labelled ones (a structured abstract) for a third."""
    sentences = re.split(r"(?<=[.!?]) (?=[A-Z])", text)
    if rng.random() < 1 / 3 and len(sentences) >= 4:
        cuts = np.linspace(0, len(sentences), 5).astype(int)
        parts = [(label, " ".join(sentences[a:b]))
                 for label, a, b in zip(LABELS, cuts[:-1], cuts[1:], strict=True)]
        return "".join(f'        <AbstractText Label="{label}" NlmCategory="{label}">'
                       f"{escape(part)}</AbstractText>\n" for label, part in parts)
    return f"        <AbstractText>{escape(text)}</AbstractText>\n"


def _article(pmid: int, title: str, abstract: str, rng) -> str:
    """One ``PubmedArticle`` element, shaped as in a baseline file."""
    year = int(rng.integers(1995, 2025))
    issn, journal, iso, nlm_id = JOURNALS[rng.integers(len(JOURNALS))]
    doi = f"10.{rng.integers(1000, 9999)}/j.{rng.integers(10**6, 10**7)}"
    out = [f'  <PubmedArticle>\n    <MedlineCitation Status="MEDLINE" Owner="NLM" '
           f'IndexingMethod="Automated">\n      <PMID Version="1">{pmid}</PMID>\n',
           _date("DateCompleted", rng, year + 1, "      "),
           _date("DateRevised", rng, 2024, "      "),
           f'      <Article PubModel="Print-Electronic">\n        <Journal>\n'
           f'          <ISSN IssnType="Electronic">{issn}</ISSN>\n'
           f'          <JournalIssue CitedMedium="Internet">\n'
           f"            <Volume>{rng.integers(1, 400)}</Volume>\n"
           f"            <Issue>{rng.integers(1, 24)}</Issue>\n"
           f"            <PubDate>\n              <Year>{year}</Year>\n"
           f"              <Month>{MONTHS[rng.integers(12)]}</Month>\n            </PubDate>\n"
           f"          </JournalIssue>\n          <Title>{escape(journal)}</Title>\n"
           f"          <ISOAbbreviation>{escape(iso)}</ISOAbbreviation>\n        </Journal>\n"
           f"        <ArticleTitle>{escape(title)}</ArticleTitle>\n"
           f"        <Pagination>\n          <StartPage>{rng.integers(1, 2000)}</StartPage>\n"
           f"          <MedlinePgn>{rng.integers(1, 2000)}-{rng.integers(1, 99)}</MedlinePgn>\n"
           f"        </Pagination>\n"
           f'        <ELocationID EIdType="doi" ValidYN="Y">{doi}</ELocationID>\n']
    if abstract:
        out.append(f"        <Abstract>\n{_abstract(abstract, rng)}        </Abstract>\n")
    out.append('        <AuthorList CompleteYN="Y">\n')
    for _ in range(rng.integers(1, 9)):
        last, fore = SURNAMES[rng.integers(len(SURNAMES))], FORENAMES[rng.integers(len(FORENAMES))]
        out.append(f'          <Author ValidYN="Y">\n            <LastName>{escape(last)}'
                   f"</LastName>\n            <ForeName>{fore}</ForeName>\n"
                   f"            <Initials>{fore[0]}</Initials>\n            <AffiliationInfo>\n"
                   f"              <Affiliation>Department of Medicine, University Hospital of "
                   f"{CITIES[rng.integers(len(CITIES))]}, {rng.integers(10000, 99999)}."
                   f"</Affiliation>\n            </AffiliationInfo>\n          </Author>\n")
    out.append("        </AuthorList>\n        <Language>eng</Language>\n"
               "        <PublicationTypeList>\n")
    for ui, name in [PUBTYPES[i] for i in sorted(set(rng.integers(0, len(PUBTYPES), 2)))]:
        out.append(f'          <PublicationType UI="{ui}">{escape(name)}</PublicationType>\n')
    out.append(f"        </PublicationTypeList>\n"
               f"        <ArticleDate DateType=\"Electronic\">\n          <Year>{year}</Year>\n"
               f"          <Month>01</Month>\n          <Day>15</Day>\n        </ArticleDate>\n"
               f"      </Article>\n      <MedlineJournalInfo>\n"
               f"        <Country>United States</Country>\n        <MedlineTA>{escape(iso)}"
               f"</MedlineTA>\n        <NlmUniqueID>{nlm_id}</NlmUniqueID>\n"
               f"        <ISSNLinking>{issn}</ISSNLinking>\n      </MedlineJournalInfo>\n"
               f"      <CitationSubset>IM</CitationSubset>\n      <MeshHeadingList>\n")
    for i in sorted(set(rng.integers(0, len(MESH), rng.integers(4, 14)).tolist())):
        ui, name = MESH[i]
        out.append(f"        <MeshHeading>\n          <DescriptorName UI={quoteattr(ui)} "
                   f'MajorTopicYN="N">{escape(name)}</DescriptorName>\n')
        if rng.random() < 0.4:
            qui, qname = QUALIFIERS[rng.integers(len(QUALIFIERS))]
            out.append(f'          <QualifierName UI="{qui}" MajorTopicYN="Y">{qname}'
                       "</QualifierName>\n")
        out.append("        </MeshHeading>\n")
    out.append("      </MeshHeadingList>\n    </MedlineCitation>\n    <PubmedData>\n"
               "      <History>\n")
    for status in ("received", "accepted", "pubmed", "medline", "entrez"):
        out.append(f'        <PubMedPubDate PubStatus="{status}">\n          <Year>{year}</Year>\n'
                   f"          <Month>{rng.integers(1, 13)}</Month>\n"
                   f"          <Day>{rng.integers(1, 29)}</Day>\n        </PubMedPubDate>\n")
    out.append(f"      </History>\n      <PublicationStatus>ppublish</PublicationStatus>\n"
               f'      <ArticleIdList>\n        <ArticleId IdType="pubmed">{pmid}</ArticleId>\n'
               f'        <ArticleId IdType="doi">{doi}</ArticleId>\n      </ArticleIdList>\n')
    if rng.random() < 0.4:  # newer records carry their reference list
        out.append("      <ReferenceList>\n")
        for _ in range(rng.integers(5, 40)):
            ref = int(rng.integers(10**6, 4 * 10**7))
            out.append(f"        <Reference>\n          <Citation>{SURNAMES[ref % 30]} X, et al. "
                       f"{escape(JOURNALS[ref % 5][2])}. {1990 + ref % 30};{ref % 300}:"
                       f"{ref % 999}-{ref % 99}.</Citation>\n          <ArticleIdList>\n"
                       f'            <ArticleId IdType="pubmed">{ref}</ArticleId>\n'
                       f"          </ArticleIdList>\n        </Reference>\n")
        out.append("      </ReferenceList>\n")
    out.append("    </PubmedData>\n  </PubmedArticle>\n")
    return "".join(out)


def real_abstracts() -> list[dict]:
    """The ``{pmid, title, abstract}`` records of the 1k real abstracts."""
    with open(ABSTRACTS, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def make_pubmed(path: Path, citations: int, seed: int) -> dict:
    """The baseline file: ``citations`` articles, real titles/abstracts in shuffled order."""
    records = real_abstracts()
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(records))
                            for _ in range(math.ceil(citations / len(records)))])[:citations]
    first = 30_000_001
    size = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as fh:
        head = ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE PubmedArticleSet PUBLIC '
                '"-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
                '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
                "<PubmedArticleSet>\n")
        fh.write(head)
        size += len(head.encode())
        for k, i in enumerate(order.tolist()):
            rec = records[i]
            xml = _article(first + k, rec.get("title") or "", rec.get("abstract") or "", rng)
            fh.write(xml)
            size += len(xml.encode())
        fh.write("</PubmedArticleSet>\n")
    return {"citations": citations, "xml_mb": round(size / 1e6, 1),
            "xml_gz_mb": round(path.stat().st_size / 1e6, 1)}


def corpus_ngrams(limit: int) -> list[str]:
    """Word 1-3-grams seen at least 3 times in the real abstracts (no stop name, no pure
    number), most frequent first."""
    stop = {s.lower() for s in STOP_NAMES}
    counts: collections.Counter = collections.Counter()
    for rec in real_abstracts():
        for sentence in re.split(r"[.;:()\[\]]", f"{rec.get('title')} {rec.get('abstract')}"):
            words = re.findall(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]", sentence.lower())
            for n in (1, 2, 3):
                for j in range(len(words) - n + 1):
                    gram = words[j:j + n]
                    if gram[0] not in stop and gram[-1] not in stop and len(gram[-1]) > 2:
                        counts[" ".join(gram)] += 1
    return [g for g, c in counts.most_common() if c >= 3 and g not in stop][:limit]


def make_kg(kg_dir: Path, n_names: int, seed: int) -> dict:
    """KG tables of ``n_names`` names: the corpus n-grams, then generated names."""
    real = corpus_ngrams(n_names // 2)
    generated = make_names(n_names, seed)["name"]
    generated = generated.filter(~generated.is_in(real)).head(n_names - len(real))
    names = pl.DataFrame({"name": real + generated.to_list(),
                          "source": ["CORPUS"] * len(real) + ["GEN"] * generated.len()})
    rng = np.random.default_rng(seed)
    names = names.with_columns(  # shuffled over concepts, ~3 names each
        cui=pl.Series([f"C{i // 3:07d}" for i in rng.permutation(names.height)]))
    names = names.sort("cui", "name").with_columns(
        is_preferred=pl.col("cui").is_first_distinct(),
        term_type=pl.when(pl.col("cui").is_first_distinct()).then(pl.lit("PT"))
        .otherwise(pl.lit("SY")))
    concepts = names.filter("is_preferred").select(
        "cui", preferred_name="name",
        semantic_types=pl.concat_list(pl.lit("T047")))
    xrefs = concepts.select(source=pl.lit("MSH"), code=pl.format("D{}", pl.col("cui").str.slice(1)),
                            cui="cui")
    edges = pl.DataFrame(schema={"head": pl.String, "relation": pl.String,
                                 "relation_attr": pl.String, "tail": pl.String,
                                 "source": pl.String})
    kg_dir.mkdir(parents=True, exist_ok=True)
    write_kg({"concepts": concepts, "names": names, "edges": edges, "xrefs": xrefs}, kg_dir)
    return {"names": names.height, "corpus_names": len(real), "concepts": concepts.height}


def run_stage(argv: list[str], log: Path) -> dict:
    """Run ``python -m bali ARGV``; wall, user+sys CPU seconds and peak RSS of the process."""
    env = os.environ | {"BALI_PROGRESS": "0"}
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bali", *argv], stdout=subprocess.PIPE,
                                stderr=err, env=env, cwd=ROOT)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"bali {' '.join(argv)} failed ({proc.returncode}); see {log}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "rss_mb": round(usage.ru_maxrss / 1024), "stdout": json.loads(out or b"{}")}


def fmt_hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citations", type=int, default=30_000)
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT / "scale")
    parser.add_argument("--json", type=Path, default=OUT / "scale_results.jsonl")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, cpus)  # at most 2 CPUs, inherited by the stages
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    xml, kg = out / "pubmed26n0001.xml.gz", out / "kg"
    stamp = {"citations": args.citations, "names": args.names, "seed": args.seed, "v": 1}
    stamp_path = out / "inputs.json"
    t0 = time.perf_counter()
    made = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    if made.get("stamp") != stamp or not xml.exists() or not (kg / "names.parquet").exists():
        made = {"stamp": stamp, "pubmed": make_pubmed(xml, args.citations, args.seed),
                "kg": make_kg(kg, args.names, args.seed)}
        stamp_path.write_text(json.dumps(made))
    gen_s = time.perf_counter() - t0
    print(f"inputs ({gen_s:.0f} s to generate or check): {made['pubmed']} {made['kg']}",
          file=sys.stderr)

    load_before = os.getloadavg()
    docs, mentions, sentences = out / "documents.parquet", out / "mentions.parquet", \
        out / "sentences.parquet"
    read = run_stage(["text", "read", "--input", str(xml), "--format", "auto", "--out",
                      str(docs), "--deleted-out", str(out / "deleted_pmids.txt")],
                     out / "read.log")
    annotate = run_stage(["text", "annotate", "--annotator", "dictionary", "--documents",
                          str(docs), "--kg-dir", str(kg), "--out", str(mentions),
                          "--report", str(out / "annotate.json")], out / "annotate.log")
    split = run_stage(["text", "sentences", "--documents", str(docs), "--mentions",
                       str(mentions), "--out", str(sentences), "--stats",
                       str(out / "sentences.json")], out / "sentences.log")
    load_after = os.getloadavg()

    text_mb = pl.read_parquet(docs, columns=["text"])["text"].str.len_bytes().sum() / 1e6
    n_docs = read["stdout"]["documents"]
    report = json.loads((out / "annotate.json").read_text())
    build_s = report["annotator_report"]["build_seconds"]
    line = re.search(r"annotate: [\d,]+ doc in ([\d.]+) s", (out / "annotate.log").read_text())
    match_s = float(line.group(1)) if line else float("nan")
    n_mentions = annotate["stdout"]["mentions"]
    n_sentences = split["stdout"]["sentences"]
    rows = [
        ("read (`bali text read`, PubMed XML.gz -> documents)", read,
         f"{n_docs / read['wall_s']:,.0f} docs/s, {made['pubmed']['xml_mb'] / read['wall_s']:.1f}"
         " MB/s of XML", f"{n_docs:,} documents, {text_mb:.1f} MB text"),
        ("annotate (`bali text annotate --annotator dictionary`)", annotate,
         f"{n_docs / annotate['wall_s']:,.0f} docs/s", f"{n_mentions:,} mentions"),
        ("  of which: dictionary build (1M names -> automaton)", {"wall_s": build_s},
         f"{report['annotator_report']['names'] / build_s:,.0f} names/s",
         f"{report['annotator_report']['names']:,} names"),
        ("  of which: matching (`annotate_dictionary`)", {"wall_s": match_s},
         f"{text_mb / match_s:.1f} MB/s, {n_docs / match_s:,.0f} docs/s", ""),
        ("sentences (`bali text sentences`)", split,
         f"{n_docs / split['wall_s']:,.0f} docs/s, {text_mb / split['wall_s']:.1f} MB/s",
         f"{n_sentences:,} sentences, {split['stdout']['mentions_kept']:,} mentions kept"),
    ]
    stages = (read, annotate, split)
    per_file = sum(s["wall_s"] for s in stages)
    per_file_cpu = sum(s["cpu_s"] for s in stages)
    allocated = sum(s["wall_s"] * THREADS[k] for k, s in zip(THREADS, stages, strict=True))
    print(f"\nmachine: {os.cpu_count()} CPUs, pinned to {len(cpus)}; load average before "
          f"{[round(x, 2) for x in load_before]}, after {[round(x, 2) for x in load_after]}\n")
    print("| stage | wall s | CPU s | peak RSS MB | rate | output |")
    print("|---|---|---|---|---|---|")
    for name, st, rate, count in rows:
        cpu = st.get("cpu_s", "")
        rss = st.get("rss_mb", "")
        print(f"| {name} | {st['wall_s']:.1f} | {cpu} | {rss} | {rate} | {count} |")
    print(f"| **one file, read -> annotate -> sentences** | **{per_file:.1f}** | "
          f"{per_file_cpu:.1f} | | | |")
    print(f"\n{FILES:,} files at {per_file:.1f} s per file ({per_file_cpu:.1f} CPU s; "
          f"{allocated:.1f} core-seconds allocated at the rules' threads "
          f"{THREADS}):\n")
    print("| jobs N | files per job | wall time | CPU-hours | core-hours allocated |")
    print("|---|---|---|---|---|")
    cost = []
    for n in JOBS:
        per_job = math.ceil(FILES / n)
        wall = per_job * per_file
        cost.append({"jobs": n, "files_per_job": per_job, "wall_s": round(wall),
                     "cpu_hours": round(FILES * per_file_cpu / 3600, 2),
                     "allocated_core_hours": round(FILES * allocated / 3600, 2)})
        print(f"| {n} | {per_job} | {fmt_hours(wall)} | {FILES * per_file_cpu / 3600:.1f} | "
              f"{FILES * allocated / 3600:.1f} |")
    result = {"date": time.strftime("%Y-%m-%d"), "inputs": made, "text_mb": round(text_mb, 1),
              "cpus": os.cpu_count(), "pinned": len(cpus),
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in load_after],
              "stages": {k: {kk: vv for kk, vv in s.items() if kk != "stdout"} | s["stdout"]
                         for k, s in zip(THREADS, stages, strict=True)},
              "build_s": build_s, "match_s": match_s, "per_file_s": round(per_file, 2),
              "per_file_cpu_s": round(per_file_cpu, 2), "cost": cost}
    with open(args.json, "a") as fh:
        fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
