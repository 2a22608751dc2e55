"""The backfill progress bar of the command line.

Owns: showing a run's live counters (windows, rows, requests, 429s, retries, ETA) on a
terminal with tqdm. Must never: write to stdout (that is for results) or slow the run.
"""

from __future__ import annotations

from typing import Any

from locus_async.cli.common import CliIO
from locus_async.locus.backfill import BackfillProgress

__all__ = ["ProgressBar"]


class ProgressBar:
    """tqdm on a terminal (windows done/total, rows, requests, 429s, retries, ETA), else silent."""

    def __init__(self, io: CliIO, label: str) -> None:
        self._io = io
        self._label = label
        self._bar: Any = None

    def __call__(self, progress: BackfillProgress) -> None:
        if not self._io.stderr.isatty():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.windows_total,
                initial=progress.windows_skipped,
                desc=self._label,
                unit="win",
                file=self._io.stderr,
                dynamic_ncols=True,
                leave=True,
                disable=False,  # the check above already found stderr to be a terminal
            )
        self._bar.n = progress.windows_done + progress.windows_skipped + progress.windows_failed
        self._bar.set_postfix(
            rows=f"{progress.rows:,}",
            req=progress.requests,
            r429=progress.rate_limited,
            retries=progress.retries,
            failed=progress.windows_failed,
            refresh=False,
        )
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
