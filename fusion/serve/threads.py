"""PyTorch's intra-op threads in a serving process: few for an ask, all for a training job.

An ask runs dozens of tiny tensor ops (a GRU cell on ``[beam, 192]``, a few linear layers)
between Neo4j round trips; with more than one intra-op thread each op wakes the pool's
sleeping threads, which then spin for a while and take the cores from Neo4j and MiniLM. A
training job's tensors are large and want every core. The API runs both in threads of one
process, so the level is set per thread: with the OpenMP backend ``torch.set_num_threads``
applies to the calling thread (and is what a thread that never set one adopts on its first
op). ``serve`` fixes the level for asks (``Settings.serve_torch_threads``), ``for_ask`` applies
it in the thread that answers, ``training`` gives a job's thread the process's default.
MiniLM's ONNX Runtime session keeps its own pool (``default_threads``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# the process's intra-op threads before kgr changed any (OMP_NUM_THREADS or the core count)
_DEFAULT = torch.get_num_threads()
_serving: int | None = None  # the level for asks, once ``serve`` was called


def default_threads() -> int:
    """The intra-op threads this process started with."""
    return _DEFAULT


def serve(threads: int) -> None:
    """Answer asks with ``threads`` intra-op threads from now on (``for_ask``)."""
    global _serving
    _serving = max(1, threads)
    _apply(_serving)


def for_ask() -> None:
    """The serving level in this thread (nothing in a process that never called ``serve``)."""
    if _serving is not None:
        _apply(_serving)


@contextmanager
def training() -> Iterator[None]:
    """The process's default threads in this thread while the block (a training job) runs,
    where ``serve`` had lowered them; the serving level again after it."""
    if _serving is None:
        yield
        return
    _apply(_DEFAULT)
    try:
        yield
    finally:
        _apply(_serving)


def _apply(threads: int) -> None:
    if torch.get_num_threads() != threads:  # this thread's level
        torch.set_num_threads(threads)
