"""Progress without a terminal: plain lines on stderr, one per ~10% step, never on stdout."""

from __future__ import annotations

import io

from cli.progress import PlainLines, fraction_progress, task_progress


def test_plain_lines_print_one_line_per_tenth() -> None:
    out = io.StringIO()
    lines = PlainLines(out=out)
    for i in range(101):  # a callback called a hundred times prints eleven lines
        lines.fraction("train", i / 100, f"epoch {i}")
    printed = out.getvalue().splitlines()
    assert len(printed) == 11
    assert printed[0] == "train:   0%  epoch 0"
    assert printed[1] == "train:  10%  epoch 10" and printed[-1] == "train: 100%  epoch 100"
    lines.fraction("train", 1.0, "again")  # nothing after the end
    assert len(out.getvalue().splitlines()) == 11


def test_plain_lines_skip_steps_jumped_over_and_keep_tasks_apart() -> None:
    out = io.StringIO()
    lines = PlainLines(out=out)
    lines.count("Disease", 0, 1000)
    lines.count("Disease", 450, 1000)  # one line, not five
    lines.count("Gene", 10, 20)
    lines.count("Disease", 480, 1000)  # still below 50%
    lines.count("Disease", 1000, 1000)
    assert out.getvalue().splitlines() == [
        "Disease:   0%  0/1,000", "Disease:  45%  450/1,000", "Gene:  50%  10/20",
        "Disease: 100%  1,000/1,000"]


def test_unknown_totals_print_at_most_every_interval() -> None:
    out, now = io.StringIO(), [0.0]
    lines = PlainLines(out=out, interval_s=10.0, clock=lambda: now[0])
    for step in range(25):
        now[0] = float(step)
        lines.count("rows", step * 100, None)
    assert out.getvalue().splitlines() == ["rows: 0", "rows: 1,000", "rows: 2,000"]


def test_without_a_terminal_progress_goes_to_stderr_only(capsys) -> None:  # type: ignore[no-untyped-def]
    with fraction_progress("eval medical") as progress:
        for i in range(5):
            progress((i + 1) / 5, f"{i + 1} questions")
    with task_progress() as task:
        task("entities", 5, 5)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "eval medical:  20%  1 questions", "eval medical:  40%  2 questions",
        "eval medical:  60%  3 questions", "eval medical:  80%  4 questions",
        "eval medical: 100%  5 questions", "entities: 100%  5/5"]
