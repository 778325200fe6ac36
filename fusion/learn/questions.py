"""Multi-hop question generation from relation-path templates, with answers from the graph.

A random walk of 1..3 hops from a topic entity fixes a path (relation, direction per hop) and an
answer type; the answers are *all* entities of that type that the path reaches from the topic
(from every entity that shares the topic's name, since the question cannot tell them apart).
The question is a frame ("Which {np}?") around the path's noun phrase, with one phrasing per
hop. Training questions use the training phrasings and frames only; evaluation questions use the
held-out ones (``fusion.language.verbalize``), so no evaluation template is seen in training.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from fusion.exceptions import TrainingDataError
from fusion.language.linking import (
    STOP_WORDS,
    AliasIndex,
    EntityLinker,
    index_keys,
    names_index,
    normalize,
)
from fusion.language.verbalize import (
    FRAMES,
    HELD_OUT_FRAMES,
    IN,
    OUT,
    Action,
    most_common,
    noun_phrase,
    phrasing_choices,
    split_variants,
)
from fusion.model.graphdata import DomainGraph
from fusion.serve.coordination import coordinate

MAX_ANSWERS = 20
MAX_TOPIC_DEGREE = 400


def alias_index_of(graph: DomainGraph) -> AliasIndex:
    keys: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for uid, name in graph.names.items():
        for key, exact in index_keys(name, graph.aliases.get(uid, [])):
            keys[key].append((uid, exact))
    degrees = {uid: sum(len(v) for v in graph.adj.get(uid, {}).values()) for uid in graph.names}
    return AliasIndex(dict(keys), dict(graph.names), dict(graph.types), degrees)


def _usable_topic(name: str) -> bool:
    words = normalize(name).split()
    return bool(words) and len(name) >= 3 and not all(w in STOP_WORDS for w in words) \
        and len(words) <= 10


def _setting(graph: DomainGraph, split: str
             ) -> tuple[EntityLinker, dict[str, list[str]], list[str], list[str]]:
    """What a generator needs of a graph: an exact linker, the entities by normalised name,
    the usable topics (a short name, at most ``MAX_TOPIC_DEGREE`` links) and the frames of
    ``split``."""
    if split not in ("train", "eval", "all"):
        raise ValueError("split must be 'train', 'eval' or 'all'")
    linker = EntityLinker(None, graph.domain, alias_index_of(graph))
    by_name = names_index(graph.names)
    topics = sorted(
        uid for uid, rels in graph.adj.items()
        if _usable_topic(graph.names.get(uid, ""))
        and sum(len(v) for v in rels.values()) <= MAX_TOPIC_DEGREE
    )
    if not topics:
        raise TrainingDataError(f"domain {graph.domain!r} has no usable topic entity")
    return linker, by_name, topics, split_variants(FRAMES, HELD_OUT_FRAMES, split)


def generate_questions(graph: DomainGraph, per_hop: dict[int, int], split: str,
                       seed: int = 0,
                       exclude: set[tuple[str, tuple[Action, ...], str]] | None = None,
                       max_answers: int = MAX_ANSWERS) -> list[dict[str, Any]]:
    """``per_hop[k]`` questions of k hops with ``split`` 'train', 'eval' (held-out) or 'all'
    templates."""
    rng = random.Random(seed)
    linker, by_name, topics, frames = _setting(graph, split)
    seen = set(exclude or ())

    def attempt(hops: int, topic: str, steps: list[Action],
                mid_types: list[str]) -> dict[str, Any] | None:
        answer_type = mid_types[-1]
        key = (topic, tuple(steps), answer_type)
        if key in seen:
            return None
        same_name = by_name[normalize(graph.names[topic])]
        answers = graph.answers(set(same_name), steps, answer_type, cap=20 * max_answers)
        if not 1 <= len(answers) <= max_answers:
            return None
        _name_intermediate_types(graph, same_name, steps, mid_types)
        choice = [rng.choice(phrasing_choices(s, split, hops > 1, graph.domain))
                  for s in steps]
        name = graph.names[topic]
        text = noun_phrase(steps, mid_types, answer_type, name, choice, graph.domain)
        question = rng.choice(frames).format(np=text)
        mentions = linker.exact(question)
        mentions.sort(key=lambda m: (-(m.end - m.start), -m.score, m.start))
        if not mentions or topic not in {c.uid for c in mentions[0].candidates}:
            return None
        seen.add(key)
        return _row(graph, question, answers, steps, answer_type, hops, split,
                    topic_entities=sorted(same_name), topic_name=name,
                    phrasings=choice)  # index into fusion.language.verbalize.phrasings per hop

    return _draw(graph, rng, topics, per_hop, attempt)


def _draw(graph: DomainGraph, rng: random.Random, pool: list[str], per_hop: dict[int, int],
          attempt: Callable[[int, str, list[Action], list[str]], dict[str, Any] | None],
          ) -> list[dict[str, Any]]:
    """For each hop count, random walks from random ``pool`` entities until ``per_hop[hops]``
    of them made a question (``attempt`` gives it, or None) or too many were tried."""
    out: list[dict[str, Any]] = []
    for hops, wanted in sorted(per_hop.items()):
        made, attempts = 0, 0
        while made < wanted and attempts < 60 * wanted + 200:
            attempts += 1
            topic = rng.choice(pool)
            walked = _walk(graph, rng, topic, hops)
            if walked is None:
                continue
            question = attempt(hops, topic, *walked)
            if question is not None:
                made += 1
                out.append(question)
    return out


def _row(graph: DomainGraph, question: str, answers: Collection[str], steps: list[Action],
         answer_type: str, hops: int, split: str, **topic: Any) -> dict[str, Any]:
    """A generated question with its gold answers and how it was made (a JSONL line of
    ``write_jsonl``); ``topic``: what it says of the entities it names."""
    return {"question": question, "answers": sorted(answers),
            "answer_names": sorted({graph.names[a] for a in answers}), **topic,
            "path": [list(s) for s in steps], "answer_type": answer_type, "hops": hops,
            "split": split}


def _walk(graph: DomainGraph, rng: random.Random, topic: str, hops: int,
          ) -> tuple[list[Action], list[str]] | None:
    """A random simple path of ``hops`` hops from ``topic`` (like the retrieval's): its steps
    and the type of the node after each, or None where the walk ends early."""
    steps: list[Action] = []
    mid_types: list[str] = []
    current = topic
    visited = {topic}
    for _ in range(hops):
        options = sorted(graph.adj.get(current, {}))
        if not options:
            return None
        step = rng.choice(options)
        current = rng.choice(graph.adj[current][step])
        if current in visited:
            return None
        visited.add(current)
        steps.append(step)
        mid_types.append(graph.types[current])
    return steps, mid_types


def _name_intermediate_types(graph: DomainGraph, topics: list[str], steps: list[Action],
                             mid_types: list[str]) -> None:
    """Name the intermediate nodes by their most common type on the path (in place)."""
    reached = set(topics)
    for hop, step in enumerate(steps[:-1]):
        reached = graph.follow(reached, step)
        counts = Counter(graph.types[u] for u in reached)
        mid_types[hop] = most_common(counts) or mid_types[hop]


def coordinated_names(names: list[str], rng: random.Random) -> str:
    """ "A and B", "both A and B", "A, B and C": the topic slot of a coordinated question."""
    if len(names) == 2:
        return rng.choice(["{} and {}", "both {} and {}"]).format(*names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def generate_coordinated_questions(graph: DomainGraph, per_hop: dict[int, int], split: str,
                                   seed: int = 0, topics: int = 2,
                                   max_answers: int = MAX_ANSWERS) -> list[dict[str, Any]]:
    """``per_hop[k]`` questions whose topic slot joins ``topics`` entities by "and" ("Which
    diseases present arachnodactyly and tall stature?"): one path of k hops, asked from each.
    The gold answers are the entities that every topic's path reaches (at least one: the
    other topics are drawn among the entities from which the path reaches an answer of the
    first), which is what ``fusion.serve.coordination`` ranks first for "and"."""
    rng = random.Random(seed)
    linker, by_name, pool, frames = _setting(graph, split)
    usable = set(pool)
    seen: set[tuple[tuple[str, ...], tuple[Action, ...], str]] = set()

    def attempt(hops: int, first: str, steps: list[Action],
                mid_types: list[str]) -> dict[str, Any] | None:
        answer_type = mid_types[-1]
        back = [(rel, IN if direction == OUT else OUT) for rel, direction in reversed(steps)]
        sources = graph.answers(set(graph.answers({first}, steps, answer_type)), back,
                                graph.types[first], cap=50_000)
        names = {normalize(graph.names[first])}
        others = []
        for uid in rng.sample(sorted(sources & usable), min(len(sources & usable), 20)):
            if normalize(graph.names[uid]) not in names:
                names.add(normalize(graph.names[uid]))
                others.append(uid)
            if len(others) == topics - 1:
                break
        if len(others) < topics - 1:
            return None
        chosen = [first] + others
        groups = [by_name[normalize(graph.names[t])] for t in chosen]
        answers: set[str] | None = None
        for group in groups:
            reached = graph.answers(set(group), steps, answer_type, cap=20 * max_answers)
            answers = reached if answers is None else answers & reached
        if not answers or len(answers) > max_answers:
            return None
        key = (tuple(sorted(chosen)), tuple(steps), answer_type)
        if key in seen:
            return None
        _name_intermediate_types(graph, groups[0], steps, mid_types)
        choice = [rng.choice(phrasing_choices(s, split, hops > 1, graph.domain))
                  for s in steps]
        slot = coordinated_names([graph.names[t] for t in chosen], rng)
        question = rng.choice(frames).format(
            np=noun_phrase(steps, mid_types, answer_type, slot, choice, graph.domain))
        mentions = linker.link(question)
        group_found = coordinate(question, mentions)
        if group_found is None or len(group_found.mentions) != topics or any(
                t not in {c.uid for c in m.candidates}
                for t, m in zip(chosen, group_found.mentions, strict=True)):
            return None
        seen.add(key)
        return _row(graph, question, answers, steps, answer_type, hops, split,
                    topic_entities=sorted({u for group in groups for u in group}),
                    topic_names=[graph.names[t] for t in chosen], coordinated=topics)

    return _draw(graph, rng, pool, per_hop, attempt)


def generate_splits(graph: DomainGraph, train_per_hop: int, eval_per_hop: int, seed: int = 0,
                    hops: Iterable[int] = (1, 2, 3),
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training questions (training templates) and evaluation questions (held-out templates,
    and no (topic, path) shared with training)."""
    hops = list(hops)
    train = generate_questions(graph, {h: train_per_hop for h in hops}, "train", seed)
    used = {(q["topic_entities"][0], tuple(tuple(s) for s in q["path"]), q["answer_type"])
            for q in train}
    used |= {(t, tuple(tuple(s) for s in q["path"]), q["answer_type"])
             for q in train for t in q["topic_entities"]}
    evaluation = generate_questions(graph, {h: eval_per_hop for h in hops}, "eval", seed + 1,
                                    exclude=used)
    return train, evaluation


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
            count += 1
    return count


def read_jsonl(path: Path, max_bytes: int = 200 * 1024 * 1024) -> Iterator[dict[str, Any]]:
    """Rows of a QA file; each needs "question" and "answers" (names or uids)."""
    if not path.exists():
        raise TrainingDataError(f"no such file: {path}")
    if path.stat().st_size > max_bytes:
        raise TrainingDataError(f"{path} is larger than {max_bytes} bytes")
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                    or not isinstance(row.get("answers"), list) or not row["answers"]:
                raise TrainingDataError(
                    f"{path}:{number}: each line needs a \"question\" string and a non-empty "
                    "\"answers\" list")
            yield row
