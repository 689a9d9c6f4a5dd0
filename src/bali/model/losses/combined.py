"""BALI's total objective L = w_MLM · L_MLM + w_align · L_align (paper §4.2; ablations §5.5.1).

The paper uses unit weights; a weight of 0 skips its term (the -MLM and -align ablations), so the
skipped loss need not even be computed (pass ``None``).
"""

from __future__ import annotations

from torch import Tensor

from bali.errors import OptionError


def total_loss(
    mlm: Tensor | None,
    align: Tensor | None,
    mlm_weight: float = 1.0,
    align_weight: float = 1.0,
) -> Tensor:
    """Weighted sum of the terms whose weight is non-zero (a term with weight 0 is skipped)."""
    total: Tensor | None = None
    for name, term, weight in (("mlm", mlm, mlm_weight), ("align", align, align_weight)):
        if weight == 0:
            continue
        if term is None:
            raise OptionError(f"the {name} loss has weight {weight} but was not given")
        total = weight * term if total is None else total + weight * term
    if total is None:
        raise OptionError("both loss weights are 0: nothing to optimise")
    return total
