"""Words for relation paths: type nouns and several phrasings per (relation, direction).

A phrasing is a post-modifier of the answer noun with ``{x}`` for the inner noun phrase, e.g.
``HAS_PHENOTYPE`` read forwards: "phenotypes *of {x}*". The last phrasing of each list and the
last question frames are held out of training (used only for evaluation); the last phrasing
ends with ``{x}`` so that it can be used in any hop of a nested question.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from fusion.language.relwords import read_name

OUT, IN, STOP = "out", "in", "stop"
Action = tuple[str, str]  # (relation type, "out" | "in") or (entity type, "stop")
# Which phrasings a model learns from. "train": all but the held-out ones, so that generated
# questions in the held-out wording measure wording the model has not seen (the benchmarks);
# "all": every phrasing, for the models kgr serves (a served model that never saw "that cause"
# or "hiked by" misreads "Which genes cause X?" and "What did the ECB hike?" for no reason but
# the benchmark's split).
Wording = Literal["train", "all"]

# relation -> (phrasings read forwards: x -REL-> answer, read backwards: answer -REL-> x)
PHRASINGS: dict[str, tuple[list[str], list[str]]] = {
    # medical (HPO)
    "HAS_PHENOTYPE": (
        ["of {x}", "that {x} presents", "seen in {x}", "that are signs of {x}",
         "observed in {x}", "that are clinical features of {x}"],
        ["that present {x}", "with {x}", "having {x} as a feature", "that show {x}",
         "that manifest {x}", "characterized by {x}"],
    ),
    "IS_A": (
        ["that {x} is a kind of", "that are parents of {x}", "broader than {x}",
         "that are ancestors of {x}", "that subsume {x}", "that are superclasses of {x}",
         "that generalize {x}"],
        ["that are a kind of {x}", "that are subtypes of {x}", "more specific than {x}",
         "that are descendants of {x}", "that are narrower than {x}",
         "that are subclasses of {x}", "that specialize {x}"],
    ),
    "ASSOCIATED_WITH": (
        ["associated with {x}", "linked to {x}", "that {x} is implicated in",
         "related to the gene {x}", "in which a role is played by {x}",
         "caused by mutations in {x}"],
        ["associated with {x}", "linked to {x}", "implicated in {x}", "involved in {x}",
         "that are risk genes for {x}", "that cause {x}"],
    ),
    "ASSOCIATED_PHENOTYPE": (
        ["associated with the gene {x}", "linked to the gene {x}", "that {x} is related to",
         "connected to the gene {x}", "tied to the gene {x}", "resulting from variants in {x}"],
        ["associated with the phenotype {x}", "related to {x}", "that underlie {x}",
         "involved in the phenotype {x}", "linked to the phenotype {x}",
         "that contribute to {x}"],
    ),
    # finance (FinDKG)
    "RELATE_TO": (
        ["related to {x}", "that {x} relates to", "connected with {x}", "associated with {x}",
         "that concern {x}", "linked with {x}"],
        ["that relate to {x}", "that are related to {x}", "connected to {x}", "that concern {x}",
         "relevant to {x}", "tied to {x}"],
    ),
    "CONTROL": (
        ["controlled by {x}", "that {x} controls", "that {x} is in charge of", "run by {x}",
         "managed by {x}", "governed by {x}", "directed by {x}", "led by {x}"],
        ["that control {x}", "in control of {x}", "that run {x}", "that manage {x}",
         "that govern {x}", "that direct {x}", "that lead {x}"],
    ),
    "OPERATE_IN": (
        ["that {x} operates in", "where {x} operates", "that host operations of {x}",
         "that are markets of {x}", "that are active regions of {x}",
         "where business is done by {x}"],
        ["that operate in {x}", "operating in {x}", "active in {x}", "with operations in {x}",
         "present in {x}", "doing business in {x}"],
    ),
    "IMPACT": (
        ["impacted by {x}", "that {x} impacts", "affected by {x}", "shaped by {x}",
         "moved by {x}", "influenced by {x}"],
        ["that impact {x}", "impacting {x}", "that affect {x}", "that shape {x}",
         "that move {x}", "that influence {x}"],
    ),
    "HAS": (
        ["that {x} has", "held by {x}", "that {x} owns", "owned by {x}", "kept by {x}",
         "in the possession of {x}"],
        ["that have {x}", "having {x}", "that hold {x}", "that own {x}", "that keep {x}",
         "that possess {x}"],
    ),
    "NEGATIVE_IMPACT_ON": (
        ["negatively impacted by {x}", "that {x} hurts", "harmed by {x}", "damaged by {x}",
         "hit by {x}", "weighed down by {x}"],
        ["that negatively impact {x}", "that hurt {x}", "that harm {x}", "that damage {x}",
         "that hit {x}", "that weigh on {x}"],
    ),
    "RAISE": (
        ["raised by {x}", "that {x} raises", "increased by {x}", "lifted by {x}",
         "pushed up by {x}", "hiked by {x}"],
        ["that raise {x}", "raising {x}", "that increase {x}", "that lift {x}",
         "that push up {x}", "that hike {x}"],
    ),
    "IS_MEMBER_OF": (
        ["that {x} is a member of", "that {x} belongs to", "whose members include {x}",
         "with the member {x}", "that include {x}", "that count among their members {x}"],
        ["that are members of {x}", "in the membership of {x}", "that belong to {x}",
         "that are part of {x}", "that sit in {x}", "that are enrolled in {x}"],
    ),
    "PARTICIPATES_IN": (
        ["that {x} participates in", "that {x} takes part in", "involving {x}",
         "with the participation of {x}", "attended by {x}", "engaging {x}", "that feature {x}"],
        ["that participate in {x}", "taking part in {x}", "involved in {x}", "that attend {x}",
         "that engage in {x}", "that join {x}"],
    ),
    "ANNOUNCE": (
        ["announced by {x}", "that {x} announces", "declared by {x}", "revealed by {x}",
         "disclosed by {x}", "made public by {x}"],
        ["that announce {x}", "announcing {x}", "that declared {x}", "that reveal {x}",
         "that disclose {x}", "that unveil {x}"],
    ),
    "INVESTS_IN": (
        ["that {x} invests in", "funded by {x}", "backed by investment from {x}",
         "financed by {x}", "bankrolled by {x}", "that received money from {x}"],
        ["that invest in {x}", "investing in {x}", "that fund {x}", "that finance {x}",
         "that bankroll {x}", "that put money into {x}"],
    ),
    "PRODUCE": (
        ["produced by {x}", "that {x} produces", "made by {x}", "built by {x}", "created by {x}",
         "manufactured by {x}"],
        ["that produce {x}", "producing {x}", "that make {x}", "that build {x}",
         "that create {x}", "that manufacture {x}"],
    ),
    "INTRODUCE": (
        ["introduced by {x}", "that {x} introduces", "launched by {x}", "brought in by {x}",
         "put in place by {x}", "rolled out by {x}"],
        ["that introduce {x}", "introducing {x}", "that launched {x}", "that bring in {x}",
         "that put in place {x}", "that roll out {x}"],
    ),
    "DECREASE": (
        ["decreased by {x}", "that {x} decreases", "reduced by {x}", "lowered by {x}",
         "pushed down by {x}", "cut by {x}"],
        ["that decrease {x}", "reducing {x}", "that lower {x}", "that push down {x}",
         "that shrink {x}", "that cut {x}"],
    ),
    "POSITIVE_IMPACT_ON": (
        ["positively impacted by {x}", "that {x} benefits", "boosted by {x}", "supported by {x}",
         "strengthened by {x}", "helped by {x}"],
        ["that positively impact {x}", "that benefit {x}", "that boost {x}", "that support {x}",
         "that strengthen {x}", "that help {x}"],
    ),
}

NOUNS: dict[str, str] = {
    "Disease": "diseases", "Phenotype": "phenotypes", "Gene": "genes",
    "Person": "people", "Company": "companies", "Organization": "organizations",
    "Government": "governments", "Regulator": "regulators", "Place": "places",
    "Sector": "sectors", "Event": "events", "Concept": "concepts", "Product": "products",
    "FinancialInstrument": "financial instruments", "EconomicIndicator": "economic indicators",
}

# Other words people use for a type in questions ("Which disorders ...", "Which firms ...").
# Only the parse reads them (``fusion.language.parse.type_words``); the question generator keeps to
# ``NOUNS``, so generated questions parse as before. None of them occurs in a phrasing (a unit
# test checks it): "features" or "signs" would turn "phenotypes that are signs of X" into two
# hops.
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Disease": ("disorders", "disorder", "conditions", "condition", "illnesses", "illness",
                "syndromes", "syndrome"),
    "Phenotype": ("symptoms", "symptom", "abnormalities", "abnormality", "traits", "trait",
                  "manifestations", "manifestation", "phenotypic abnormalities",
                  "clinical signs", "clinical sign", "clinical findings"),
    "Company": ("firms", "firm", "corporations", "corporation", "businesses"),
    "Person": ("executives", "executive", "individuals", "persons"),
    "Place": ("countries", "country", "nations", "nation", "cities", "city"),
    "Organization": ("organisations", "organisation", "groups", "group", "institutions",
                     "institution"),
    "Regulator": ("watchdogs", "watchdog", "supervisors", "supervisor"),
    "Product": ("goods",),
    "FinancialInstrument": ("securities", "assets"),
    "EconomicIndicator": ("indicators", "indicator"),
}

# Question frames around the answer noun phrase; the last two are held out of training.
FRAMES = ["Which {np}?", "What are the {np}?", "List the {np}.", "Name the {np}.",
          "Can you tell me the {np}?"]
HELD_OUT_FRAMES = 2
HELD_OUT_PHRASINGS = 1


def words(identifier: str) -> str:
    """``ASSOCIATED_WITH`` -> "associated with"; ``FinancialInstrument`` -> "financial instrument"
    (words, lower case)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier).replace("_", " ")
    return spaced.lower().strip()


def noun(entity_type: str) -> str:
    if entity_type in NOUNS:
        return NOUNS[entity_type]
    base = words(entity_type)
    if base.endswith("y") and not base.endswith(("ay", "ey", "oy", "uy")):
        return base[:-1] + "ies"
    return base if base.endswith("s") else base + "s"


# Phrasings a domain declares for its relationship types (a load's ``phrasings:``, kept in the
# graph and read by ``fusion.language.vocabulary``): domain -> relation -> (forwards, backwards), an
# empty list where a direction is not declared. They come first, in that domain only.
_declared: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
_declared_versions: dict[str, int] = {}


def declared_version(domain: str | None) -> int:
    """Changes whenever ``domain``'s declarations are set anew (for caches built from them)."""
    return _declared_versions.get(domain or "", 0)


def declare(domain: str, table: dict[str, tuple[list[str], list[str]]]) -> None:
    """Make ``table`` the declared phrasings of ``domain`` (replacing what it declared before)."""
    _declared[domain] = {rel: (list(f), list(b)) for rel, (f, b) in table.items()}
    _declared_versions[domain] = _declared_versions.get(domain, 0) + 1


def declared(domain: str | None) -> dict[str, tuple[list[str], list[str]]]:
    return _declared.get(domain or "", {})


def _declared_for(rel: str, direction: str, domain: str | None) -> list[str]:
    """The phrasings ``domain`` declares for one direction of ``rel`` (empty: none)."""
    own = _declared.get(domain or "", {}).get(rel)
    return [] if own is None else own[0 if direction == OUT else 1]


# Other words for entity types that domains declare (a load's ``type_words:``): domain -> type
# -> words. The parse of that domain's questions reads them beside ``TYPE_SYNONYMS``.
_declared_type_words: dict[str, dict[str, list[str]]] = {}


def declare_type_words(domain: str, table: dict[str, list[str]]) -> None:
    """Make ``table`` the declared type words of ``domain`` (replacing what it declared)."""
    _declared_type_words[domain] = {t: [w.lower() for w in ws] for t, ws in table.items()}
    _declared_versions[domain] = _declared_versions.get(domain, 0) + 1


def declared_type_words(domain: str | None) -> dict[str, list[str]]:
    return {t: list(ws) for t, ws in _declared_type_words.get(domain or "", {}).items()}


def extra_type_words(entity_type: str, domain: str | None) -> list[str]:
    """The words ``domain`` declares for ``entity_type``, beside ``TYPE_SYNONYMS``."""
    return list(_declared_type_words.get(domain or "", {}).get(entity_type, ()))


PhrasingSource = Literal["declared", "built-in", "name", "frames"]


def phrasing_source(rel: str, direction: str, domain: str | None = None) -> PhrasingSource:
    """Where ``phrasings(rel, direction, domain)`` come from: the domain's declaration, kgr's
    own table, the type's name read as English (``fusion.language.relwords``), or fixed frames
    around
    its words (a name of no known shape: worth declaring phrasings for)."""
    if _declared_for(rel, direction, domain):
        return "declared"
    if rel in PHRASINGS:
        return "built-in"
    return "name" if _derived(rel) is not None else "frames"


def phrasing_table(relations: Sequence[str], domain: str | None = None
                   ) -> dict[str, list[list[str]]]:
    """relation -> [forward phrasings, backward phrasings] as ``domain`` reads them now (what a
    checkpoint records, to tell later whether its domain's phrasings have changed since)."""
    return {rel: [phrasings(rel, OUT, domain), phrasings(rel, IN, domain)]
            for rel in sorted(relations)}


def phrasings(rel: str, direction: str, domain: str | None = None) -> list[str]:
    """All phrasings of one hop (the last ``HELD_OUT_PHRASINGS`` are for evaluation only): those
    ``domain`` declares, else kgr's own, else read from the name, else fixed frames."""
    own = _declared_for(rel, direction, domain)
    if own:
        return own
    if rel in PHRASINGS:
        forwards, backwards = PHRASINGS[rel]
        return forwards if direction == OUT else backwards
    derived = _derived(rel)
    if derived is not None:
        return derived[0] if direction == OUT else derived[1]
    return generic_phrasings(rel, direction)


@lru_cache(maxsize=4096)
def _derived(rel: str) -> tuple[list[str], list[str]] | None:
    """Phrasings read from the name of a relation kgr has none for
    (``fusion.language.relwords``)."""
    shape, pair = read_name(rel)
    return PHRASINGS["IS_A"] if shape == "is-a" else pair


def generic_phrasings(rel: str, direction: str) -> list[str]:
    """Phrasings of a relation whose name has no known shape (``fusion.language.relwords``): its
    words
    in fixed frames ("that {x} spouse", "with a spouse link to {x}")."""
    w = words(rel)
    if direction == OUT:
        return [f"that {{x}} {w}", f"{w} by {{x}}", f"that are {w} targets of {{x}}",
                f"with a {w} link from {{x}}"]
    return [f"that {w} {{x}}", f"linked to {{x}} by {w}", f"with a {w} link to {{x}}",
            f"having {w} towards {{x}}"]


def phrasing_choices(step: Action, split: str, nested: bool, domain: str | None = None
                     ) -> list[int]:
    """Indexes into ``phrasings(*step)`` usable for a question of ``split`` ('train': all but
    the held-out ones, 'eval': those, 'all': every one). In a question of
    several hops (``nested``) only phrasings that end with the inner noun phrase are used
    ("phenotypes of the diseases associated with X"): centre-embedded ones ("companies that
    the people related to X control") stay in 1-hop questions, where they read naturally."""
    options = phrasings(*step, domain)
    held = HELD_OUT_PHRASINGS if len(options) > HELD_OUT_PHRASINGS else 0
    pool = list(range(len(options) - held)) if split == "train" else \
        list(range(len(options) - held, len(options)))
    if split == "all":
        pool = list(range(len(options)))
    if nested:
        right = [i for i in pool if options[i].endswith("{x}")]
        pool = right or pool
    return pool


def split_variants(variants: Sequence[str], held_out: int, split: str) -> list[str]:
    """``split`` is 'train' (all but the last ``held_out``), 'eval' (those) or 'all'."""
    if split == "all" or len(variants) <= held_out:
        return list(variants)
    return list(variants[:-held_out]) if split == "train" else list(variants[-held_out:])


def action_text(action: Action) -> str:
    """Short text for one action (its first phrasing, or the type's noun)."""
    return action_texts(action)[0]


def action_texts(action: Action, wording: Wording = "all", domain: str | None = None
                 ) -> list[str]:
    """The texts that describe one action: every phrasing of ``wording`` of a hop without its
    slot (with "train", never a held-out one), or the type's noun for a stop. ``ActionSpace``
    embeds their mean: one phrasing alone is a poor anchor for verbs it does not use (a
    held-out "that cut" is nearer the mean of "decreased by / reduced by / lowered by ..."
    than any single one)."""
    name, kind = action
    if kind == STOP:
        return [noun(name)]
    options = phrasings(name, kind, domain)
    return [options[i].replace("{x}", "").replace("  ", " ").strip()
            for i in phrasing_choices(action, wording, nested=False, domain=domain)]


def most_common(counts: Counter[str]) -> str | None:
    """The most frequent key, ties to the first name: ``Counter.most_common`` breaks ties by
    insertion order, which for keys read from a set changes with each process's string hash
    seed (it made the generated finance questions differ from run to run)."""
    return min(counts, key=lambda k: (-counts[k], k)) if counts else None


def noun_phrase(steps: Sequence[Action], mid_types: Sequence[str], answer_type: str,
                topic: str, choice: Sequence[int] | None = None, domain: str | None = None
                ) -> str:
    """The answer noun phrase of a path: "phenotypes of the diseases associated with FBN1".

    ``mid_types[i]`` is the type named for the nodes after hop i (the last is the answer type);
    ``choice[i]`` picks the phrasing of hop i (default: the first).
    """
    inner = topic
    for hop, (rel, direction) in enumerate(steps):
        options = phrasings(rel, direction, domain)
        phrase = options[(choice[hop] if choice else 0) % len(options)]
        head = noun(answer_type if hop == len(steps) - 1 else mid_types[hop])
        inner = f"{head} {phrase.replace('{x}', inner)}"
        if hop < len(steps) - 1:
            inner = f"the {inner}"
    return inner
