"""Gold answers given by name resolve the same way in training and in ``kgr eval qa --data``:
"Tesla Inc." (punctuation, case) is found by both through
``fusion.language.linking.names_index``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fusion.language.linking import names_index
from fusion.learn.evaluate import evaluate_rows
from fusion.learn.train import resolve

NAMES = {"cars:tesla": "Tesla, Inc.", "cars:tesla2": "TESLA INC",
         "cars:ford": "Ford Motor Co."}


def test_training_resolves_names_with_punctuation_and_case() -> None:
    graph = SimpleNamespace(names=NAMES, domain="cars")
    by_name = names_index(NAMES)
    assert resolve(graph, ["Tesla Inc."], by_name) == ["cars:tesla", "cars:tesla2"]
    assert resolve(graph, ["ford motor co"], by_name) == ["cars:ford"]
    assert resolve(graph, ["ford", "cars:ford"], by_name) == ["cars:ford"]  # uid, short uid


class StubQA:
    """What ``evaluate_rows`` uses of a DomainQA: the alias index's names and answers that
    rank Tesla first (the ranking is not what is tested; the gold set is)."""

    domain = "cars"
    scorers: dict[str, Any] = {}
    wording = "train"

    def __init__(self) -> None:
        self.linker = SimpleNamespace(index=SimpleNamespace(names=NAMES))

    def prepare(self, questions: list[str]) -> list[SimpleNamespace]:
        return [SimpleNamespace(question=q) for q in questions]

    def answer(self, question: str, *args: Any, **kwargs: Any) -> SimpleNamespace:
        ranked = ["cars:tesla", "cars:ford"] if "electric" in question else ["cars:ford"]
        return SimpleNamespace(answers=[SimpleNamespace(uid=u, relation_path=["MAKES"])
                                        for u in ranked])


def test_eval_data_matches_a_gold_answer_named_tesla_inc() -> None:
    rows = [{"question": "Who makes electric cars?", "answers": ["Tesla Inc."], "hops": 1},
            {"question": "Who makes the Model T?", "answers": ["Ford Motor Co"], "hops": 1}]
    out = evaluate_rows(StubQA(), rows, "zero-shot")  # type: ignore[arg-type]
    assert out["metrics"]["all"]["hits@1"] == 1.0
    assert out["metrics"]["all"]["mrr"] == 1.0
