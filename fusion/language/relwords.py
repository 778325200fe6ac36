"""Phrasings for the relationship types of a user's own graph, read from their names.

kgr ships hand-written phrasings for the built-in domains
(``fusion.language.verbalize.PHRASINGS``). A
graph loaded by a user has its own types (``TREATS``, ``CAPITAL_OF``, ``LOCATED_IN``,
``COMPETES_WITH``, ``HAS_PART``, ``ISA``, ...), and the zero-shot scorer, the question generator
and the yes/no check read every relation only through its phrasings. Most names say how to read
them, by their shape:

- a verb, maybe with a particle or an object word: ``TREATS``, ``CARRIES_OUT``, ``ACQUIRED``;
- a verb and a preposition: ``COMPETES_WITH``, ``OCCURS_IN``, ``ASSESSES_EFFECT_OF``;
- a state of the head: a participle, adjective or noun and a preposition: ``LOCATED_IN``,
  ``FOUNDED_BY``, ``ADJACENT_TO``, ``CAPITAL_OF``, ``PART_OF`` (also after "is": ``IS_PART_OF``);
- a possession: ``HAS_PART``, ``HAS_SUBSIDIARY``;
- "is a": ``ISA``, ``IS_A`` (the built-in ``IS_A`` phrasings).

``read_name`` writes phrasings of that shape in the form of ``PHRASINGS`` (``{x}`` the
inner noun phrase; forwards: x -REL-> answer, backwards: answer -REL-> x; the last one is the
held-out one and ends with ``{x}`` where the shape has such a phrasing), or returns None for a
name of no known shape. The English is rule-based (regular inflection plus a table of irregular
verbs), so it is a good first reading, not a hand-written one.
"""

from __future__ import annotations

import re

PREPOSITIONS = frozenset(
    "of in into on onto at to for from by with about as over under within without against "
    "toward towards between among through across behind near via upon".split())
PARTICLES = frozenset("out up down off away back".split())
# verbs whose passive reads badly ("occurred in by X"): their forward phrasings front the
# preposition instead ("in which X occurs")
INTRANSITIVE = frozenset(
    "occur co-occur belong consist live work reside exist happen arise originate lie sit stem "
    "result emerge appear die come go fall rank serve differ react respond".split())
IRREGULAR_PARTICIPLES = {
    "make": "made", "build": "built", "hold": "held", "lead": "led", "run": "run",
    "write": "written", "give": "given", "take": "taken", "know": "known", "sell": "sold",
    "buy": "bought", "find": "found", "pay": "paid", "keep": "kept", "bring": "brought",
    "teach": "taught", "catch": "caught", "think": "thought", "seek": "sought", "send": "sent",
    "spend": "spent", "lend": "lent", "mean": "meant", "tell": "told", "say": "said",
    "hide": "hidden", "choose": "chosen", "drive": "driven", "draw": "drawn", "grow": "grown",
    "throw": "thrown", "wear": "worn", "tear": "torn", "bind": "bound", "wind": "wound",
    "stick": "stuck", "strike": "struck", "hang": "hung", "spin": "spun", "win": "won",
    "lose": "lost", "leave": "left", "feel": "felt", "deal": "dealt", "feed": "fed",
    "meet": "met", "read": "read", "set": "set", "cut": "cut", "put": "put", "hit": "hit",
    "split": "split", "spread": "spread", "shut": "shut", "beat": "beaten", "break": "broken",
    "freeze": "frozen", "steal": "stolen", "speak": "spoken", "weave": "woven",
    "forget": "forgotten", "get": "got", "begin": "begun", "do": "done", "go": "gone",
    "eat": "eaten", "fall": "fallen", "rise": "risen", "ride": "ridden", "bite": "bitten",
    "see": "seen", "show": "shown", "have": "had", "become": "become", "come": "come",
    "understand": "understood", "stand": "stood", "sit": "sat", "fight": "fought",
    "light": "lit", "dig": "dug", "swing": "swung", "sleep": "slept", "bear": "borne",
    "undergo": "undergone", "overcome": "overcome", "withdraw": "withdrawn",
}
# participles that do not end in -ed and are not in the table above (``FOUNDED_BY`` ends in -ed)
STATE_PARTICIPLES = frozenset(IRREGULAR_PARTICIPLES.values()) | {"born"}
# a consonant-vowel-consonant end whose last syllable is stressed doubles its consonant
DOUBLING = frozenset(
    "occur co-occur refer prefer admit commit control permit regret transfer submit equip "
    "stop plan ship drop grab tag map pin rob run hit cut set put sit get win begin swim spin "
    "dig".split())
# adjectives that name a state of the head ("ADJACENT_TO", "SIMILAR_TO"); an ending alone is a
# poor guide ("ingredient", "parent", "capital", "subsidiary" are nouns)
ADJECTIVES = frozenset(
    "adjacent similar equivalent identical close next near relevant responsible parallel "
    "opposite analogous homologous orthologous paralogous complementary subordinate superior "
    "inferior prior previous subsequent dependent independent specific sensitive resistant "
    "susceptible allergic toxic native endemic local equal opposed proximal distal "
    "contiguous".split())
ADJECTIVE_ENDINGS = ("ous", "ible", "able")
IS_A_NAMES = frozenset({"isa", "is a", "is an", "is kind of", "is a kind of", "kind of"})


def name_words(relation: str) -> list[str]:
    """``CARRIES_OUT`` -> ["carries", "out"]; ``locatedIn`` -> ["located", "in"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", relation)
    return [w for w in re.split(r"[_\s]+", spaced.lower()) if w]


def third_person(word: str) -> bool:
    """"treats", "carries", "co-occurs" (not "process", "status", "analysis")."""
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


IRREGULAR_BASES = {"has": "have", "does": "do", "is": "are", "was": "were"}


def base_form(word: str) -> str:
    """The plural-subject form of a present-tense verb: "carries" -> "carry", "assesses" ->
    "assess", "diagnoses" -> "diagnose", "treats" -> "treat", "has" -> "have"; other forms
    ("hurt", "raised", "focus") as they are."""
    if word in IRREGULAR_BASES:
        return IRREGULAR_BASES[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes", "oes")):
        return word[:-2]
    return word[:-1] if third_person(word) else word


def _doubles(base: str) -> bool:
    return base in DOUBLING or base.split("-")[-1] in DOUBLING


def participle(base: str) -> str:
    """"treat" -> "treated", "carry" -> "carried", "make" -> "made", "occur" -> "occurred"."""
    last = base.split("-")[-1]
    if last in IRREGULAR_PARTICIPLES:
        return base[:len(base) - len(last)] + IRREGULAR_PARTICIPLES[last]
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and len(base) > 2 and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    if _doubles(base):
        return base + base[-1] + "ed"
    return base + "ed"


def gerund(base: str) -> str:
    """"treat" -> "treating", "cause" -> "causing", "carry" -> "carrying", "lie" -> "lying"."""
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")) and len(base) > 2:
        return base[:-1] + "ing"
    if _doubles(base):
        return base + base[-1] + "ing"
    return base + "ing"


def is_participle(word: str) -> bool:
    return (len(word) > 4 and word.endswith("ed")) or word in STATE_PARTICIPLES


def article(phrase: str) -> str:
    """"an ingredient", "a part"."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _verb(verb: str, rest: list[str]) -> tuple[list[str], list[str]]:
    """A verb in the third person ("treats"), then nothing, a particle, a preposition or an
    object word ("carries out", "competes with", "assesses effect of")."""
    base = base_form(verb)
    tail = (" " + " ".join(rest)) if rest else ""
    done, doing = participle(base), gerund(base)
    backward = [f"that {base}{tail} {{x}}", f"{doing}{tail} {{x}}",
                f"that have {done}{tail} {{x}}", f"which {base}{tail} {{x}}"]
    # an intransitive verb, or one with its own object ("assesses effect of"), has no passive
    # that reads well: front the preposition ("in which X occurs")
    if rest and rest[-1] in PREPOSITIONS and (base.split("-")[-1] in INTRANSITIVE
                                             or len(rest) > 1):
        inner = " ".join(rest[:-1])
        forward = [f"that {{x}} {verb}{tail}",
                   f"{rest[-1]} which {{x}} {verb}{(' ' + inner) if inner else ''}"]
        if rest[-1] in ("in", "at") and not inner:
            forward.append(f"where {{x}} {verb}")
        return forward, backward
    forward = [f"that {{x}} {verb}{tail}", f"{done}{tail} by {{x}}", f"which {{x}} {verb}{tail}",
               f"that are {done}{tail} by {{x}}"]
    return forward, backward


def _past(verb: str, rest: list[str]) -> tuple[list[str], list[str]]:
    """A verb in the past ("ACQUIRED", "FOUNDED"), maybe with a particle."""
    tail = (" " + " ".join(rest)) if rest else ""
    forward = [f"that {{x}} {verb}{tail}", f"{verb}{tail} by {{x}}", f"which {{x}} {verb}{tail}",
               f"that were {verb}{tail} by {{x}}"]
    backward = [f"that {verb}{tail} {{x}}", f"that have {verb}{tail} {{x}}",
                f"which {verb}{tail} {{x}}"]
    return forward, backward


def _state(head: list[str], prep: str) -> tuple[list[str], list[str]]:
    """The head is "<head words> <prep>" the tail: "located in", "adjacent to", "capital of"."""
    state = " ".join(head)
    last = head[-1]
    noun = not is_participle(last) and last not in ADJECTIVES \
        and not last.endswith(ADJECTIVE_ENDINGS)
    if noun:
        some = article(state)
        backward = [f"{state} {prep} {{x}}", f"that are {state} {prep} {{x}}",
                    f"that are the {state} {prep} {{x}}", f"serving as {state} {prep} {{x}}",
                    f"that act as {state} {prep} {{x}}"]
        forward = [f"that {{x}} is {some} {prep}", f"{prep} which {{x}} is {some}"]
        if prep == "of":
            forward += [f"that have {{x}} as {some}", f"with {{x}} as {some}",
                        f"whose {state} is {{x}}"]
        return forward, backward
    backward = [f"{state} {prep} {{x}}", f"that are {state} {prep} {{x}}",
                f"which are {state} {prep} {{x}}"]
    forward = [f"that {{x}} is {state} {prep}", f"{prep} which {{x}} is {state}"]
    if prep == "by" and last.endswith("ed"):
        # "founded by": the tail did it ("that founded X")
        forward += [f"that {state} {{x}}"]
    elif prep in ("in", "at"):
        forward += [f"where {{x}} is {state}"]
    return forward, backward


def _possession(noun: list[str]) -> tuple[list[str], list[str]]:
    """``HAS_PART``: the tail is a part of the head."""
    thing = " ".join(noun)
    some = article(thing)
    forward = ["that {x} has", f"that {{x}} has as {some}", f"that are {thing} of {{x}}",
               f"that are the {thing} of {{x}}"]
    backward = [f"that have {{x}} as {some}", f"with {{x}} as {some}",
                f"having {{x}} as {some}", f"whose {thing} is {{x}}"]
    return forward, backward


def read_name(relation: str) -> tuple[str | None, tuple[list[str], list[str]] | None]:
    """The shape of a relationship type's name ("verb", "past", "state", "possession",
    "is-a", or None when none is known) and its (forwards, backwards) phrasings (None for "is-a",
    whose phrasings are the built-in ``IS_A`` ones, and for no shape)."""
    w = name_words(relation)
    if not w:
        return None, None
    if " ".join(w) in IS_A_NAMES:
        return "is-a", None
    if w[0] in ("has", "have") and len(w) > 1 and w[1] not in PREPOSITIONS:
        return "possession", _possession(w[1:])
    if w[0] in ("is", "are", "be") and len(w) > 2 and w[-1] in PREPOSITIONS:
        return "state", _state(w[1:-1], w[-1])
    if third_person(w[0]) and not is_participle(w[0]):
        return "verb", _verb(w[0], w[1:])
    if len(w) > 1 and w[-1] in PREPOSITIONS:
        return "state", _state(w[:-1], w[-1])
    if is_participle(w[0]) and w[0].endswith("ed") and all(x in PARTICLES for x in w[1:]):
        return "past", _past(w[0], w[1:])
    return None, None
