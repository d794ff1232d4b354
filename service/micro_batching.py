"""Micro-batching for query encodes: concurrent `encode` calls share one forward pass of the wrapped encoder.

Searches run in a thread pool; each encodes its one query. A plain encoder serialises them on its lock, one forward
pass each. `MicroBatchingEncoder` queues the calls instead: one worker thread takes the first waiting call, gathers
the calls queued behind it (waiting at most `max_wait_ms` for more, up to `max_batch` texts), encodes all their
texts in one call, and hands each caller its own rows. A call that arrives when the encoder has been idle (the last
batch held one call and nothing queued behind it) goes at once, so a lone client never pays the wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexes import FloatArray
from service.encoder import Encoder, EncoderIdentity
from service.errors import EncoderError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Call:
    """One caller's texts, and where the worker leaves its rows or the batch's error."""

    texts: Sequence[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: FloatArray | None = None
    error: BaseException | None = None


_STOP = _Call(())


class MicroBatchingEncoder:
    """An `Encoder` that batches concurrent calls into single calls of `encoder` (one worker thread).

    Args:
        encoder: the encoder that runs each batch; only the worker calls it.
        max_batch: most texts in one batch; a call with more texts runs alone (it is never split).
        max_wait_ms: longest the worker waits for more calls after the first, while calls are arriving
            concurrently; 0 takes only what is already queued.
        on_batch: called after each batch with (calls, texts) in it, e.g. to observe batch sizes.

    Call `close()` when done: it stops the worker; later calls raise `EncoderError`.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._encoder = encoder
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="glassbox-encode-batcher", daemon=True)
        self._worker.start()

    @property
    def identity(self) -> EncoderIdentity:
        return self._encoder.identity

    @property
    def encoder(self) -> Encoder:
        """The wrapped encoder."""
        return self._encoder

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        """(n, d) float32 rows for `texts`, encoded in a batch with whatever other calls are waiting.

        Raises:
            EncoderError: the encoder is closed.
            Exception: whatever the wrapped encoder raised for the batch this call was in.
        """
        if not texts:
            return np.empty((0, self.identity.dimension), dtype=np.float32)
        call = _Call(list(texts))
        with self._close_lock:
            if self._closed:
                raise EncoderError("the micro-batching encoder is closed (the server is shutting down)")
            self._queue.put(call)
        call.done.wait()
        if call.vectors is None:
            raise call.error if call.error is not None else EncoderError("the encode batch returned no rows")
        return call.vectors

    def close(self) -> None:
        """Stop the worker after the calls already queued; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._worker.join()

    def _run(self) -> None:
        carried: _Call | None = None
        concurrent = False  # whether calls overlapped lately: only then is waiting for more worth it
        while True:
            first = carried if carried is not None else self._queue.get()
            carried = None
            if first is _STOP:
                return
            batch, carried, stop = self._gather(first, self._max_wait if concurrent else 0.0)
            self._encode(batch)
            concurrent = len(batch) > 1 or carried is not None or not self._queue.empty()
            if stop:
                return

    def _gather(self, first: _Call, wait: float) -> tuple[list[_Call], _Call | None, bool]:
        """The batch led by `first`: queued calls, then arrivals within `wait` seconds, up to max_batch texts.

        Returns the batch, a call that did not fit (it leads the next batch), and whether a stop was seen.
        """
        batch, size = [first], len(first.texts)
        deadline = time.monotonic() + wait
        while size < self._max_batch:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    call = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if call is _STOP:
                return batch, None, True
            if size + len(call.texts) > self._max_batch:
                return batch, call, False
            batch.append(call)
            size += len(call.texts)
        return batch, None, False

    def _encode(self, batch: list[_Call]) -> None:
        texts = [text for call in batch for text in call.texts]
        try:
            vectors = self._encoder.encode(texts)
        except Exception as exc:  # every caller of the batch gets the error; the worker goes on
            for call in batch:
                call.error = exc
                call.done.set()
            return
        start = 0
        for call in batch:
            call.vectors = vectors[start : start + len(call.texts)]
            start += len(call.texts)
            call.done.set()
        if self._on_batch is not None:
            try:
                self._on_batch(len(batch), len(texts))
            except Exception:  # an observer's bug must not stop the worker every search waits on
                logger.exception("micro-batch observer failed")
