"""Lexical hard negatives: per KG node, the names of other nodes that read most like its own.

With ``t`` the l2-normalised TF-IDF vector of a name's character 3-grams within word
boundaries (sklearn ``analyzer="char_wb"``, fitted on every KG name) and ``N(v)`` the names of
node ``v``, the lexical confusers of ``v`` are the ``k`` names ``n`` of highest

    score(v, n) = max_{m in N(v)} t(m) . t(n)

among the names owned by exactly one node ``u != v`` (a name two nodes share is never a
negative). They are the names a nearest-name search over the dictionary meets first, e.g.
"Recurrent spontaneous abortion" for "Spontaneous abortion", so InfoNCE learns to separate
what zero-shot linking confuses (``ModelConfig.lexical_negatives``; not in the paper).
BioSyn's character 1-2-grams (:func:`bali.evaluate.el_biosyn.fit_sparse`) made the mining of
the demo's 7,145 mentioned nodes over 41,958 names take 54 s instead of 24 s.

The result is CSR over all nodes: ``ptr [V+1]`` and, per node in score order, ``names`` (name
ids) with ``owners`` (the node owning each), empty for nodes not asked for.
"""

from __future__ import annotations

import numpy as np


def name_owners(name_ptr: np.ndarray, name_flat: np.ndarray, n_names: int) -> np.ndarray:
    """Owner node of each name id: ``[n_names]``, -1 for a name of no node or of several."""
    node = np.repeat(np.arange(len(name_ptr) - 1), np.diff(name_ptr))
    owner = np.full(n_names, -1, dtype=np.int64)
    count = np.bincount(name_flat, minlength=n_names)
    owner[name_flat] = node
    owner[count != 1] = -1
    return owner


def lexical_confusers(texts: list[str], name_ptr: np.ndarray, name_flat: np.ndarray,
                      nodes: np.ndarray, k: int, chunk: int = 4096
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ptr, names, owners)``: the ``k`` lexical confusers of each node of ``nodes`` (module
    docstring); ``texts[i]`` is name id ``i``, ``name_ptr``/``name_flat`` the names of every
    node (CSR)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from bali.evaluate.el_biosyn import pair_scores, sparse_top_k

    n_nodes = len(name_ptr) - 1
    owner = name_owners(name_ptr, name_flat, len(texts))
    nodes = np.unique(np.asarray(nodes, dtype=np.int64))
    count = name_ptr[nodes + 1] - name_ptr[nodes]
    query_node = np.repeat(nodes, count)  # one query per name of each asked node
    query_name = name_flat[np.repeat(name_ptr[nodes], count)
                           + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)]
    ptr = np.zeros(n_nodes + 1, dtype=np.int64)
    if k <= 0 or query_name.size == 0:
        return ptr, np.empty(0, np.int64), np.empty(0, np.int64)
    keys = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3),
                           dtype=np.float32).fit_transform(texts).tocsr()
    queries = keys[query_name]
    # the node's own names are among the nearest: ask for enough to keep k after dropping them
    cand = sparse_top_k(queries, keys, min(k + int(count.max()) + 4, len(texts)), chunk)
    score = pair_scores(queries, keys, cand)
    row_node = np.repeat(query_node, cand.shape[1])
    cand, score = cand.ravel(), score.ravel()
    ok = (owner[cand] >= 0) & (owner[cand] != row_node)
    row_node, cand, score = row_node[ok], cand[ok], score[ok]
    order = np.lexsort((cand, -score, row_node))  # per node: best score first, ties by id
    row_node, cand = row_node[order], cand[order]
    first = np.unique(np.stack([row_node, cand]), axis=1, return_index=True)[1]
    keep = np.zeros(row_node.size, dtype=bool)
    keep[first] = True  # a name met by several of the node's names: its best score only
    row_node, cand = row_node[keep], cand[keep]
    start = np.searchsorted(row_node, row_node, side="left")
    rank = np.arange(row_node.size) - start
    row_node, cand = row_node[rank < k], cand[rank < k]
    ptr[1:] = np.cumsum(np.bincount(row_node, minlength=n_nodes))
    return ptr, cand, owner[cand]
