"""Progress of long commands (backfill, sync, demo, a long ``data``) on stderr.

Owns: on a terminal, one tqdm bar that fits its width (80 columns and up): windows
done/total, rows, rate, ETA, 429s and retries, in that order and labelled; with no
terminal, one progress line every ``interval`` seconds (a log a cron mail or a CI job
can read), never for a run shorter than that; nothing with ``--quiet`` or
``--no-progress``. tqdm (already a dependency, well kept, small) draws the bar and sizes
it to the terminal. Must never: write to stdout (that is for results) or slow the run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

from locus_async.cli.common import CliIO
from locus_async.locus.backfill import BackfillProgress

__all__ = ["LOG_INTERVAL", "ProgressBar", "describe"]

#: Seconds between two progress lines when stderr is not a terminal.
LOG_INTERVAL = 30.0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _rows(count: int) -> str:
    if count >= 10_000_000:
        return f"{count / 1_000_000:.0f}M"
    if count >= 10_000:
        return f"{count / 1000:.0f}k"
    return f"{count:,}"


def _rate(progress: BackfillProgress) -> float:
    elapsed = progress.elapsed
    fetched = progress.windows_done + progress.windows_failed
    return fetched / elapsed if elapsed > 0 else 0.0


def describe(progress: BackfillProgress, *, room: int = 80) -> str:
    """The fields after the bar, always in the same order and labelled: rows, rate, ETA,
    429s, retries (and failures); as many as ``room`` characters allow, dropping the
    rate first, then retries, then the ETA."""
    fields = {
        "rows": f"{_rows(progress.rows)} rows",
        "rate": f"{_rate(progress):.1f}/s",
        "eta": f"ETA {_duration(progress.eta())}",
        "429s": f"429s {progress.rate_limited}",
        "retries": f"retries {progress.retries}",
    }
    if progress.windows_failed:
        fields["failed"] = f"failed {progress.windows_failed}"
    for drop in ("rate", "retries", "eta", "429s"):
        text = "  ".join(fields.values())
        if len(text) <= room:
            return text
        fields.pop(drop, None)
    return "  ".join(fields.values())[:room]


class ProgressBar:
    """Called with a ``BackfillProgress`` after every window; ``close()`` at the end.
    ``bar=False`` writes the progress lines even on a terminal."""

    def __init__(
        self,
        io: CliIO,
        label: str,
        *,
        enabled: bool = True,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        bar: bool = True,
    ) -> None:
        self._io = io
        self._label = label
        self._enabled = enabled  # False with --quiet or --no-progress
        self._interval = interval
        self._clock = clock
        self._next_line = clock() + interval
        self._bar: Any = None
        isatty = getattr(io.stderr, "isatty", None)
        # ``bar=False``: lines even on a terminal (several runs at once share stderr).
        self._terminal = bar and bool(isatty is not None and isatty())

    def __call__(self, progress: BackfillProgress) -> None:
        if not self._enabled:
            return
        if self._terminal:
            self._draw(progress)
        elif self._clock() >= self._next_line:
            self._next_line = self._clock() + self._interval
            self._io.err(self.line(progress))

    def line(self, progress: BackfillProgress) -> str:
        """The progress log's line: everything, labelled, for a reader without a bar."""
        done = progress.windows_done + progress.windows_skipped + progress.windows_failed
        total = progress.windows_total
        share = f" ({100 * done / total:.0f}%)" if total else ""
        return (
            f"{self._label}: {done:,}/{total:,} windows{share}, {progress.rows:,} rows, "
            f"{_rate(progress):.1f} windows/s, ETA {_duration(progress.eta())}, "
            f"{progress.rate_limited} x 429, {progress.retries} retries"
            + (f", {progress.windows_failed} failed" if progress.windows_failed else "")
        )

    def _draw(self, progress: BackfillProgress) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.windows_total,
                initial=progress.windows_skipped,
                desc=self._label,
                unit="win",
                file=self._io.stderr,
                ncols=width,
                leave=True,
                bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} win{postfix}",
            )
        self._bar.ncols = width  # follows a resized terminal
        done = progress.windows_done + progress.windows_skipped + progress.windows_failed
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)
        # What the line holds besides the fields: the label, a bar of 6 or more, the
        # window counts and tqdm's ", " before the fields.
        counts = len(f"{self._bar.n}/{self._bar.total}")
        room = width - len(self._label) - len(" |") - 6 - len("| ") - counts - len(" win, ")
        self._bar.set_postfix_str(describe(progress, room=room), refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
