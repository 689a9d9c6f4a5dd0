"""Progress of a long stage: a bar on an interactive terminal, one summary line in the log.

    with Progress("annotate", total=len(docs), unit="doc") as bar:
        for doc in docs:
            ...
            bar.update(1)

On a terminal (stderr is a TTY) a tqdm bar shows done/total, rate and ETA. Whether or not
it is one, leaving the block logs one INFO line on the ``bali`` logger:
``annotate: 30,000 doc in 12.3 s (2,439 doc/s)`` (plus ``, <extra>`` when given), so a SLURM
log holds one line per stage and no carriage-return noise. ``BALI_PROGRESS=0`` turns the bar
off, ``=1`` forces it on (e.g. for a terminal multiplexer that hides the TTY).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType

log = logging.getLogger("bali")


def interactive() -> bool:
    """True when a bar should be drawn: ``BALI_PROGRESS`` if set, else stderr is a TTY."""
    env = os.environ.get("BALI_PROGRESS", "")
    if env in ("0", "1"):
        return env == "1"
    return sys.stderr.isatty()


class Progress:
    """Count work done in a stage; a bar when :func:`interactive`, one log line at the end."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it",
                 enabled: bool | None = None) -> None:
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.extra = ""
        self._enabled = interactive() if enabled is None else enabled
        self._bar = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Progress:
        if self._enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit,
                             file=sys.stderr, dynamic_ncols=True, leave=False)
        self._t0 = time.perf_counter()
        return self

    def set_total(self, total: int) -> None:
        """The amount of work, once known after the stage began (gives the bar an ETA)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int = 1) -> None:
        """Add ``n`` units of work done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, text: str) -> None:
        """Text shown after the bar and appended to the summary line (e.g. ``mentions 1,234``)."""
        self.extra = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def summary(self) -> str:
        """``desc: n unit in s (rate unit/s)[, extra]``."""
        seconds = time.perf_counter() - self._t0
        per_s = self.n / seconds if seconds > 0 else 0.0
        rate = f" ({per_s:,.0f} {self.unit}/s)" if per_s >= 10 else \
            f" ({per_s:.2g} {self.unit}/s)" if seconds > 0 else ""
        extra = f", {self.extra}" if self.extra else ""
        return f"{self.desc}: {self.n:,} {self.unit} in {seconds:.1f} s{rate}{extra}"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        if exc_type is None:
            log.info(self.summary())
