"""MicroBatchingEncoder: concurrent calls share batches, each caller gets its own rows, errors and close behave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import pytest

from indexes import FloatArray
from service.encoder import Encoder, EncoderIdentity, SentenceTransformerEncoder
from service.errors import EncoderError
from service.micro_batching import MicroBatchingEncoder

DIMENSION = 8


class StubEncoder:
    """Deterministic rows from each text's characters; records every batch; takes `delay` seconds per call."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[str]] = []

    @property
    def identity(self) -> EncoderIdentity:
        return EncoderIdentity("stub", "0", DIMENSION, "stub")

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        self.batches.append(list(texts))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise EncoderError(f"cannot encode {self.fail_on!r}")
        return np.stack([self.row(text) for text in texts]).astype(np.float32)

    @staticmethod
    def row(text: str) -> FloatArray:
        codes = np.frombuffer(text.encode().ljust(DIMENSION, b" ")[:DIMENSION], dtype=np.uint8).astype(np.float32)
        return (codes / np.linalg.norm(codes)).astype(np.float32)


@pytest.fixture
def make_batcher() -> Iterator[Callable[..., MicroBatchingEncoder]]:
    made: list[MicroBatchingEncoder] = []

    def make(encoder: Encoder, **options: Any) -> MicroBatchingEncoder:
        batcher = MicroBatchingEncoder(encoder, **options)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.close()


def concurrently(calls: Sequence[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released together; results (or raised exceptions) in call order."""
    results: list[object] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_calls_form_batches_and_get_their_own_rows(
    make_batcher: Callable[..., MicroBatchingEncoder],
) -> None:
    stub = StubEncoder(delay=0.05)
    batcher = make_batcher(stub, max_batch=64, max_wait_ms=20)
    texts = [[f"query {i}", f"other {i}"] if i % 3 == 0 else [f"query {i}"] for i in range(12)]
    results = concurrently([partial(batcher.encode, t) for t in texts])
    for sent, got in zip(texts, results, strict=True):
        assert isinstance(got, np.ndarray) and got.shape == (len(sent), DIMENSION)
        np.testing.assert_array_equal(got, np.stack([StubEncoder.row(t) for t in sent]))
    assert len(stub.batches) < len(texts)  # calls were merged
    assert max(len(batch) for batch in stub.batches) > 2
    assert sorted(t for batch in stub.batches for t in batch) == sorted(t for sent in texts for t in sent)


def test_batches_never_exceed_max_batch(make_batcher: Callable[..., MicroBatchingEncoder]) -> None:
    stub = StubEncoder(delay=0.02)
    batcher = make_batcher(stub, max_batch=3, max_wait_ms=10)
    results = concurrently([partial(batcher.encode, [f"q{i}"]) for i in range(10)])
    assert all(isinstance(r, np.ndarray) for r in results)
    assert max(len(batch) for batch in stub.batches) <= 3 and len(stub.batches) >= 4
    big = batcher.encode([f"long {i}" for i in range(5)])  # more than max_batch: runs alone, not split
    assert big.shape == (5, DIMENSION) and stub.batches[-1] == [f"long {i}" for i in range(5)]


def test_a_lone_call_does_not_wait_and_waits_stay_bounded(make_batcher: Callable[..., MicroBatchingEncoder]) -> None:
    stub = StubEncoder()
    batcher = make_batcher(stub, max_wait_ms=300)
    start = time.perf_counter()
    for i in range(5):
        batcher.encode([f"alone {i}"])
    assert (time.perf_counter() - start) / 5 < 0.1  # far below the 300 ms window: idle means go at once
    concurrently([partial(batcher.encode, [f"burst {i}"]) for i in range(8)])
    start = time.perf_counter()
    batcher.encode(["after the burst"])  # calls overlapped just now, so this one may wait, but no longer than 300 ms
    assert time.perf_counter() - start < 0.3 + 0.2


def test_an_error_reaches_every_caller_of_its_batch_and_the_worker_goes_on(
    make_batcher: Callable[..., MicroBatchingEncoder],
) -> None:
    stub = StubEncoder(delay=0.05, fail_on="boom")
    batcher = make_batcher(stub, max_batch=64, max_wait_ms=50)
    texts = ["boom", *[f"q{i}" for i in range(5)]]
    results = concurrently([partial(batcher.encode, [text]) for text in texts])
    failed_batch = next(batch for batch in stub.batches if "boom" in batch)
    for text, result in zip(texts, results, strict=True):
        if text in failed_batch:
            assert isinstance(result, EncoderError) and "boom" in str(result)
        else:
            assert isinstance(result, np.ndarray)
    assert batcher.encode(["fine"]).shape == (1, DIMENSION)


def test_close_stops_the_worker_and_refuses_later_calls(make_batcher: Callable[..., MicroBatchingEncoder]) -> None:
    before = set(threading.enumerate())
    batcher = make_batcher(StubEncoder())
    (worker,) = set(threading.enumerate()) - before
    assert batcher.encode(["before"]).shape == (1, DIMENSION)
    assert batcher.encode([]).shape == (0, DIMENSION)
    batcher.close()
    batcher.close()  # idempotent
    assert worker.name == "glassbox-encode-batcher" and not worker.is_alive()
    with pytest.raises(EncoderError, match="closed"):
        batcher.encode(["after"])


def test_on_batch_reports_calls_and_texts(make_batcher: Callable[..., MicroBatchingEncoder]) -> None:
    seen: list[tuple[int, int]] = []
    batcher = make_batcher(StubEncoder(), on_batch=lambda calls, texts: seen.append((calls, texts)))
    batcher.encode(["a", "b", "c"])
    assert seen == [(1, 3)]


@pytest.mark.slow
def test_batched_rows_match_unbatched_encodes_with_the_real_model(
    encoder: SentenceTransformerEncoder, make_batcher: Callable[..., MicroBatchingEncoder]
) -> None:
    texts = [
        "What lowers cholesterol?",
        "mRNA vaccines induce antibodies",
        "a",
        "Sleep deprivation impairs memory consolidation in healthy volunteers over several nights",
        "statins and diabetes risk",
        "aspirin",
    ]
    expected = encoder.encode(texts)
    batcher = make_batcher(encoder, max_wait_ms=20)
    results = concurrently([partial(batcher.encode, [t]) for t in texts])
    for row, got in zip(expected, results, strict=True):
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got[0], row, atol=1e-5)
