"""Entity linking: which entities does a question mention, where, and how surely.

1. An in-memory index of every name and alias of the domain (normalised), matched against the
   question's word n-grams, longest first (exact name 1.0, alias 0.9). One index per domain and
   process, built with one query.
2. Without an exact match, names that start with a whole span of the question ("Apple" for
   Apple Inc., "Goldman" for Goldman Sachs), the best connected entities first; and
   Neo4j full-text (fuzzy) search over names and aliases
   (``GraphStore.search_entities``), each hit aligned to its best-matching span of the question
   and re-scored by string similarity plus MiniLM embedding similarity (paraphrases, typos);
   the better scored of the two is kept.

An ambiguous mention (one name, several entities) keeps all its candidates.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from neo4j import Driver, RoutingControl

from core.errors import InvalidInputError
from fusion.language.verbalize import (
    FRAMES,
    NOUNS,
    PHRASINGS,
    TYPE_SYNONYMS,
    declared,
    declared_type_words,
    declared_version,
    noun,
)
from fusion.model.graphdata import DOMAIN_ENTITIES_QUERY, entity_type
from graph.driver import translate_errors
from graph.store import GraphStore

WORD_RE = re.compile(r"[A-Za-z0-9]+")
MAX_NGRAM = 12
MAX_CANDIDATES = 5
FUZZY_MIN_SCORE = 0.72
# a name matched by its first words scores below an alias of the same length; among the names
# that start so, each candidate's score also falls with the square root of its degree's share
# of the best connected one ("Apple": Apple Inc., 770 links, before Apple Music, 9)
PREFIX_WEIGHT = 0.75
PREFIX_MIN_SHARE = 0.05
# Legal forms that end a company's name: users ask for "Apple", "Tesla", "Goldman Sachs"
# (FinDKG: "Apple Inc.", "Tesla Inc.", "Goldman Sachs Group Inc."). A name is shortened only
# when its last word is one of LEGAL_FORMS; LEGAL_TAILS then go too ("Group Inc.").
LEGAL_FORMS = frozenset("inc incorporated corp corporation ltd limited plc llc lp ag nv gmbh "
                        "spa bhd".split())
LEGAL_TAILS = LEGAL_FORMS | {"co", "company", "group", "holdings", "holding"}

_ENGLISH = """a an the of in on at to for from by with and or is are was were be been do does
did has have had what which who whom whose where when why how list name tell me can could you
please show give find all any some that this these those it its their there than as into about
are many much kind type types entity entities thing things""".split()


def _vocabulary_words() -> set[str]:
    words = set(_ENGLISH)
    texts = list(FRAMES) + list(NOUNS.values())
    for forwards, backwards in PHRASINGS.values():
        texts += forwards + backwards
    for text in texts:
        plain = text.replace("{x}", "").replace("{np}", "")
        words.update(w.lower() for w in WORD_RE.findall(plain))
    return words


STOP_WORDS = frozenset(_vocabulary_words())
# Two characters, capitals or digits, at least one letter: a gene symbol ("F8", "AR") or a
# company's ticker-like name ("BP", "3M"). Shorter words than three are never mentions
# otherwise ("of", "us", "He"); one of this shape links to an entity whose name is written
# exactly so, and only by the exact-name match (before, they went to the fuzzy search, which
# found the same entities on the questions tried but took 20-60 ms).
ACRONYM_RE = re.compile(r"(?=.*[A-Z])[A-Z0-9]{2}")

# Other words for types ("countries", "firms"): a mention of one of them alone is not linked
# (FinDKG holds entities named "Countries" and "Firms", which "Which countries does Huawei
# operate in?" must not link), but they are no stop words inside a longer name ("Down
# syndrome", "Investment Firms").
TYPE_WORDS = frozenset(w for words in TYPE_SYNONYMS.values() for w in words if " " not in w)


def question_word(word: str) -> bool:
    """A stop word, or an inflection of one ("runs", "leads", "caused"): the words around a
    mention that name relations and types rather than the entity."""
    if word in STOP_WORDS or word in TYPE_WORDS:
        return True
    for suffix in ("s", "es", "ed", "d", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and \
                word[:-len(suffix)] in STOP_WORDS:
            return True
    return False


PLURAL_VARIANT_SCORE = 0.95


def singular_last_word(key: str) -> str | None:
    """``key`` (normalised words) with its last word in the singular ("gold prices" -> "gold
    price", "rare earth supplies" -> "rare earth supply"), or None when it does not end like a
    plural."""
    head, _, last = key.rpartition(" ")
    if len(last) < 4 or last.endswith(("ss", "us", "is", "ws")) or not last.endswith("s"):
        return None
    single = last[:-3] + "y" if last.endswith("ies") else last[:-1]
    return f"{head} {single}" if head else single


def normalize(text: str) -> str:
    return " ".join(w.lower() for w in WORD_RE.findall(text))


def names_index(names: Mapping[str, str]) -> dict[str, list[str]]:
    """Uids by normalised name (``normalize``): the one index that training, question
    generation and evaluation look answers given by name up in ("Tesla Inc." -> "tesla inc")."""
    out: dict[str, list[str]] = {}
    for uid, name in names.items():
        out.setdefault(normalize(name), []).append(uid)
    return out


def short_name(key: str) -> str | None:
    """A normalised company name without its legal form ("goldman sachs group inc" ->
    "goldman sachs"), or None when it has none."""
    words = key.split()
    if len(words) < 2 or words[-1] not in LEGAL_FORMS:
        return None
    while len(words) > 1 and words[-1] in LEGAL_TAILS:
        words.pop()
    stem = " ".join(words)
    return stem if len(stem) >= 2 else None


def index_keys(name: str, aliases: list[str]) -> list[tuple[str, bool]]:
    """The normalised keys of one entity, each with whether it is the exact name: the name,
    its aliases, then their short names (``short_name``, as aliases)."""
    keys: list[tuple[str, bool]] = []
    seen: set[str] = set()
    texts = [(normalize(name), True)] + [(normalize(str(a)), False) for a in aliases]
    texts += [(short, False) for key, _ in list(texts) if (short := short_name(key))]
    for key, exact in texts:
        if key and key not in seen:
            seen.add(key)
            keys.append((key, exact))
    return keys


@dataclass
class Candidate:
    """One entity a mention may refer to."""

    uid: str
    name: str
    type: str
    score: float


@dataclass(frozen=True)
class Span:
    """A run of the question's words (one word: a token): lower-cased text and its offsets."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class FuzzyHit:
    """A full-text hit aligned to the span of the question it matches best, and its score."""

    score: float
    candidate: Candidate
    span: Span


@dataclass
class Mention:
    """A span of the question and the entities it may mean, best first."""

    text: str
    start: int
    end: int
    method: str  # "name", "alias", "prefix", "fuzzy"
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0


@dataclass
class AliasIndex:
    """Normalised names and aliases of one domain -> (uid, exact name?)."""

    keys: dict[str, list[tuple[str, bool]]]
    names: dict[str, str]
    types: dict[str, str]
    degrees: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, driver: Driver, database: str, domain: str) -> AliasIndex:
        with translate_errors():
            records, _, _ = driver.execute_query(
                DOMAIN_ENTITIES_QUERY, {"domain": domain}, database_=database,
                routing_=RoutingControl.READ,
            )
        keys: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        names, types, degrees = {}, {}, {}
        for r in records:
            uid = r["uid"]
            names[uid] = r["name"] or uid
            types[uid] = entity_type(r["labels"])
            degrees[uid] = int(r["degree"])
            for key, exact in index_keys(r["name"] or "", list(r["aliases"])):
                keys[key].append((uid, exact))
        return cls(dict(keys), names, types, degrees)

    @cached_property
    def sorted_keys(self) -> list[str]:
        return sorted(self.keys)

    def starting_with(self, words: str) -> list[str]:
        """The entities with a key that starts with the whole words ``words`` (normalised),
        best connected first."""
        keys = self.sorted_keys
        head = words + " "
        uids: set[str] = set()
        for i in range(bisect.bisect_left(keys, head), len(keys)):
            if not keys[i].startswith(head):
                break
            uids.update(uid for uid, _ in self.keys[keys[i]])
        return sorted(uids, key=lambda u: (-self.degrees.get(u, 0), u))

    def same_name(self, uid: str) -> set[str]:
        """The entities whose name is the name of ``uid`` (normalised; ``uid`` included)."""
        name = self.names.get(uid)
        if name is None:
            return {uid}
        return {u for u, exact in self.keys.get(normalize(name), []) if exact} | {uid}


class EntityLinker:
    """Links questions of one domain; keeps the alias index in memory."""

    def __init__(self, store: GraphStore | None, domain: str,
                 index: AliasIndex | None = None) -> None:
        self.store = store
        self.domain = domain
        if index is None:
            if store is None:
                raise ValueError("an EntityLinker needs a store or an alias index")
            index = AliasIndex.load(store.driver, store.database, domain)
        self.index = index
        # the nouns of the domain's own types ("drugs" for Drug): question words here, as the
        # built-in types' nouns are everywhere
        self._type_nouns = frozenset(
            w for t in set(index.types.values()) for w in WORD_RE.findall(noun(t).lower()))
        self._own_words: tuple[int, frozenset[str]] = (-1, frozenset())
        self._relation_phrasings: tuple[str, ...] = ()
        self._relation_type_words: frozenset[str] = frozenset()

    def use_relation_phrasings(self, texts: list[str]) -> None:
        """The phrasings of the domain's relationship types that kgr read from their names
        (``fusion.language.relwords``): their words are question words here too."""
        self._relation_phrasings = tuple(texts)
        self._own_words = (-1, frozenset())

    def use_relation_types(self, types: list[str]) -> None:
        """The domain's relationship types: a span made of their names' words (and stop words)
        only is no exact mention. FinDKG holds entities named after its types
        ("Negative_Impact_On"), and "What does inflation have a negative impact on?" linked
        that one, the longer span, as its topic instead of inflation."""
        self._relation_type_words = frozenset(
            w for t in types for w in normalize(t.replace("_", " ")).split())

    def _domain_words(self) -> frozenset[str]:
        """Words of the phrasings and type words this domain declares
        (``fusion.language.vocabulary``)
        and of ``use_relation_phrasings``, read anew when they change: a migration may declare
        new ones while the linker lives."""
        version = declared_version(self.domain)
        if self._own_words[0] != version:
            table, type_words = declared(self.domain), declared_type_words(self.domain)
            texts = [p for pair in table.values() for side in pair for p in side]
            texts += [w for ws in type_words.values() for w in ws]
            texts += list(self._relation_phrasings)
            self._own_words = (version, frozenset(
                w.lower() for text in texts for w in WORD_RE.findall(text.replace("{x}", " "))))
        return self._own_words[1]

    def question_word(self, word: str) -> bool:
        """``question_word``, or a word of the domain's type nouns and declared vocabulary
        ("Which drugs does Bayer prescribe?": "drugs" and "prescribe" are no part of a name)."""
        if question_word(word) or word in self._type_nouns:
            return True
        own = self._domain_words()
        # either form may be the declared one: "treats" declared, "treat" asked, or the reverse
        return bool(own) and (word in own or any(
            (word.endswith(suffix) and word[:-len(suffix)] in own) or word + suffix in own
            for suffix in ("s", "es", "ed", "d", "ing")))

    def _tokens(self, question: str) -> list[Span]:
        return [Span(m.group().lower(), m.start(), m.end()) for m in WORD_RE.finditer(question)]

    def _scan(self, question: str, skip: Callable[[str], bool],
              match: Callable[[list[Span], int, int, str], Mention | None],
              acronyms: bool = False) -> list[Mention]:
        """The question's word n-grams, longest first and none overlapping a mention found
        before; ``match(tokens, i, n, words)`` makes one a mention (or None). An n-gram of
        ``skip`` words only, or one short word or type word alone, is never a mention; with
        ``acronyms`` a two-character word in capitals is one ("F8", "BP": ``ACRONYM_RE``)."""
        tokens = self._tokens(question)
        found: list[Mention] = []
        taken = [False] * len(tokens)
        for n in range(min(MAX_NGRAM, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                if any(taken[i:i + n]):
                    continue
                words = [t.text for t in tokens[i:i + n]]
                if all(skip(w) for w in words) or (n == 1 and (
                        words[0] in TYPE_WORDS or (len(words[0]) < 3 and not (
                            acronyms and ACRONYM_RE.fullmatch(
                                question[tokens[i].start:tokens[i].end]))))):
                    continue
                mention = match(tokens, i, n, " ".join(words))
                if mention is None:
                    continue
                found.append(mention)
                for k in range(i, i + n):
                    taken[k] = True
        return found

    def exact(self, question: str) -> list[Mention]:
        def match(tokens: list[Span], i: int, n: int,
                  words: str) -> Mention | None:
            hits = self.index.keys.get(words)
            number = 1.0
            if not hits and n >= 2 and (singular := singular_last_word(words)):
                # "gold prices" for Gold Price: a name of several words whose last one the
                # question writes in the plural (one word alone is too often another entity)
                hits, number = self.index.keys.get(singular), PLURAL_VARIANT_SCORE
            start, end = tokens[i].start, tokens[i + n - 1].end
            if hits and len(words) < 3:  # an acronym: only a name written just so ("AR")
                hits = [(uid, exact) for uid, exact in hits
                        if exact and self.index.names[uid] == question[start:end]]
            if not hits:
                return None
            coverage = min(1.0, 0.6 + 0.1 * n)
            candidates = sorted(
                (Candidate(uid, self.index.names[uid], self.index.types[uid],
                           round((1.0 if exact else 0.9) * coverage * number, 4))
                 for uid, exact in hits),
                key=lambda c: (-c.score, c.uid),
            )
            method = "name" if number == 1.0 and any(exact for _, exact in hits) else "alias"
            return Mention(question[start:end], start, end, method, candidates[:MAX_CANDIDATES])

        def skip(word: str) -> bool:
            return word in STOP_WORDS or word in self._relation_type_words

        return self._scan(question, skip, match, acronyms=True)

    def prefix(self, question: str) -> list[Mention]:
        """Spans that the start of a name spells out ("Apple" for Apple Inc.), best connected
        entities first. The words on either side of the span must be question words: in
        "Marfan syndrom" the span "Marfan" is followed by a word of the name (a typo, which
        ``fuzzy`` handles)."""
        def match(tokens: list[Span], i: int, n: int,
                  words: str) -> Mention | None:
            if (i > 0 and not self.question_word(tokens[i - 1].text)) or \
                    (i + n < len(tokens) and not self.question_word(tokens[i + n].text)):
                return None
            uids = self.index.starting_with(words)[:MAX_CANDIDATES]
            if not uids:
                return None
            base = PREFIX_WEIGHT * min(1.0, 0.6 + 0.1 * n)
            best = max(1, self.index.degrees.get(uids[0], 1))
            candidates = [
                Candidate(uid, self.index.names[uid], self.index.types[uid], round(
                    base * max(PREFIX_MIN_SHARE,
                               (self.index.degrees.get(uid, 1) / best) ** 0.5), 4))
                for uid in uids]
            start, end = tokens[i].start, tokens[i + n - 1].end
            return Mention(question[start:end], start, end, "prefix", candidates)

        return self._scan(question, self.question_word, match)

    def fuzzy(self, question: str) -> list[Mention]:
        """Full-text fuzzy hits, aligned to a span and re-scored (string + embedding)."""
        tokens = self._tokens(question)
        content = [t for t in tokens if not self.question_word(t.text)]
        if not content or self.store is None:
            return []
        text = " ".join(t.text for t in content)
        try:
            page = self.store.search_entities(text, domain=self.domain, limit=10, fuzzy=True)
            if not page.items:  # "who runs tesla": no name holds "runs"; any word may match
                page = self.store.search_entities(text, domain=self.domain, limit=10,
                                                  fuzzy=True, any_word=True)
        except InvalidInputError:
            return []
        if not page.items:
            return []
        spans = []
        for i in range(len(tokens)):
            for j in range(i, min(len(tokens), i + MAX_NGRAM)):
                words = [t.text for t in tokens[i:j + 1]]
                if not all(w in STOP_WORDS for w in words):
                    spans.append(Span(" ".join(words), tokens[i].start, tokens[j].end))
        scored: list[FuzzyHit] = []
        for hit in page.items:
            best_ratio, best_span = 0.0, spans[0]
            for text in [hit.name, *hit.aliases]:
                key = normalize(text)
                for span in spans:
                    ratio = difflib.SequenceMatcher(None, key, span.text).ratio()
                    if ratio > best_ratio:
                        best_ratio, best_span = ratio, span
            etype = next(iter(hit.types), "Entity")
            scored.append(FuzzyHit(best_ratio, Candidate(hit.uid, hit.name, etype, best_ratio),
                                   best_span))
        scored = self._embedding_rescore(scored)
        scored = [s for s in scored if s.score >= FUZZY_MIN_SCORE]
        if not scored:
            return []
        scored.sort(key=lambda s: (-s.score, s.candidate.uid))
        top_span = scored[0].span
        candidates = [s.candidate for s in scored if s.span == top_span][:MAX_CANDIDATES]
        for c in candidates:
            c.score = round(0.8 * c.score, 4)  # below any exact match
        return [Mention(question[top_span.start:top_span.end], top_span.start, top_span.end,
                        "fuzzy", candidates)]

    @staticmethod
    def _embedding_rescore(
        scored: list[FuzzyHit],
    ) -> list[FuzzyHit]:
        """Average the string ratio with MiniLM cosine(name, span) (catches paraphrases).
        Names and spans go through the cache of short texts in one batch: the hits of a
        search recur across questions, and two MiniLM passes per question took 40-60 ms."""
        if not scored:
            return scored
        from fusion.language.text import cached_vectors

        vectors = cached_vectors([s.candidate.name for s in scored]
                                 + [s.span.text for s in scored])
        names, spans = vectors[:len(scored)], vectors[len(scored):]
        cosine = (names * spans).sum(-1).tolist()
        return [FuzzyHit(0.5 * s.score + 0.5 * max(0.0, cos), s.candidate, s.span)
                for s, cos in zip(scored, cosine, strict=True)]

    def link(self, question: str, joined: re.Pattern[str] | None = None) -> list[Mention]:
        """Mentions, best first: exact name/alias matches; else names that start with a span
        or fuzzy full-text hits, whichever scores higher ("Apple": no full-text hit scores
        enough, Apple Inc. starts so; "the Fed": the full-text hit US Fed scores above the
        names that start with "Fed", Fed Officials first).

        ``joined`` (``fusion.serve.coordination.SEPARATOR_RE``): a span that starts a name is also a
        mention next to an exact one when only a separator stands between them ("Apple and
        Meta": Apple is a short name, Meta starts Meta Platforms Inc.)."""
        mentions = self.exact(question)
        if mentions and joined is not None:
            mentions += [
                extra for extra in self.prefix(question)
                if not any(extra.start < m.end and m.start < extra.end for m in mentions)
                and any(joined.fullmatch(question[min(extra.end, m.end):max(extra.start, m.start)])
                        for m in mentions)]
        if not mentions:
            starts, fuzzy = self.prefix(question), self.fuzzy(question)
            best = max(starts, key=lambda m: m.score, default=None)
            mentions = starts if best is not None and \
                best.score >= max((m.score for m in fuzzy), default=0.0) else fuzzy
        mentions.sort(key=lambda m: (-(m.end - m.start), -m.score, m.start))
        return of_complement_first(question, mentions)


# "the price of gold", "the capital of France", "the CEO of Tesla": a mention followed by "of"
# and another one names something of that other one, which is what the question is about
OF_LINK_RE = re.compile(r"\s+of\s+(?:the\s+)?", re.IGNORECASE)


def of_complement_first(question: str, mentions: list[Mention]) -> list[Mention]:
    """The mentions with the topic first: when the first (the longest) is followed by "of"
    and another mention, that other one. "What weighs on the price of gold?" linked "price"
    (the entity Price, a longer word than "gold") and answered what weighs on Price."""
    if len(mentions) < 2:
        return mentions
    gap = OF_LINK_RE.match(question, mentions[0].end)
    if gap is None:
        return mentions
    for mention in mentions[1:]:
        if mention.start == gap.end():
            return [mention] + [m for m in mentions if m is not mention]
    return mentions


def mask_question(question: str, mention: Mention | None, mask: str) -> str:
    """The question with the topic mention replaced by ``mask`` (the model reads relations)."""
    if mention is None:
        return question
    return f"{question[:mention.start]}{mask}{question[mention.end:]}"
