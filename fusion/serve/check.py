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
from functools import lru_cache

import torch

from fusion.language.linking import Mention
from fusion.language.text import cached_vectors, get_text_encoder
from fusion.language.verbalize import IN, OUT, phrasing_choices, phrasings, words
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


def hypotheses(relation: str, domain: str | None = None) -> list[str]:
    """"Y that X presents", "Y with X", ...: every phrasing of the relation (both directions)
    about X and Y, as the served models read them (``fusion.language.verbalize.Wording``)."""
    return [f"Y {options[i].replace('{x}', 'X')}"
            for direction in (OUT, IN) for options in [phrasings(relation, direction, domain)]
            for i in phrasing_choices((relation, direction), "all", False, domain)]


def asked_relations(question: str, pair: Pair, relations: Sequence[str],
                    domain: str | None = None) -> torch.Tensor:
    """``[R]`` probabilities of the relation a yes/no question asks about ("Does X present
    Y?": HAS_PHENOTYPE): the question with X and Y for its entities against the mean of each
    relation's phrasings about X and Y (the same texts for every question, so cached)."""
    groups = [hypotheses(r, domain) for r in relations]
    flat = cached_vectors([t for g in groups for t in g])
    means, at = [], 0
    for g in groups:
        means.append(flat[at:at + len(g)].mean(0))
        at += len(g)
    texts = torch.nn.functional.normalize(torch.stack(means), dim=-1)
    asked = get_text_encoder().encode([placeholders(question, pair)])[0]
    return rank_paths(asked, texts)


# words that carry no relation: auxiliaries, articles and the wh-frame of a yes/no question
_FRAME_WORDS = frozenset(
    "is are was were be been being does do did can could will would may might shall should "
    "that which who the a an it its their there any really actually also".split())
_WORD_RE = re.compile(r"[a-z]+")


def stem(word: str) -> str:
    """A crude stem, the same for a verb's forms: "presents", "presented", "present" ->
    "present"; "controlled", "controls" -> "control"; "causing", "cause" -> "caus"."""
    word = {"has": "have", "had": "have", "having": "have"}.get(word, word)
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # "controll" -> "control"
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def relation_words(text: str) -> list[str]:
    """The stems of the words that may name a relation (no auxiliaries or articles)."""
    return [stem(w) for w in _WORD_RE.findall(text.lower()) if w not in _FRAME_WORDS]


PREPOSITION_STEMS = frozenset(stem(w) for w in (
    "of in on at to for from by with as into onto about over under between among through "
    "than and or not no".split()))


def _asked_words(question: str, pair: Pair) -> list[str]:
    """The relation words of a question about two entities: those after the first one."""
    first, second = sorted([pair.subject, pair.object], key=lambda m: m.start)
    return relation_words(question[first.end:second.start] + " " + question[second.end:])


def _phrasing_words(relation: str, domain: str | None = None
                    ) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """(direction, stems before the slot, stems after it) of every phrasing of ``relation``."""
    return _words_of(tuple((direction, phrasing) for direction in (OUT, IN)
                           for phrasing in phrasings(relation, direction, domain)))


@lru_cache(maxsize=1024)
def _words_of(table: tuple[tuple[str, str], ...]
              ) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """The stems of some phrasings (the same for every question, so read once; keyed by the
    phrasings themselves, so a domain that declares new ones is read anew)."""
    out = []
    for direction, phrasing in table:
        before, _, after = phrasing.partition("{x}")
        out.append((direction, frozenset(relation_words(before)),
                    frozenset(relation_words(after))))
    return tuple(out)


def shared_words(question: str, pair: Pair, relation: str, domain: str | None = None) -> int:
    """The most content words (no prepositions) that the question's relation words share with
    one phrasing of ``relation``: "Is X *in charge of* Y?" shares "charge" with CONTROL's "that
    {x} is in charge of", "Is X a *feature* of Y?" shares "feature" with HAS_PHENOTYPE's "that
    are clinical features of {x}"."""
    asked = set(_asked_words(question, pair)) - PREPOSITION_STEMS
    return max((len(asked & (before | after))
                for _, before, after in _phrasing_words(relation, domain)), default=0)


def asked_direction(question: str, pair: Pair, relation: str, domain: str | None = None
                    ) -> bool | None:
    """Whether a yes/no question asks ``subject -relation-> object`` (True), the reverse
    (False), or its words do not tell (None).

    The words after the first entity ("Does X *present* Y?", "Is X *controlled by* Y?",
    "Is X *a feature of* Y?") are matched with every phrasing of the relation: the one that
    shares the most of them (then the closest, by Jaccard) gives the direction, and two equally
    good phrasings that disagree give none ("associated with" reads both ways). In a phrasing
    whose slot comes before its words ("that {x} presents") the first entity plays the slot;
    in one whose slot follows them ("that present {x}", "controlled by {x}") it plays the
    answer. With the phrasing's direction (forwards: slot -relation-> answer) that says which
    entity is the head."""
    first = min([pair.subject, pair.object], key=lambda m: m.start)
    asked = _asked_words(question, pair)
    if not asked:
        return None
    scored: list[tuple[int, float, bool]] = []
    for direction, before, after in _phrasing_words(relation, domain):
        own = before | after
        shared = len(own & set(asked))
        if not shared:
            continue
        # the slot comes first when no content word precedes it ("that {x} presents", "of
        # which {x} is a part", "with {x} as a capital"); a bare "of {x}" reads as "<answer>
        # of X"
        slot_first = not (before - PREPOSITION_STEMS) and (bool(after - PREPOSITION_STEMS)
                                                            or not before)
        head_is_first = slot_first == (direction == OUT)
        scored.append((shared, shared / len(own | set(asked)), head_is_first))
    if not scored:
        return None
    best = max((n, j) for n, j, _ in scored)
    readings = {head for n, j, head in scored if (n, j) == best}
    if len(readings) != 1:
        return None
    head_is_first = readings.pop()
    # ``pair.subject`` is the first mention in question order
    return head_is_first if first is pair.subject else not head_is_first


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
