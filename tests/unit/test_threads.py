"""``fusion.serve.threads``: the serving level for asks, the process's default in training jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import torch

from fusion.serve import threads


@pytest.fixture
def two_by_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_DEFAULT", 2)
    monkeypatch.setattr(threads, "_serving", None)
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def in_thread(fn: Callable[[], int]) -> int:
    """``fn``'s result, run in a new thread (as a request or a job is)."""
    out: list[int] = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join(10)
    return out[0]


def test_nothing_changes_without_serve(two_by_default: None) -> None:
    threads.for_ask()
    assert torch.get_num_threads() == 2
    with threads.training():
        assert torch.get_num_threads() == 2


def test_an_ask_in_any_thread_runs_at_the_serving_level(two_by_default: None) -> None:
    threads.serve(1)
    torch.set_num_threads(2)  # e.g. left so by other code in this thread

    def ask() -> int:
        threads.for_ask()
        return torch.get_num_threads()

    assert ask() == 1
    assert in_thread(ask) == 1


def test_a_job_trains_with_the_default_while_asks_keep_the_serving_level(
        two_by_default: None) -> None:
    threads.serve(1)
    ask_may_run, job_may_end = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def job() -> int:
        with threads.training():
            seen["job"] = torch.get_num_threads()
            ask_may_run.set()
            job_may_end.wait(10)
            seen["job_later"] = torch.get_num_threads()
        return torch.get_num_threads()

    worker = threading.Thread(target=lambda: seen.__setitem__("after", job()))
    worker.start()
    ask_may_run.wait(10)
    threads.for_ask()  # an ask while the job runs
    seen["ask"] = torch.get_num_threads()
    job_may_end.set()
    worker.join(10)
    assert seen == {"job": 2, "ask": 1, "job_later": 2, "after": 1}


def test_a_failing_job_leaves_its_thread_at_the_serving_level(two_by_default: None) -> None:
    threads.serve(1)

    def failing_job() -> int:
        with pytest.raises(RuntimeError), threads.training():
            raise RuntimeError("training failed")
        return torch.get_num_threads()

    assert in_thread(failing_job) == 1
