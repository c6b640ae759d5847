"""A bounded, thread-safe byte FIFO between a producer callback and a blocking reader.

The BLE stack delivers notifications on its event-loop thread whether or not anyone is reading; the
buffer decouples that from `Transport.read()`. It is bounded so a stalled reader costs a known amount of
memory, and it drops the *newest* bytes when full: what is already buffered stays a contiguous prefix
of the stream, and the protocol layer's CRC + resync on 0x00 turns the gap into one lost frame. Every
dropped byte is counted so the loss is visible (`dysan stream` shows it) rather than silent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ByteBuffer:
    """FIFO of bytes with a capacity, an overflow counter and a close-with-error wake-up."""

    def __init__(self, capacity: int, on_overflow: Callable[[int], None] | None = None) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._data = bytearray()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._on_overflow = on_overflow
        self.overflow_bytes = 0
        self.overflow_events = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._data)

    def feed(self, data: bytes) -> int:
        """Append what fits, drop (and count) the rest; returns the number of bytes accepted."""
        if not data:
            return 0
        with self._cond:
            room = self.capacity - len(self._data)
            accepted = min(room, len(data))
            if accepted:
                self._data += data[:accepted]
                self._cond.notify_all()
            dropped = len(data) - accepted
            if dropped:
                self.overflow_bytes += dropped
                self.overflow_events += 1
        if dropped and self._on_overflow is not None:
            self._on_overflow(dropped)
        return accepted

    def read(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to `max_bytes` as soon as any are buffered; b"" on timeout.

        Raises the error given to `fail()` once the buffered bytes are drained, so a reader still gets
        everything that arrived before the link was declared lost.
        """
        if max_bytes <= 0:
            return b""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._data:
                if self._error is not None:
                    raise self._error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            out = bytes(self._data[:max_bytes])
            del self._data[:max_bytes]
            return out

    def fail(self, error: BaseException) -> None:
        """Make readers raise `error` once the buffer is empty (link lost for good, or closed)."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def reset(self) -> None:
        """Empty the buffer and clear a previous error (reopening a transport)."""
        with self._cond:
            self._data.clear()
            self._error = None
