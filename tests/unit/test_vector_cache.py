"""fusion.language.text.VectorCache under concurrency: 8 threads read, fill and clear one small
cache
at once, and every vector each of them gets back is the vector of its own text."""

from __future__ import annotations

import random
import threading
import zlib

import torch

from fusion.language.text import VectorCache

TEXTS = [f"text number {i}" for i in range(300)]


def vector_of(text: str) -> torch.Tensor:
    """A vector that only ``text`` has (its checksum and length)."""
    return torch.tensor([float(zlib.crc32(text.encode())), float(len(text)), 1.0])


def slow_encode(texts: list[str]) -> torch.Tensor:
    threading.Event().wait(0.0005)  # lets the other threads run between lookup and insert
    return torch.stack([vector_of(t) for t in texts])


def test_eight_threads_reading_writing_and_clearing_get_the_right_vectors() -> None:
    cache = VectorCache(maxsize=64)  # far fewer entries than texts: constant eviction
    errors: list[str] = []
    calls = [0] * 8
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        try:
            for _ in range(400):
                if index in (0, 1) and rng.random() < 0.2:
                    cache.clear()
                texts = rng.choices(TEXTS, k=rng.randint(1, 20))  # repeats included
                got = cache.vectors(texts, slow_encode)
                calls[index] += 1
                expected = torch.stack([vector_of(t) for t in texts])
                if not torch.equal(got, expected):
                    errors.append(f"thread {index}: wrong vectors for {texts[:3]}...")
                    return
        except Exception as exc:  # noqa: BLE001 - a KeyError here is what the test is after
            errors.append(f"thread {index}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert calls == [400] * 8
    assert len(cache) <= 64


def test_least_recently_used_goes_first() -> None:
    cache = VectorCache(maxsize=2)
    encoded: list[str] = []

    def encode(texts: list[str]) -> torch.Tensor:
        encoded.extend(texts)
        return torch.stack([vector_of(t) for t in texts])

    cache.vectors(["a", "b"], encode)
    cache.vectors(["a"], encode)  # "a" is now the most recent
    cache.vectors(["c"], encode)  # evicts "b"
    cache.vectors(["a", "b"], encode)
    assert encoded == ["a", "b", "c", "b"]
