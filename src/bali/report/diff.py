"""``bali report diff A.json B.json``: the test items one model gets right and the other wrong.

Both records must hold per-item scores of the same items (``items``: ``id`` plus ``hit@1`` /
``hit@5`` for linking, ``correct`` for QA and RE; see :data:`bali.report.headline.ITEM_SCORES`).
An item is *won* by B when its score is 1 in B and 0 in A, *lost* in the converse case.
"""

from __future__ import annotations

from bali.io import BaliInputError
from bali.report.headline import ITEM_SCORES


def item_diff(a: dict, b: dict, metric: str | None = None) -> dict:
    """``{"metric", "won": [row], "lost": [row], "same": n}``; a row holds the item id and
    the other per-item fields of both records (e.g. ``top1``, ``gold``, ``pred``)."""
    metric = metric or b["primary"]
    key = ITEM_SCORES.get(metric)
    items = [r.get("items") or {} for r in (a, b)]
    if key is None or any(key not in it for it in items):
        raise BaliInputError(b.get("benchmark", "?"), f"no per-item {metric} scores to compare")
    if items[0]["id"] != items[1]["id"]:
        raise BaliInputError(b.get("benchmark", "?"), "the two results score different items")
    extra = [k for k in items[1] if k not in ("id", *ITEM_SCORES.values())]
    won, lost = [], []
    for i, item in enumerate(items[0]["id"]):
        sa, sb = items[0][key][i], items[1][key][i]
        if sa == sb:
            continue
        row = {"id": item, **{f"{k} (A)": items[0][k][i] for k in extra if k in items[0]},
               **{f"{k} (B)": items[1][k][i] for k in extra}}
        (won if sb > sa else lost).append(row)
    return {"metric": metric, "won": won, "lost": lost,
            "same": len(items[0]["id"]) - len(won) - len(lost)}


def diff_markdown(diff: dict, a_name: str, b_name: str) -> str:
    """The diff as Markdown: a count line, then one table for each direction."""
    lines = [f"{diff['metric']}: B = {b_name} right and A = {a_name} wrong on "
             f"{len(diff['won'])} items, the converse on {len(diff['lost'])}; "
             f"{diff['same']} items alike.", ""]
    for title, rows in (("B right, A wrong", diff["won"]), ("A right, B wrong", diff["lost"])):
        lines += [f"## {title} ({len(rows)})", ""]
        if rows:
            heads = list(rows[0])
            lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
            lines += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in heads) + " |"
                      for r in rows]
        lines.append("")
    return "\n".join(lines)
