"""Serialized signals on their way to the ingest: the outbox where they wait, and the batches
(one POST each) they leave it in, capped by count and bytes.

Bookkeeping of the sender's worker thread only (no lock, no I/O). Each entry carries its charge
against the queue's byte cap, so that what has left the queue but is not yet delivered still
counts (``Sender._hold``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ._encoding import Entry


@dataclass(eq=False)
class Batch:
    """Signals sent in one POST, and retried as the same POST until it is settled."""

    entries: list[Entry]
    #: What each entry counts against ``max_queue_bytes`` until the batch is settled.
    charges: list[int]
    #: Failed attempts so far (``max_retries`` counts them).
    attempt: int = 0
    #: Taken from the spool: resent oldest first, so one at a time.
    spooled: bool = False

    def body(self) -> bytes:
        parts = [data for data, _ in self.entries]
        if not parts:  # never sent: a batch takes one entry at least
            return b"[]"
        # The brackets joined with the end entries: `b"[" + body + b"]"` copied the whole
        # body (~70 kB at 100 signals) twice more.
        parts[0] = b"[" + parts[0]
        parts[-1] += b"]"
        return b",".join(parts)

    def halves(self) -> tuple[Batch, Batch]:
        """The two batches a 413 splits this one into (each sent once, never both whole)."""
        half = len(self.entries) // 2
        return (
            Batch(self.entries[:half], self.charges[:half], self.attempt, self.spooled),
            Batch(self.entries[half:], self.charges[half:], self.attempt, self.spooled),
        )


class Outbox:
    """Serialized signals not yet in a batch, oldest first."""

    def __init__(self) -> None:
        self._entries: deque[Entry] = deque()
        #: Each entry's charge, in step with the entries.
        self._charges: deque[int] = deque()
        #: How many entries at the front came from the spool.
        self._spooled = 0
        #: Each entry's bytes plus one (a comma, or for the first the closing bracket), summed
        #: as ``take_batch`` counts them: whether everything here fits one POST is then known
        #: without a look at each entry.
        self._size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entries: list[Entry], record_size: int | None, *, spooled: bool = False) -> int:
        """Append entries; returns what they are charged in all: a record's entries share
        its estimated size (the queue's unit), entries from the spool count their own."""
        if not entries:
            return 0
        if record_size is None:
            charges = [len(data) for data, _ in entries]
        else:
            charges = _shares(record_size, len(entries))
        self._append(entries, charges)
        if spooled:
            self._spooled += len(entries)
        return sum(charges)

    def add_records(self, expanded: list[tuple[list[Entry], int]]) -> tuple[int, int]:
        """Append the entries of several records, each with its record's estimated size;
        returns (entries, what they are charged in all)."""
        entries: list[Entry] = []
        charges: list[int] = []
        size = 0  # measured in the same pass
        for record_entries, record_size in expanded:
            if len(record_entries) == 1:  # nearly always: one signal per record
                entry = record_entries[0]
                entries.append(entry)
                charges.append(record_size)
                size += len(entry[0])
            elif record_entries:
                entries += record_entries
                charges += _shares(record_size, len(record_entries))
                size += sum(len(data) for data, _ in record_entries)
        self._append(entries, charges, size)
        return len(entries), sum(charges)

    def _append(self, entries: list[Entry], charges: list[int], size: int | None = None) -> None:
        """``size``: the entries' bytes, when the caller has summed them already."""
        self._entries.extend(entries)
        self._charges.extend(charges)
        if size is None:
            size = sum(len(data) for data, _ in entries)
        self._size += size + len(entries)

    def take_batch(self, max_signals: int, max_bytes: int) -> Batch:
        """The oldest entries that fit one POST (one at least, however large)."""
        spooled = self._spooled > 0
        # n entries are n - 1 commas and two brackets: each entry counts one, plus one more.
        if len(self._entries) <= max_signals and self._size + 1 <= max_bytes:
            # Everything fits, as under load when the outbox was filled to one batch: taken
            # whole instead of entry by entry.
            entries, charges = list(self._entries), list(self._charges)
            self._entries.clear()
            self._charges.clear()
            self._spooled = 0
            self._size = 0
            return Batch(entries, charges, spooled=spooled)
        entries = []
        charges = []
        size = 1  # the opening bracket (each entry counts its comma or the closing one)
        while self._entries and len(entries) < max_signals:
            entry_size = len(self._entries[0][0]) + 1
            if entries and size + entry_size > max_bytes:
                break
            entries.append(self._entries.popleft())
            charges.append(self._charges.popleft())
            size += entry_size
            self._size -= entry_size
        self._spooled = max(0, self._spooled - len(entries))
        return Batch(entries, charges, spooled=spooled)

    def first_own_seq(self) -> int | None:
        """The oldest sequence number of this process waiting here (another run's spooled
        entries carry 0)."""
        return next((seq for _, seq in self._entries if seq), None)

    def clear(self) -> tuple[list[Entry], int]:
        """Everything out, oldest first, with what it was charged in all."""
        entries, charged = list(self._entries), sum(self._charges)
        self._entries.clear()
        self._charges.clear()
        self._spooled = 0
        self._size = 0
        return entries, charged


def _shares(record_size: int, count: int) -> list[int]:
    """A record's estimated size split over the ``count`` signals it became."""
    share = record_size // count
    charges = [share] * count
    charges[-1] += record_size - share * count
    return charges
