"""Entity linking: names, aliases, prefixes and the words around a mention
(fusion.language.linking). No
database."""

from __future__ import annotations

from fusion.language.linking import AliasIndex, EntityLinker, index_keys, mask_question, short_name


def test_linker_prefers_the_longest_match_and_keeps_ambiguity() -> None:
    index = AliasIndex(
        keys={"marfan syndrome": [("m:1", True), ("m:2", True)], "marfan": [("m:3", True)],
              "mfs": [("m:1", False)]},
        names={"m:1": "Marfan syndrome", "m:2": "Marfan syndrome", "m:3": "Marfan"},
        types={"m:1": "Disease", "m:2": "Disease", "m:3": "Gene"},
    )
    linker = EntityLinker(None, "m", index)
    question = "Which genes are associated with Marfan syndrome?"
    mentions = linker.link(question)
    assert len(mentions) == 1
    top = mentions[0]
    assert question[top.start:top.end] == "Marfan syndrome"
    assert {c.uid for c in top.candidates} == {"m:1", "m:2"}
    assert mask_question(question, top, "[MASK]") == "Which genes are associated with [MASK]?"
    # a word for a type alone is no entity mention; inside a longer name it is part of it
    typed = EntityLinker(None, "m", AliasIndex(
        keys={"countries": [("f:1", True)], "huawei": [("f:2", True)],
              "down syndrome": [("m:4", True)]},
        names={"f:1": "Countries", "f:2": "Huawei", "m:4": "Down syndrome"},
        types={"f:1": "Place", "f:2": "Company", "m:4": "Disease"}))
    assert [m.text for m in typed.link("Which countries does Huawei operate in?")] == ["Huawei"]
    assert [m.text for m in typed.link("Which genes cause Down syndrome?")] == ["Down syndrome"]
    alias = linker.link("What does MFS present?")[0]
    assert alias.method == "alias" and alias.candidates[0].uid == "m:1"
    assert linker.link("Which genes are there?") == []


def test_company_short_names_are_aliases() -> None:
    assert short_name("apple inc") == "apple"
    assert short_name("goldman sachs group inc") == "goldman sachs"
    assert short_name("abo blood group") is None  # no legal form at the end
    assert short_name("inc") is None
    keys = index_keys("Tesla Inc.", ["Tesla Motors Inc"])
    assert keys == [("tesla inc", True), ("tesla motors inc", False), ("tesla", False),
                    ("tesla motors", False)]


def test_linker_falls_back_to_names_that_start_with_a_span() -> None:
    keys: dict[str, list[tuple[str, bool]]] = {}
    names = {"f:1": "Apple Inc.", "f:2": "Apple Music", "f:3": "Meta Platforms Inc.",
             "m:1": "Marfan syndrome"}
    for uid, name in names.items():
        for key, exact in index_keys(name, []):
            keys.setdefault(key, []).append((uid, exact))
    index = AliasIndex(keys, names, {u: "Company" for u in names},
                       degrees={"f:1": 770, "f:2": 9, "f:3": 742, "m:1": 15})
    linker = EntityLinker(None, "f", index)
    apple = linker.link("What products has Apple introduced?")
    assert [(m.text, m.method) for m in apple] == [("Apple", "alias")]  # the short name
    music = linker.link("Who owns apple?")  # "Apple Inc." is shortened, so this is an alias
    assert music[0].candidates[0].uid == "f:1"
    meta = linker.link("What did Meta announce?")
    assert [(m.text, m.method) for m in meta] == [("Meta", "prefix")]
    assert meta[0].candidates[0].uid == "f:3"
    # the best connected entity first, and scored higher
    index.keys.pop("apple")
    index.__dict__.pop("sorted_keys", None)
    both = linker.link("Who owns Apple?")[0]
    assert [c.uid for c in both.candidates] == ["f:1", "f:2"]
    assert both.candidates[0].score > both.candidates[1].score > 0
    # a span followed by another word of the name is a typo, not a start: no prefix mention
    assert linker.link("Which genes cause Marfan syndrom?") == []
    assert linker.link("Which genes cause marfan?")[0].candidates[0].uid == "m:1"


def test_the_complement_of_an_of_phrase_is_the_topic() -> None:
    keys: dict[str, list[tuple[str, bool]]] = {}
    names = {"f:1": "Price", "f:2": "Gold", "f:3": "Capital", "f:4": "France",
             "f:5": "Bank of England"}
    for uid, name in names.items():
        for key, exact in index_keys(name, []):
            keys.setdefault(key, []).append((uid, exact))
    linker = EntityLinker(None, "f", AliasIndex(keys, names, {u: "Concept" for u in names}))

    def topic(question: str) -> str:
        first = linker.link(question)[0]
        return question[first.start:first.end]

    # "price" is the longer word, but the question is about gold's price
    assert topic("What weighs on the price of gold?") == "gold"
    assert topic("What has pushed up the price of the gold?") == "gold"
    assert topic("What is the capital of France?") == "France"
    # no "of" between them, or one name that holds "of": the longest mention, as before
    assert topic("Does the price affect gold?") == "price"
    assert topic("Where does the Bank of England operate?") == "Bank of England"


def test_a_domains_own_words_are_question_words_for_linking() -> None:
    from fusion.language.verbalize import declare, declare_type_words

    keys: dict[str, list[tuple[str, bool]]] = {}
    names = {"u:1": "Bayer Healthcare", "u:2": "headache"}
    for uid, name in names.items():
        for key, exact in index_keys(name, []):
            keys.setdefault(key, []).append((uid, exact))
    index = AliasIndex(keys, names, {"u:1": "Manufacturer", "u:2": "Condition"},
                       degrees={"u:1": 5, "u:2": 3})
    linker = EntityLinker(None, "unit-linking", index)
    question = "Which conditions does Bayer treat?"
    # "Bayer" is the start of a name only when the words around it ask rather than name:
    # "treat" is no word kgr knows
    assert linker.link(question) == []
    assert linker.question_word("manufacturers")  # the domain's own type noun
    declare("unit-linking", {"TREATS": (["that {x} treats"], ["that treat {x}"])})
    declare_type_words("unit-linking", {"Manufacturer": ["drugmakers"]})
    try:
        mentions = linker.link(question)
        assert [m.text for m in mentions] == ["Bayer"] and mentions[0].candidates[0].uid == "u:1"
        assert linker.question_word("drugmakers") and linker.question_word("treated")
        assert not linker.question_word("bayer")
        # another domain's linker does not read them
        other = EntityLinker(None, "unit-other", index)
        assert other.link(question) == [] and not other.question_word("drugmakers")
    finally:
        declare("unit-linking", {})
        declare_type_words("unit-linking", {})
    assert linker.link(question) == []
    # phrasings read from the names of the domain's types count the same way
    linker.use_relation_phrasings(["treated by {x}", "that {x} treats"])
    assert [m.text for m in linker.link(question)] == ["Bayer"]


def test_two_character_names_in_capitals_link_exactly() -> None:
    names = {"m:1": "F8", "m:2": "AR", "f:1": "He", "f:2": "3M", "m:3": "Hemophilia A",
             "f:3": "IN", "m:4": "Androgen receptor"}
    keys: dict[str, list[tuple[str, bool]]] = {}
    for uid, name in names.items():
        for key, exact in index_keys(name, ["ar"] if uid == "m:4" else []):
            keys.setdefault(key, []).append((uid, exact))
    linker = EntityLinker(None, "m", AliasIndex(keys, names, {u: "Gene" for u in names}))

    def linked(question: str) -> list[tuple[str, str, list[str]]]:
        return [(m.text, m.method, [c.uid for c in m.candidates]) for m in linker.link(question)]

    # a gene symbol or a company's short name, written as the entity's name is
    assert linked("Which diseases are associated with F8?") == [("F8", "name", ["m:1"])]
    assert linked("What places does 3M operate in?") == [("3M", "name", ["f:2"])]
    # the alias "ar" of another entity is no exact name: only the entity named "AR"
    assert linked("Which diseases are associated with AR?") == [("AR", "name", ["m:2"])]
    # otherwise short words stay out: other casing, a pronoun, digits, a stop word in capitals
    assert linked("Which diseases are associated with f8?") == []
    assert linked("Which companies does He control?") == []
    assert linked("Which genes are associated with 19 diseases?") == []
    assert linked("WHICH GENES ARE IN Hemophilia A?") == [("Hemophilia A", "name", ["m:3"])]


def test_a_span_of_relationship_type_words_is_no_exact_mention() -> None:
    names = {"f:1": "Negative_Impact_On", "f:2": "Inflation", "f:3": "Positive Thinking"}
    keys: dict[str, list[tuple[str, bool]]] = {}
    for uid, name in names.items():
        for key, exact in index_keys(name, []):
            keys.setdefault(key, []).append((uid, exact))
    linker = EntityLinker(None, "f", AliasIndex(keys, names, {u: "Concept" for u in names}))
    question = "What does inflation have a negative impact on?"
    # FinDKG names an entity after a relationship type: the longer span won the topic
    assert [m.text for m in linker.link(question)] == ["negative impact on", "inflation"]
    linker.use_relation_types(["NEGATIVE_IMPACT_ON", "POSITIVE_IMPACT_ON"])
    assert [m.text for m in linker.link(question)] == ["inflation"]
    # a name with other words still links
    assert [m.text for m in linker.link("Who likes Positive Thinking?")] == ["Positive Thinking"]


def test_a_name_of_several_words_links_with_its_last_word_in_the_plural() -> None:
    names = {"f:1": "Gold Price", "f:2": "Gold", "f:3": "Rare Earth Supply", "f:4": "Price",
             "f:5": "Fox New"}
    keys: dict[str, list[tuple[str, bool]]] = {}
    for uid, name in names.items():
        for key, exact in index_keys(name, []):
            keys.setdefault(key, []).append((uid, exact))
    linker = EntityLinker(None, "f", AliasIndex(keys, names, {u: "Concept" for u in names}))

    def linked(question: str) -> list[tuple[str, str, list[tuple[str, float]]]]:
        return [(m.text, m.method, [(c.uid, c.score) for c in m.candidates])
                for m in linker.link(question)]

    # the plural variant scores a little below the name written exactly
    assert linked("What pushed up gold prices?")[0] == ("gold prices", "alias", [("f:1", 0.76)])
    assert linked("What pushed up the gold price?")[0] == ("gold price", "name", [("f:1", 0.8)])
    assert linked("Who cut rare earth supplies?")[0][2] == [("f:3", 0.855)]
    # one word alone keeps to its exact name ("prices" is not Price), and "news" is no plural
    assert [m.text for m in linker.link("Which prices rose?")] == []
    assert [m.text for m in linker.link("What does Fox News report?")] == []
