"""The zero-shot scorer on small in-memory graphs (fusion.serve.inference). No database."""

from __future__ import annotations

from fusion.language.parse import PathHints, parse_question
from fusion.model.graphdata import DomainGraph
from fusion.serve.retrieval import Caps, MemoryExpander, beam_search


def test_zero_shot_follows_every_hop_the_question_names() -> None:
    # x -IS_A-> p1 -IS_A-> p2 -IS_A-> p3, with children and diseases on the way. A stop on the
    # answer type after hop 1 contradicts a 3-hop parse; if its prior still carried the type
    # bonus, it would take the mass of hops 2 and 3, which "generalize" (MiniLM reads it close
    # to both IS_A directions) leaves uncertain, and the 1-hop path would win (medical zero-shot
    # 3-hop Hits@1 was .55 that way, .72 without)
    from fusion.model.space import ActionSpace
    from fusion.serve.inference import ZeroShotScorer, encode_questions

    nodes = {"x": "Phenotype", "p1": "Phenotype", "p2": "Phenotype", "p3": "Phenotype",
             "c1": "Phenotype", "c2": "Phenotype", "d1": "Disease", "d2": "Disease"}
    graph = DomainGraph("toy", names={u: u for u in nodes}, types=nodes)
    edges = [("x", "IS_A", "p1"), ("p1", "IS_A", "p2"), ("p2", "IS_A", "p3"),
             ("c1", "IS_A", "p1"), ("c2", "IS_A", "p2"), ("d1", "HAS_PHENOTYPE", "x"),
             ("d2", "HAS_PHENOTYPE", "p1")]
    for head, rel, tail in edges:
        graph.adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
        graph.adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    space = ActionSpace.build(["HAS_PHENOTYPE", "IS_A"], ["Disease", "Phenotype"])
    zero_shot = ZeroShotScorer(space)
    expander = MemoryExpander(graph)
    for text, steps, answer in (
        ("Name the phenotypes that generalize the phenotypes that generalize the "
         "phenotypes that generalize [MASK].", 3, "p3"),
        ("Name the phenotypes that generalize the phenotypes that generalize "
         "[MASK].", 2, "p2"),
        ("Name the phenotypes that generalize [MASK].", 1, "p1"),
    ):
        ctx = encode_questions([text])[0]
        hints = PathHints.of(parse_question(text, space.types))
        finals = beam_search(expander, zero_shot.for_question(ctx, expander), [("x", 0.0)], 3,
                             Caps(), hints=hints)
        best = zero_shot.rerank(ctx, finals, expander)[0]
        assert best.steps == (("IS_A", "out"),) * steps and best.answers == [answer]


def test_zero_shot_reads_a_shared_stem_that_minilm_misses() -> None:
    # "specialize" is held out of the "train" wording; MiniLM puts it nearer IS_A read forwards
    # ("that subsume", "that are superclasses of") than backwards ("more specific than")
    from fusion.model.space import ActionSpace
    from fusion.serve import inference
    from fusion.serve.inference import ZeroShotScorer, encode_questions

    nodes = {"x": "Phenotype", "parent": "Phenotype", "child": "Phenotype", "d": "Disease"}
    graph = DomainGraph("toy", names={u: u for u in nodes}, types=nodes)
    for head, rel, tail in (("x", "IS_A", "parent"), ("child", "IS_A", "x"),
                            ("d", "HAS_PHENOTYPE", "x")):
        graph.adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
        graph.adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    space = ActionSpace.build(["HAS_PHENOTYPE", "IS_A"], ["Disease", "Phenotype"],
                              wording="train")
    text = "Which phenotypes specialize [MASK]?"
    ctx = encode_questions([text])[0]
    hints = PathHints.of(parse_question(text, space.types))

    def best_answer() -> list[str]:
        zero_shot = ZeroShotScorer(space)
        expander = MemoryExpander(graph)
        finals = beam_search(expander, zero_shot.for_question(ctx, expander), [("x", 0.0)], 1,
                             Caps(), hints=hints)
        return finals[0].answers

    assert best_answer() == ["child"]
    bonus = inference.LEXICAL_BONUS
    try:
        inference.LEXICAL_BONUS = 0.0
        assert best_answer() == ["parent"]  # MiniLM alone reads it the other way
    finally:
        inference.LEXICAL_BONUS = bonus


def family_space_and_graph():  # type: ignore[no-untyped-def]
    """x's father is f (male); f's spouse m (female); x's child c; c's child g. One entity
    type, as in a plain triples file: no type noun can name a hop."""
    from fusion.model.space import ActionSpace

    nodes = {u: "Person" for u in ("x", "f", "m", "c", "g", "male", "female")}
    graph = DomainGraph("fam", names={u: u for u in nodes}, types=nodes)
    for head, rel, tail in (("x", "parents", "f"), ("f", "gender", "male"),
                            ("f", "spouse", "m"), ("m", "gender", "female"),
                            ("x", "children", "c"), ("c", "children", "g"),
                            ("x", "gender", "female"), ("c", "gender", "male"),
                            ("g", "gender", "male")):
        graph.adj.setdefault(head, {}).setdefault((rel, "out"), []).append(tail)
        graph.adj.setdefault(tail, {}).setdefault((rel, "in"), []).append(head)
    space = ActionSpace.build(["children", "gender", "parents", "spouse"], ["Person"])
    return space, graph


def test_word_alignment_prefers_the_path_whose_hops_the_words_name() -> None:
    from fusion.serve.inference import WordAlignment

    space, _ = family_space_and_graph()
    out = "out"
    words = WordAlignment.of("what is the gender of [MASK] 's dad ?", space)
    assert words is not None
    two = words.path_alignment((("parents", out), ("gender", out)))
    assert two > words.path_alignment((("parents", out),))  # a named hop skipped
    assert two > words.path_alignment((("gender", out),))
    assert two > words.path_alignment((("parents", out), ("gender", out), ("gender", "in")))
    # a word said twice names two hops
    twice = WordAlignment.of("[MASK] 's children 's children ?", space)
    assert twice is not None
    assert twice.path_alignment((("children", out),) * 2) > \
        twice.path_alignment((("children", out),))


def test_zero_shot_reads_the_hop_count_from_the_words_without_type_nouns() -> None:
    from fusion.serve import inference
    from fusion.serve.inference import ZeroShotScorer, encode_questions, zero_shot_hints

    space, graph = family_space_and_graph()
    cases = (("what is the gender of [MASK] 's dad ?", "male"),
             ("who is the wife of [MASK] 's father ?", "m"),
             ("[MASK] 's children 's children ?", "g"),
             ("who is the father of [MASK] ?", "f"))

    def answers() -> list[str]:
        got = []
        for text, _ in cases:
            ctx = encode_questions([text])[0]
            hints = zero_shot_hints(PathHints.of(parse_question(text, space.types)), space)
            zero_shot = ZeroShotScorer(space)
            expander = MemoryExpander(graph)
            finals = beam_search(expander, zero_shot.for_question(ctx, expander),
                                 [("x", 0.0)], 3, Caps(), hints=hints)
            best = zero_shot.rerank(ctx, finals, expander, align=hints.hops is None)[0]
            got.append(best.answers[0] if len(best.answers) == 1 else "several")
        return got

    assert answers() == [answer for _, answer in cases]
    weight = inference.ALIGN_WEIGHT
    try:
        inference.ALIGN_WEIGHT = 0.0  # without the alignment the search's lengths decide
        assert answers() != [answer for _, answer in cases]
    finally:
        inference.ALIGN_WEIGHT = weight


def test_only_an_untyped_graph_leaves_the_hop_count_open() -> None:
    from fusion.model.space import ActionSpace
    from fusion.serve.inference import zero_shot_hints

    text = "what is the gender of [MASK] 's dad ?"
    untyped, _ = family_space_and_graph()
    typed = ActionSpace.build(["gender", "parents"], ["Person", "Gender"])
    assert zero_shot_hints(PathHints.of(parse_question(text, untyped.types)), untyped).hops \
        is None
    assert zero_shot_hints(PathHints.of(parse_question(text, typed.types)), typed).hops == 1
