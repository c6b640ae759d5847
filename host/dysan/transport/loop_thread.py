"""An asyncio event loop on a background thread, so that async BLE stacks serve a sync transport.

bleak and Bumble are asyncio libraries; `Transport` is synchronous because the protocol layer and the
CLI are. Running the loop on one long-lived daemon thread (rather than `asyncio.run` per call) keeps
the BLE connection, its notification callbacks and the reconnect task alive between calls. Several
objects may share one loop: Bumble's virtual link requires the peripheral and the central to live on
the same loop, so tests hand the same `LoopThread` to both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dysan.transport.base import TransportError

T = TypeVar("T")


class LoopThread:
    """Owns an event loop running forever on a daemon thread until `stop()`."""

    def __init__(self, name: str = "dysan-ble-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("LoopThread not started")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LoopThread:
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            # Cancel whatever is left so that nothing is "destroyed but pending" at shutdown.
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T], timeout: float | None, what: str = "operation") -> T:
        """Run `coro` on the loop and wait for its result; cancel it and raise on timeout."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from the loop thread (would deadlock)")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransportError(f"{what} timed out after {timeout:g} s") from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the loop thread, in FIFO order with other `call_soon`s."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None
        self._loop = None
