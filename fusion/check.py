"""Questions about two named entities: "Does Marfan syndrome present arachnodactyly?", "Is FBN1
associated with Marfan syndrome?", "How is Elon Musk related to Tesla Inc.?".

They ask whether (and how) the graph links the two, not for a list of entities: answered from
the shortest recorded paths between them (``GraphStore.shortest_paths``), ranked by how close
each path's words are to the question's (the zero-shot reading of relation paths), instead of
from a beam search that starts at one mention and treats the other as noise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fusion.linking import Mention
from fusion.text import cached_vectors, get_text_encoder
from fusion.verbalize import IN, OUT, phrasing_choices, phrasings, words
from graph.models import GraphPath

# A yes/no question: it starts with an auxiliary ("Is ...", "Does ...", "Can ..."), but not a
# request ("Can you tell me the genes of X?", "Do you know ...")
YES_NO_RE = re.compile(
    r"^\W*(?:is|are|was|were|does|do|did|has|have|had|can|could|will|would|may|might)\b"
    r"(?!\s+(?:you|u|i|we)\b)", re.IGNORECASE)
# "How is X related to Y?", "What links X and Y?", "the connection between X and Y"
RELATED_RE = re.compile(
    r"^\W*how\s+(?:is|are|was|were)\b.*\b(?:related|connected|linked|tied)\b"
    r"|^\W*what\s+(?:links|connects|relates|ties)\b"
    r"|\b(?:relation|relationship|connection|link|links|association)s?\s+between\b",
    re.IGNORECASE)
PATH_TEMPERATURE = 0.05


@dataclass(frozen=True)
class Pair:
    """The two entities a question asks about, in question order."""

    subject: Mention
    object: Mention


def check_pair(question: str, mentions: Sequence[Mention]) -> Pair | None:
    """The pair a yes/no or "how are X and Y related" question names: its first two mentions
    that do not overlap (each with candidates). None for any other question, or with fewer than
    two such mentions."""
    if not (YES_NO_RE.search(question) or RELATED_RE.search(question)):
        return None
    chosen: list[Mention] = []
    for m in sorted((m for m in mentions if m.candidates), key=lambda m: (m.start, -m.end)):
        if all(m.start >= c.end or m.end <= c.start for c in chosen):
            chosen.append(m)
        if len(chosen) == 2:
            return Pair(chosen[0], chosen[1])
    return None


def placeholders(question: str, pair: Pair) -> str:
    """The question with its two entities as "X" and "Y": "Does X present Y?"."""
    spans = sorted([(pair.subject.start, pair.subject.end, "X"),
                    (pair.object.start, pair.object.end, "Y")])
    out, at = [], 0
    for start, end, name in spans:
        out += [question[at:start], name]
        at = end
    return "".join(out + [question[at:]])


def hypotheses(relation: str) -> list[str]:
    """"Y that X presents", "Y with X", ...: the relation's training phrasings (both
    directions) about X and Y, never a held-out one."""
    return [f"Y {options[i].replace('{x}', 'X')}"
            for direction in (OUT, IN) for options in [phrasings(relation, direction)]
            for i in phrasing_choices((relation, direction), "train", nested=False)]


def asked_relations(question: str, pair: Pair, relations: Sequence[str]) -> torch.Tensor:
    """``[R]`` probabilities of the relation a yes/no question asks about ("Does X present
    Y?": HAS_PHENOTYPE): the question with X and Y for its entities against the mean of each
    relation's phrasings about X and Y (the same texts for every question, so cached)."""
    groups = [hypotheses(r) for r in relations]
    flat = cached_vectors([t for g in groups for t in g])
    means, at = [], 0
    for g in groups:
        means.append(flat[at:at + len(g)].mean(0))
        at += len(g)
    texts = torch.nn.functional.normalize(torch.stack(means), dim=-1)
    asked = get_text_encoder().encode([placeholders(question, pair)])[0]
    return rank_paths(asked, texts)


def path_text(path: GraphPath) -> str:
    """"Marfan syndrome has phenotype Arachnodactyly": each relationship as its words between
    its own ends (in its stored direction)."""
    names = {n.uid: n.name for n in path.nodes}
    return "; ".join(f"{names.get(r.source, r.source)} {words(r.type)} "
                     f"{names.get(r.target, r.target)}" for r in path.relations)


def rank_paths(question: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Probabilities over candidate paths: softmax of cosine(question, path text) / T.
    ``question: [384]`` and ``texts: [P, 384]`` (unit vectors) -> ``[P]``."""
    return torch.softmax(texts @ question / PATH_TEMPERATURE, dim=0)
