"""Sentence splitting: a probe set per rule of ``bali.text.sentences``, and linear time.

Each probe is a text and its expected sentences; the five groups are the error types the
splitter once made (case of abbreviations, lower-case sentence starts, single capitals,
``et al.``/``i.v.``, dotted initialisms), each with the cases that must still not split.
"""

from __future__ import annotations

import time

import pytest

from bali.text.sentences import sentence_spans


def _split(text: str, title_length: int = 0) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text, title_length)]


def _probe(*cases):
    return pytest.mark.parametrize(("text", "expected"), cases, ids=[c[0][:40] for c in cases])


@_probe(
    ("Patients with MS. The disease progressed.",
     ["Patients with MS.", "The disease progressed."]),
    ("It was seen in the ED. The findings were clear.",
     ["It was seen in the ED.", "The findings were clear."]),
    ("Respiration is inhibited by NO. We propose a model.",
     ["Respiration is inhibited by NO.", "We propose a model."]),
    ("Neurons expressed NOS. In the plexus they did not.",
     ["Neurons expressed NOS.", "In the plexus they did not."]),
    ("Heated at 70 degrees C for 25 min. Thermal inactivation followed.",
     ["Heated at 70 degrees C for 25 min.", "Thermal inactivation followed."]),
    ("Cells were washed for 10 min. After fixation they were stained.",
     ["Cells were washed for 10 min.", "After fixation they were stained."]),
    ("The pulse lasted 60 ms. Macrophotographic imaging followed.",
     ["The pulse lasted 60 ms.", "Macrophotographic imaging followed."]),
    # still abbreviations
    ("Cells were kept for 10 min. at room temperature.",
     ["Cells were kept for 10 min. at room temperature."]),
    ("It lasted 5 min. (Fig. 2) in all.", ["It lasted 5 min. (Fig. 2) in all."]),
    ("Ms. Smith was treated by Dr. Jones.", ["Ms. Smith was treated by Dr. Jones."]),
    ("Report No. 130 and no. 5 were read.", ["Report No. 130 and no. 5 were read."]),
    ("Supplied by Sigma Co. Ltd. in bulk.", ["Supplied by Sigma Co. Ltd. in bulk."]),
)
def test_abbreviation_case(text, expected):
    assert _split(text) == expected


@_probe(
    ("Sections were stained. c-Fos immunoreactivity rose.",
     ["Sections were stained.", "c-Fos immunoreactivity rose."]),
    ("Cells were studied. p53 levels fell.", ["Cells were studied.", "p53 levels fell."]),
    ("Samples were lysed. mRNA was extracted.", ["Samples were lysed.", "mRNA was extracted."]),
    ("No adducts were seen. d(GGC) repeats were cut.",
     ["No adducts were seen.", "d(GGC) repeats were cut."]),
    # a plain lower-case word does not start a sentence, nor a token after an abbreviation
    ("It was 230 mg. of protein per day.", ["It was 230 mg. of protein per day."]),
    ("Markers, e.g. mRNA levels, rose.", ["Markers, e.g. mRNA levels, rose."]),
    ("Growth of E. coli. cDNA was made.", ["Growth of E. coli.", "cDNA was made."]),
)
def test_lower_case_sentence_start(text, expected):
    assert _split(text) == expected


@_probe(
    ("Foods were fortified with vitamin D. We measured levels.",
     ["Foods were fortified with vitamin D.", "We measured levels."]),
    ("Responses were lower in group A. Ethanol had no effect.",
     ["Responses were lower in group A.", "Ethanol had no effect."]),
    ("Cells grew at 37 degrees C. The pH was 7.", ["Cells grew at 37 degrees C.", "The pH was 7."]),
    ("Power was above 45 W. Mean follow-up was long.",
     ["Power was above 45 W.", "Mean follow-up was long."]),
    ("It binds D. The others do not.", ["It binds D.", "The others do not."]),
    # initials
    ("Growth of E. coli was high.", ["Growth of E. coli was high."]),
    ("As defined by H. Selye in 1936.", ["As defined by H. Selye in 1936."]),
    ("Strains came from Keith H. Steinkraus. Factors were studied.",
     ["Strains came from Keith H. Steinkraus.", "Factors were studied."]),
    ("We examine J. A. Lake's hypothesis.", ["We examine J. A. Lake's hypothesis."]),
    ("In an article (J. Breuer and S. Freud, 1895) it was shown.",
     ["In an article (J. Breuer and S. Freud, 1895) it was shown."]),
    ("We thank Dr. L. Aloe for help.", ["We thank Dr. L. Aloe for help."]),
    ("Levels were high in spores. I. Effect of ions.",
     ["Levels were high in spores.", "I. Effect of ions."]),
    ("Given 2 mg D. 25(OH)D rose.", ["Given 2 mg D. 25(OH)D rose."]),
)
def test_single_capital(text, expected):
    assert _split(text) == expected


@_probe(
    ("As shown by Smith et al. The results agree.",
     ["As shown by Smith et al.", "The results agree."]),
    ("It was seen by Findlay et al. In comparison, we saw more.",
     ["It was seen by Findlay et al.", "In comparison, we saw more."]),
    ("It was seen by Smith et al. A total of 5 agreed.",
     ["It was seen by Smith et al.", "A total of 5 agreed."]),
    ("Mice were injected i.v. The animals survived.",
     ["Mice were injected i.v.", "The animals survived."]),
    ("It was given p.o. Toxicity was low.", ["It was given p.o.", "Toxicity was low."]),
    # continuations
    ("Smith et al. (2001) showed it.", ["Smith et al. (2001) showed it."]),
    ("It was shown (Smith et al. 2001) before.", ["It was shown (Smith et al. 2001) before."]),
    ("Smith et al. [12] showed it.", ["Smith et al. [12] showed it."]),
    ("Hoffmeyer et al. performed a screen.", ["Hoffmeyer et al. performed a screen."]),
    ("Mice were given i.v. injections daily.", ["Mice were given i.v. injections daily."]),
    ("Mice were given 5 mg/kg i.v. IL-2 daily.", ["Mice were given 5 mg/kg i.v. IL-2 daily."]),
)
def test_et_al_and_routes(text, expected):
    assert _split(text) == expected


@_probe(
    ("It was approved by the U.S. Food and Drug Administration.",
     ["It was approved by the U.S. Food and Drug Administration."]),
    ("Data of the third U.S. National Health Survey were used.",
     ["Data of the third U.S. National Health Survey were used."]),
    ("The ratio was 1.60 (C.I. 1.42-1.78) in all.",
     ["The ratio was 1.60 (C.I. 1.42-1.78) in all."]),
    ("It is common in the U.S. The rate rose.", ["It is common in the U.S.", "The rate rose."]),
    ("Two of the authors (J.W.M., K.S.) met. They agreed.",
     ["Two of the authors (J.W.M., K.S.) met.", "They agreed."]),
)
def test_dotted_initialism(text, expected):
    assert _split(text) == expected


@_probe(
    ("Why? Unknown! It fell.", ["Why?", "Unknown!", "It fell."]),
    ("It rose (p < 0.05). It fell.", ["It rose (p < 0.05).", "It fell."]),
    ("Mean 2.5 mg. 10 cases.", ["Mean 2.5 mg.", "10 cases."]),
    ("  Lines\nend here.\n\nNext  one.  ", ["Lines\nend here.", "Next  one."]),
    ("Word . The end.", ["Word .", "The end."]),
    ("x" * 100 + ". The end.", ["x" * 100 + ".", "The end."]),
    ("Follow-up was 605 d. Fourteen relapsed.", ["Follow-up was 605 d.", "Fourteen relapsed."]),
    ("", []),
)
def test_general_rules(text, expected):
    assert _split(text) == expected


def test_title_and_offsets():
    title = "Vitamin D. A title"
    text = f"{title} Growth of E. coli rose. It fell."
    spans = sentence_spans(text, len(title))
    assert spans[0] == (0, len(title))
    assert [text[s:e] for s, e in spans] == [title, "Growth of E. coli rose.", "It fell."]


def test_linear_time():
    """A 500 KB document: the quadratic splitter took minutes, a linear one milliseconds."""
    unit = ("Cells were kept for 10 min. at 37 degrees C. Growth of E. coli, e.g. in LB, was "
            "seen by Smith et al. (2001). c-Fos rose. The U.S. Food and Drug Administration "
            "agreed. ")
    text = unit * (500_000 // len(unit))
    start = time.perf_counter()
    spans = sentence_spans(text)
    assert time.perf_counter() - start < 5
    assert len(spans) == 4 * (500_000 // len(unit))


def test_split_documents_attaches_mentions_by_hand():
    """Mentions join the sentence they lie in (local offsets, sorted); a boundary-crossing
    one is dropped and counted, an unmapped one counted, another document's ignored."""
    import polars as pl

    from bali.text.sentences import split_documents

    docs = pl.DataFrame({"doc_id": ["x", "y"], "title": ["T.", ""],
                         "text": ["T. Alpha beta. Gamma delta.", "Solo."]})
    ments = pl.DataFrame({"doc_id": ["x", "x", "x", "z", "x", "x"],
                          "start": [3, 10, 16, 0, 3, 3], "end": [8, 18, 21, 2, 8, 5],
                          "cui": ["C1", "C2", "C3", "C4", None, "C0"]},
                         schema_overrides={"start": pl.Int32, "end": pl.Int32})
    table, stats = split_documents(docs, ments)
    assert table["text"].to_list() == ["T.", "Alpha beta.", "Gamma delta.", "Solo."]
    assert table["start"].to_list() == [0, 3, 15, 0] and table["sentence_id"].to_list() == [
        0, 1, 2, 0]
    assert table["mentions"].to_list() == [
        [], [{"start": 0, "end": 2, "cui": "C0"}, {"start": 0, "end": 5, "cui": "C1"}],
        [{"start": 1, "end": 6, "cui": "C3"}], []]
    assert stats == {"documents": 2, "sentences": 4, "mentions_kept": 3,
                     "mentions_crossing_boundary": 1, "mentions_unmapped": 1}
