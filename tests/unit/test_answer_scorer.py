"""The answer scorer over entity embeddings (fusion.reasoner.answers): its fast scoring against
a complex-number reference, that it learns answers no path gives, and the fused ranking."""

from __future__ import annotations

import torch

from fusion.reasoner.answers import (
    AnswerScorer,
    AnswerScorerConfig,
    ScorerRow,
    capped,
    choose_weight,
    embedding_probs,
    fit_scorer,
    fuse,
    reference_scores,
    split_rows,
)


def test_forward_matches_the_complex_reference() -> None:
    torch.manual_seed(0)
    model = AnswerScorer(question_dim=12, entity_dim=8, hidden=16)
    questions, entities = torch.randn(3, 12), torch.randn(5, 8)
    heads = entities[[0, 2, 4]]
    assert torch.allclose(model(questions, heads, entities),
                          reference_scores(model, questions, heads, entities), atol=1e-5)


def test_reset_parameters_draws_new_weights() -> None:
    torch.manual_seed(0)
    model = AnswerScorer(4, 6, 8)
    before = model.prior.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.prior.weight)


def test_an_odd_entity_width_is_refused() -> None:
    try:
        AnswerScorer(4, 5)
    except ValueError as err:
        assert "even" in str(err)
    else:
        raise AssertionError("an odd width was accepted")


def _task(n_entities: int = 40, n_rows: int = 300, seed: int = 0
          ) -> tuple[torch.Tensor, torch.Tensor, list[ScorerRow]]:
    """Two kinds of question: "the partner of t" (a relation of the embedding space: the best
    tail of t under a hidden complex relation vector, learnt from the topic) and "the colour"
    (always entity 0, whatever the topic: learnt from the question alone)."""
    gen = torch.Generator().manual_seed(seed)
    entities = torch.randn(n_entities, 16, generator=gen)
    kinds = torch.randn(2, 24, generator=gen)
    hidden = torch.complex(torch.randn(8, generator=gen), torch.randn(8, generator=gen))
    complex_entities = torch.complex(entities[:, :8], entities[:, 8:])
    tails = ((complex_entities * hidden) @ complex_entities.conj().T).real
    tails.fill_diagonal_(float("-inf"))
    partner = tails.argmax(1).tolist()
    vectors, rows = [], []
    for i in range(n_rows):
        kind = i % 2
        topic = int(torch.randint(1, n_entities, (1,), generator=gen))
        vectors.append(kinds[kind] + 0.05 * torch.randn(24, generator=gen))
        rows.append(ScorerRow(i, topic, (partner[topic],) if kind == 0 else (0,)))
    return torch.stack(vectors), entities, rows


def test_the_scorer_learns_answers_from_topic_and_question() -> None:
    vectors, entities, rows = _task()
    train_ids, val_ids = split_rows(len(rows), 0.25, seed=0)
    cfg = AnswerScorerConfig(hidden=64, epochs=40, patience=40, lr=5e-3, batch_size=32)
    fitted = fit_scorer(vectors, [rows[i] for i in train_ids], [rows[i] for i in val_ids],
                        entities, cfg)
    history = fitted.history
    assert history[-1]["loss"] < history[0]["loss"] / 2
    # chance is 1 in 40; the question-only half alone would give 0.5
    assert fitted.metrics["val_hits@1"] > 0.8
    probs = embedding_probs(fitted.model, vectors[:2], torch.tensor([rows[0].topic,
                                                                     rows[1].topic]), entities)
    assert probs.shape == (2, 40) and torch.allclose(probs.sum(1), torch.ones(2))
    assert int(probs[1].argmax()) == 0  # a "colour" question


def test_fuse_ranks_by_the_weight_and_marks_what_only_embeddings_give() -> None:
    uids = ["a", "b", "c", "topic"]
    index = {u: i for i, u in enumerate(uids)}
    embedding = torch.tensor([0.1, 0.6, 0.05, 0.25])
    path = capped({"a": 0.9, "c": 0.3})
    only_paths = fuse(path, embedding, uids, index, weight=1.0, top_k=2)
    assert [f.uid for f in only_paths] == ["a", "c"]
    mixed = fuse(path, embedding, uids, index, weight=0.3, top_k=2,
                 exclude=frozenset({"topic"}))
    assert mixed[0].uid == "b" and not mixed[0].from_path
    assert "topic" not in [f.uid for f in mixed]
    by_uid = {f.uid: f for f in mixed}
    assert abs(by_uid["a"].score - (0.3 * 0.9 + 0.7 * 0.1)) < 1e-6 and by_uid["a"].from_path


def test_the_weight_follows_which_source_is_right() -> None:
    uids = ["a", "b", "c"]
    index = {u: i for i, u in enumerate(uids)}
    cfg = AnswerScorerConfig(top_k=3)
    embeddings = torch.tensor([[0.1, 0.8, 0.1]] * 4)
    paths = [capped({"a": 1.0})] * 4
    no_topic = [frozenset()] * 4
    right_by_path = [frozenset({"a"})] * 4
    weight, table = choose_weight(paths, embeddings, right_by_path, uids, index, cfg, no_topic)
    assert weight == 1.0 and table["1.00"] == 1.0
    right_by_embedding = [frozenset({"b"})] * 4
    weight, table = choose_weight(paths, embeddings, right_by_embedding, uids, index, cfg,
                                  no_topic)
    assert weight < 0.5 and table[f"{weight:.2f}"] == 1.0 and table["1.00"] == 0.0
