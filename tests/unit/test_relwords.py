"""Phrasings read from relationship-type names (``fusion.language.relwords``) for a user's own
graph."""

from __future__ import annotations

import pytest

from fusion.language.relwords import base_form, gerund, name_words, participle, read_name
from fusion.language.verbalize import (
    IN,
    OUT,
    PHRASINGS,
    generic_phrasings,
    noun_phrase,
    phrasing_choices,
    phrasings,
)


@pytest.mark.parametrize(("third", "base", "done", "doing"), [
    ("treats", "treat", "treated", "treating"),
    ("causes", "cause", "caused", "causing"),
    ("carries", "carry", "carried", "carrying"),
    ("assesses", "assess", "assessed", "assessing"),
    ("diagnoses", "diagnose", "diagnosed", "diagnosing"),
    ("watches", "watch", "watched", "watching"),
    ("makes", "make", "made", "making"),
    ("runs", "run", "run", "running"),
    ("leads", "lead", "led", "leading"),
    ("occurs", "occur", "occurred", "occurring"),
    ("co-occurs", "co-occur", "co-occurred", "co-occurring"),
    ("supplies", "supply", "supplied", "supplying"),
    ("employs", "employ", "employed", "employing"),
    ("lies", "lie", "lied", "lying"),
])
def test_inflection(third: str, base: str, done: str, doing: str) -> None:
    assert base_form(third) == base
    assert participle(base) == done
    assert gerund(base) == doing


@pytest.mark.parametrize(("name", "shape"), [
    ("TREATS", "verb"), ("CARRIES_OUT", "verb"), ("COMPETES_WITH", "verb"),
    ("OCCURS_IN", "verb"), ("ASSESSES_EFFECT_OF", "verb"), ("worksFor", "verb"),
    ("LOCATED_IN", "state"), ("FOUNDED_BY", "state"), ("ADJACENT_TO", "state"),
    ("CAPITAL_OF", "state"), ("PART_OF", "state"), ("IS_MEMBER_OF", "state"),
    ("BORN_IN", "state"), ("HAS_PART", "possession"), ("HAS_SUBSIDIARY", "possession"),
    ("ISA", "is-a"), ("IS_A", "is-a"), ("ACQUIRED", "past"),
    ("SPOUSE", None), ("P31", None), ("PROCESS", None), ("STATUS_OF_X", None),
])
def test_shapes(name: str, shape: str | None) -> None:
    assert read_name(name)[0] == shape


def test_name_words() -> None:
    assert name_words("CARRIES_OUT") == ["carries", "out"]
    assert name_words("locatedIn") == ["located", "in"]
    assert name_words("co-occurs_with") == ["co-occurs", "with"]


def test_each_shape_reads_in_its_own_grammar() -> None:
    # the answer noun comes first: "<answers> <phrasing with X>"
    assert "treated by {x}" in phrasings("TREATS", OUT)
    assert "that treat {x}" in phrasings("TREATS", IN)
    assert "in which {x} occurs" in phrasings("OCCURS_IN", OUT)  # no "occurred in by"
    assert not any("occurred in by" in p for p in phrasings("OCCURS_IN", OUT))
    assert "whose capital is {x}" in phrasings("CAPITAL_OF", OUT)  # countries whose capital ..
    assert "that are the capital of {x}" in phrasings("CAPITAL_OF", IN)  # cities that are ..
    assert "that {x} is an ingredient of" in phrasings("INGREDIENT_OF", OUT)
    assert "located in {x}" in phrasings("LOCATED_IN", IN)
    assert "where {x} is located" in phrasings("LOCATED_IN", OUT)
    assert "that founded {x}" in phrasings("FOUNDED_BY", OUT)  # x -FOUNDED_BY-> founder
    assert "adjacent to {x}" in phrasings("ADJACENT_TO", IN)
    assert "that have {x} as a subsidiary" in phrasings("HAS_SUBSIDIARY", IN)
    assert "that are the subsidiary of {x}" in phrasings("HAS_SUBSIDIARY", OUT)
    assert "that acquired {x}" in phrasings("ACQUIRED", IN)
    assert phrasings("ISA", OUT) == PHRASINGS["IS_A"][0]
    assert phrasings("ISA", IN) == PHRASINGS["IS_A"][1]
    # built-in relations keep their hand-written phrasings; names of no shape the fixed frames
    assert phrasings("CONTROL", OUT) == PHRASINGS["CONTROL"][0]
    assert phrasings("SPOUSE", IN) == generic_phrasings("SPOUSE", IN)


NAMES = ["TREATS", "CARRIES_OUT", "COMPETES_WITH", "OCCURS_IN", "CO-OCCURS_WITH",
         "ASSESSES_EFFECT_OF", "LOCATED_IN", "FOUNDED_BY", "ADJACENT_TO", "CAPITAL_OF",
         "ISSUE_IN", "IS_MEMBER_OF", "HAS_PART", "ACQUIRED", "WORKS_FOR", "BORN_IN",
         "CONCEPTUALLY_RELATED_TO"]


@pytest.mark.parametrize("name", NAMES)
def test_phrasings_fit_the_generator(name: str) -> None:
    for direction in (OUT, IN):
        options = phrasings(name, direction)
        # one slot each, distinct, and enough to hold one out of training
        assert all(p.count("{x}") == 1 for p in options)
        assert len(set(options)) == len(options) >= 2
        train = phrasing_choices((name, direction), "train", nested=False)
        held = phrasing_choices((name, direction), "eval", nested=False)
        assert train and held and not set(train) & set(held)
        # nested questions keep to right-branching phrasings where the shape has one, and
        # the held-out phrasing is one of them whenever any is
        if any(p.endswith("{x}") for p in options):
            assert options[-1].endswith("{x}")


def test_nested_question_reads_as_english() -> None:
    steps = [("CAPITAL_OF", IN), ("HEADQUARTERED_IN", IN)]
    assert noun_phrase(steps, ["City", "Company"], "Company", "France", [2, 0]) == \
        "companies headquartered in the cities that are the capital of France"


def test_declared_phrasings_come_first_in_their_domain_only() -> None:
    from fusion.language.verbalize import action_texts, declare, declared

    derived = phrasings("TREATS", "out")
    declare("unit-pharma", {"TREATS": (["cured by {x}", "that {x} cures"], []),
                            "HAS_PHENOTYPE": ([], ["that display {x}"])})
    try:
        assert phrasings("TREATS", "out", "unit-pharma") == ["cured by {x}", "that {x} cures"]
        # a direction the domain leaves empty keeps the derived phrasings
        assert phrasings("TREATS", "in", "unit-pharma") == phrasings("TREATS", "in")
        # a built-in relation name declared in a user's domain takes its words there only
        assert phrasings("HAS_PHENOTYPE", "in", "unit-pharma") == ["that display {x}"]
        assert phrasings("HAS_PHENOTYPE", "in", "medical") == phrasings("HAS_PHENOTYPE", "in")
        assert phrasings("TREATS", "out") == derived
        assert action_texts(("TREATS", "out"), "all", "unit-pharma") == ["cured by", "that cures"]
        # the last phrasing is held out of training, as for kgr's own
        assert action_texts(("TREATS", "out"), "train", "unit-pharma") == ["cured by"]
        declare("unit-pharma", {})
        assert declared("unit-pharma") == {}
        assert phrasings("TREATS", "out", "unit-pharma") == derived
    finally:
        declare("unit-pharma", {})
