"""Question wording: phrasings, held-out variants, noun phrases (fusion.language.verbalize). No
database."""

from __future__ import annotations

from fusion.language.verbalize import (
    FRAMES,
    HELD_OUT_FRAMES,
    HELD_OUT_PHRASINGS,
    PHRASINGS,
    action_text,
    action_texts,
    most_common,
    noun,
    noun_phrase,
    phrasing_choices,
    phrasings,
    split_variants,
)


def test_held_out_templates_never_appear_in_training() -> None:
    train_frames = set(split_variants(FRAMES, HELD_OUT_FRAMES, "train"))
    eval_frames = set(split_variants(FRAMES, HELD_OUT_FRAMES, "eval"))
    assert train_frames and eval_frames and not train_frames & eval_frames
    for forwards, backwards in PHRASINGS.values():
        for variants in (forwards, backwards):
            train = set(split_variants(variants, HELD_OUT_PHRASINGS, "train"))
            held = set(split_variants(variants, HELD_OUT_PHRASINGS, "eval"))
            assert held and not train & held


def test_action_texts_in_training_wording_hold_no_held_out_phrasing() -> None:
    # the action vectors (and so the zero-shot prior) are built from these texts: a benchmark
    # of held-out wording builds them from the training phrasings alone, a served model from all
    for rel in PHRASINGS:
        for direction in ("out", "in"):
            texts = action_texts((rel, direction), "train")
            every = action_texts((rel, direction), "all")
            options = phrasings(rel, direction)
            held = {o.replace("{x}", "").strip() for o in options[-HELD_OUT_PHRASINGS:]}
            assert len(texts) == len(options) - HELD_OUT_PHRASINGS
            assert not set(texts) & held and all("{x}" not in t for t in texts)
            assert len(every) == len(options) and held <= set(every) and set(texts) < set(every)
    assert action_texts(("Disease", "stop"), "train") == ["diseases"]
    assert action_texts(("NEW_REL", "out"))[0] == action_text(("NEW_REL", "out"))
    assert action_texts(("RAISE", "in")) == action_texts(("RAISE", "in"), "all")  # the default
    assert "that hike" in action_texts(("RAISE", "in"))


def test_nested_questions_use_right_branching_phrasings() -> None:
    for rel in PHRASINGS:
        for direction in ("out", "in"):
            options = phrasings(rel, direction)
            assert options[-1].endswith("{x}")  # the held-out one fits any hop
            nested = phrasing_choices((rel, direction), "train", nested=True)
            assert len(nested) >= 2 and all(options[i].endswith("{x}") for i in nested)
            assert len(options) - 1 not in nested  # never the held-out one in training
            assert phrasing_choices((rel, direction), "eval", nested=True) == [len(options) - 1]
    # a 1-hop question may use a centre-embedded phrasing ("companies that X controls")
    assert any(not phrasings("CONTROL", "out")[i].endswith("{x}")
               for i in phrasing_choices(("CONTROL", "out"), "train", nested=False))


def test_most_common_breaks_ties_by_name_not_by_insertion_order() -> None:
    from collections import Counter

    assert most_common(Counter(["Person", "Company", "Company", "Person"])) == "Company"
    assert most_common(Counter(["Company", "Person", "Person", "Company"])) == "Company"
    assert most_common(Counter(["Person", "Person", "Company"])) == "Person"
    assert most_common(Counter()) is None


def test_noun_phrase_nests_hops() -> None:
    text = noun_phrase([("ASSOCIATED_WITH", "out"), ("HAS_PHENOTYPE", "out")],
                       ["Disease", "Phenotype"], "Phenotype", "FBN1")
    assert text == "phenotypes of the diseases associated with FBN1"
    assert noun("FinancialInstrument") == "financial instruments"
    assert noun("Company") == "companies"
    assert noun("Kinase") == "kinases"
