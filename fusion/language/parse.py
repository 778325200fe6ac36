"""A light parse of a question into its answer type, hop count and one phrase per hop.

Nested questions name a type for each hop ("phenotypes of the diseases associated with [MASK]"):
the first type noun is the answer type, the number of type nouns before the topic the hop
count, and the words after the i-th noun describe hop ``k - i``. The fusion model and the
zero-shot scorer use these as a step-wise text prior; the model learns how far to trust it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from fusion.language.relwords import base_form
from fusion.language.text import cached_vectors
from fusion.language.verbalize import IN, OUT, STOP, words

MAX_STEPS = 4
AUXILIARIES = {"are", "is", "was", "were", "the", "a", "an", "all"}
DIRECTION_BONUS = 2.0
# The topic as the subject of a verb: "What does [MASK] produce?", "Which groups is [MASK] part
# of?", "companies that [MASK] controls" (an auxiliary or relative pronoun, the topic, then a
# word, and no passive "by" after it). The first hop then reads forwards (topic -REL-> answer):
# every training phrasing of that shape ("that {x} controls", "that {x} is a kind of", ...) is
# a forward one, and no backward one is.
SUBJECT_RE = re.compile(
    r"\b(?:does|do|did|has|have|had|is|are|was|were|can|could|will|would|that|which)\s+"
    r"(?:(?:the|a|an)\s+)?\[mask\]\s+[a-z]")
# "the price of [MASK]": a measure of the topic that FinDKG records as the topic itself (no
# entity holds gold's price), so "What has pushed up the price of gold?" asks what raised Gold.
# Not type nouns: "Who controls the companies of X?" names a hop of its own.
ATTRIBUTE_NOUNS = r"(?:price|prices|value|cost|costs|rate|rates|level|levels|supply|output)"
# The topic as the object of the wh-word's verb: "What causes [MASK]?", "Who controls [MASK]?",
# "What has hurt [MASK]?" (the verb right after "what" / "who", or after "has"). The first hop
# then reads backwards (answer -REL-> topic). In the hand-written questions all 9 of that shape
# do; a verb that names the reverse of its relation ("What includes X?" for IS_MEMBER_OF) would
# not, and none is asked so.
OBJECT_RE = re.compile(
    r"^\W*(?:what|who)\s+(?:(?:has|have|had)\s+)?"
    r"(?!(?:is|are|was|were|be|been|do|does|did|has|have|had|can|could|will|would|the|a|an)\b)"
    r"(?P<verb>[a-z]+)(?P<particle>\s+(?:in|into|on|to|with|for|from|of|at|up|down|off|"
    r"part\s+in))?\s+(?:the\s+|a\s+|an\s+)?(?:(?:share\s+)?{ATTRIBUTE}\s+of\s+(?:the\s+)?)?"
    r"\[mask\]".replace("{ATTRIBUTE}", ATTRIBUTE_NOUNS))
# "Who is in charge of [MASK]?", "Who is the head of [MASK]?": "who" and a copula, then words
# ending in "of" (no passive "by"): the answer is the agent, the topic what it is in charge of,
# so the first hop reads backwards as with OBJECT_RE. Only "who": "What is a symptom of X?"
# names the topic's own phenotype (a forward hop).
WHO_OF_RE = re.compile(
    r"^\W*who\s+(?:is|are|was|were)\s+(?!(?:[a-z]+\s+)*by\b)(?:[a-z]+\s+){1,4}?of\s+"
    r"(?:the\s+|a\s+|an\s+)?\[mask\]")
# "Who runs the [companies] that ...": a verb (not an auxiliary) between "who" and the next
# type noun, the words of the answer's hop
WHO_VERB_RE = re.compile(
    r"\s+(?!(?:is|are|was|were|be|been|do|does|did|has|have|had|can|could|will|would)\b)"
    r"(?P<verb>[a-z]+)(?P<particle>\s+(?:in|into|on|to|with|for|from|at|up|down|off))?"
    r"\s+(?:the\s+|a\s+|an\s+)?$")
# The topic as the agent of a passive: "What is affected by [MASK]?", "What has been cut by
# [MASK]?". The participle and "by" are a forward training phrasing's own words ("affected by
# {x}"), so they make the hop's segment, read forwards.
PASSIVE_RE = re.compile(
    r"^\W*(?:what|who)\s+(?:is|are|was|were|(?:has|have|had)\s+been)\s+(?:being\s+)?"
    r"(?P<verb>[a-z]+(?:\s+(?:up|down|off|in|on))?)\s+by\s+(?:the\s+|a\s+|an\s+)?\[mask\]")
# "What does [MASK] own?", "What has the [MASK] raised?": with no type noun, the words after the
# topic are the hop's segment (the subject rule gives the direction)
WHAT_SUBJECT_RE = re.compile(
    r"^\W*what\s+(?:do|does|did|has|have|had)\s+(?:the\s+|a\s+|an\s+)?\[mask\]\s+"
    r"(?P<verb>[a-z][a-z -]*?)\s*[?.!]*\s*$")
# "How many genes are associated with X?": the answers list is cut to top_k, so the service
# also counts what the best reading reaches (``fusion.serve.schemas.AnswerCount``)
HOW_MANY_RE = re.compile(r"^\W*how\s+many\b", re.IGNORECASE)
# The topic first, then an auxiliary: "[MASK] is a kind of what?", "[MASK] has which
# symptoms?" (no passive "by" after it, as above)
TOPIC_FIRST_SUBJECT_RE = re.compile(r"^\W*(?:the\s+)?\[mask\]\s+(?:is|are|was|were|has|have|had)\b")
# "What kinds of [MASK] are there?", "the subtypes of [MASK]", "[MASK] is a kind of what?":
# with no type noun, the answer has the topic's own type (``Parse.topic_type_answer``)
KIND_OF_RE = re.compile(r"\b(?:kinds?|types?|subtypes?|sorts?|forms?|varieties|variety|"
                        r"subclass(?:es)?|classes|class|subcategor(?:y|ies))\s+of\b")
# "What do the companies run by [MASK] produce?": the answer is the object of the verb after the
# topic, and the type noun names the nodes in between, so "what" is an answer noun of no type
# (one more hop). "What are the companies ..." is the plain frame: the noun is the answer.
WHAT_AUX_RE = re.compile(r"\s*what\s+(?:do|does|did|have|has|had)\s+(?:the\s+)?")
AUX_THE_RE = re.compile(r"\s+(?:do|does|did|have|has|had)\s+(?:the\s+)?")
# the topic as the subject of a relative clause right before the mask ("that [MASK]"): the
# clause's verb is the first word after the mask ("... that [MASK] controls operate?")
RELATIVE_SUBJECT_RE = re.compile(r"\b(?:that|which|who|whom)\s*$")
# "Who ...?" asks for an actor: a person, but also a company, a government or a country ("Who
# produces oil?": Saudi Arabia), never a product, an event or an indicator
AGENT_TYPES = ("Person", "Company", "Organization", "Government", "Regulator", "Place")
TEMPERATURE = 0.05
TYPE_BONUS = 4.0
HOPS_BONUS = 3.0


def type_words(types: list[str], domain: str | None = None) -> list[tuple[str, str]]:
    """(phrase, type) pairs: plural and singular nouns of every type, longest first (with the
    words ``domain`` declares for its types)."""
    from fusion.language.verbalize import TYPE_SYNONYMS, extra_type_words, noun

    pairs = []
    for t in types:
        plural = noun(t)
        pairs.append((plural, t))
        pairs.append((words(t), t))
        pairs += [(synonym, t) for synonym in TYPE_SYNONYMS.get(t, ())]
        pairs += [(word, t) for word in extra_type_words(t, domain)]
        if t == "Person":
            pairs += [("person", t), ("people", t), ("who", t)]
    return sorted(set(pairs), key=lambda p: -len(p[0]))


@dataclass
class Parse:
    answer_type: str | None
    nouns: list[tuple[int, int, str | None]]  # (start, end, type); None: "what" of no type
    segments: list[str]  # segments[i] follows noun i; describes hop len(nouns) - i
    explicit_answer_type: bool = True  # False for "who" (a person or an organisation)
    length: int = 0  # characters of the parsed (masked) text
    topic_subject: bool = False  # the topic is the subject of the first hop's verb
    # characters that describe each noun's hop, when they are not the noun and the words up to
    # the next noun (a leading "where" or "what do": the words after the topic)
    spans: list[tuple[int, int]] | None = None
    # the inner noun is the subject of the leading noun's verb ("Where do the companies that X
    # controls operate?": companies -OPERATE_IN-> place), so the last hop reads forwards
    lead_subject: bool = False
    # the types the answer may have when no one type is named: ``AGENT_TYPES`` for "who"
    answer_types: tuple[str, ...] = ()
    # no type noun, but "kinds of" / "subtypes of": the answer has the topic's type
    topic_type_answer: bool = False
    topic_object: bool = False  # the topic is the object of the wh-word's verb (OBJECT_RE)
    # the first hop's segment is a clause rebuilt by a wh-rule (``wh_clause``): it names the
    # relation, and the rule, not the clause's word order, names the direction
    clause: bool = False

    def backward_steps(self) -> set[int]:
        """Steps (0-based, from the topic) that the object rule reads backwards."""
        return {0} if self.topic_object else set()

    def forward_steps(self) -> set[int]:
        """Steps (0-based, from the topic) that the subject rules read forwards."""
        steps = {0} if self.topic_subject else set()
        if self.lead_subject and self.hops:
            steps.add(self.hops - 1)
        return steps

    def ruled_steps(self) -> set[int]:
        """Steps whose segment is a bare verb or a rebuilt clause ("Who runs X?" -> "that run",
        "Where do the companies ... operate?" -> "operate"): their words name the relation, but
        their word order is not a training phrasing's, so the direction is the rules' alone."""
        steps = {0} if self.clause else set()
        if self.lead_subject and self.hops:
            steps.add(self.hops - 1)
        return steps

    @property
    def hops(self) -> int:
        return len(self.nouns)

    def hop_span(self, step: int) -> tuple[int, int] | None:
        """Characters that describe hop ``step + 1`` (0-based step from the topic): its type
        noun and the words after it, up to the next noun; None past the parsed hops."""
        k = self.hops
        if not 0 <= step < k:
            return None
        i = k - 1 - step
        if self.spans is not None:
            return self.spans[i]
        end = self.nouns[i + 1][0] if i + 1 < k else self.length
        return self.nouns[i][0], end

    def hop_types(self) -> list[str | None]:
        """The type named for the nodes after each hop, from the topic outwards."""
        return [etype for _, _, etype in reversed(self.nouns)]


@dataclass(frozen=True)
class PathHints:
    """What a question's parse says about its path: the type after each hop and the number of
    hops. The beam search penalises paths that contradict them (soft: a parse can be wrong)."""

    hop_types: tuple[str | None, ...] = ()
    hops: int | None = None
    answer_type: str | None = None
    # steps the subject rules read forwards (``Parse.forward_steps``): a backward hop there
    # contradicts the parse
    forward_steps: frozenset[int] = frozenset()
    # without one answer type: the types the answer may have ("who": ``AGENT_TYPES``); empty:
    # any
    answer_types: frozenset[str] = frozenset()
    # steps the object rule reads backwards (``Parse.backward_steps``)
    backward_steps: frozenset[int] = frozenset()

    @classmethod
    def of(cls, parse: Parse, topic_types: Iterable[str] = ()) -> PathHints:
        """``topic_types``: the types of the topic's candidates, the answer's types when the
        question asks for "kinds of" the topic (``Parse.topic_type_answer``)."""
        forwards = frozenset(parse.forward_steps())
        if not parse.hops:
            # no type noun names the hops ("What causes X?", "Where does X operate?"): nearly
            # always one hop, so longer paths pay the penalty. Without it every hop was scored
            # from the whole question, and the paths grew to max_hops.
            same = frozenset(topic_types) if parse.topic_type_answer else frozenset()
            return cls((), 1, None, forwards, same, frozenset(parse.backward_steps()))
        types = list(parse.hop_types())
        if not parse.explicit_answer_type:
            types[-1] = None
        return cls(tuple(types), parse.hops, types[-1], forwards,
                   frozenset(parse.answer_types) if types[-1] is None else frozenset(),
                   frozenset(parse.backward_steps()))


def step_token_masks(parse: Parse, offsets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[MAX_STEPS, L]`` attention masks: at step s the tokens of hop s + 1's words (see
    ``Parse.hop_span``), else (stop decisions, no parse) every token. ``offsets: [L, 2]``
    character spans of the tokens, ``mask: [L]``."""
    out = mask.unsqueeze(0).repeat(MAX_STEPS, 1)
    real = mask & (offsets[:, 1] > 0)
    for step in range(MAX_STEPS):
        span = parse.hop_span(step)
        if span is None:
            continue
        inside = real & (offsets[:, 0] >= span[0]) & (offsets[:, 1] <= span[1])
        if bool(inside.any()):
            out[step] = inside
    return out


def clean_segment(text: str, mask: str = "[MASK]") -> str:
    """The relation words of a segment: "that generalize the" and "that generalize [MASK]?"
    both become "that generalize", so a hop reads the same at every position."""
    words = re.sub(r"[?.!,;:]", " ", text.replace(mask, " ")).split()
    while words and words[-1].lower() in ("the", "a", "an"):
        words.pop()
    return " ".join(words)


def name_period_as_space(masked: str, mask: str = "[MASK]") -> str:
    """``masked`` with the period right after the mask blanked when the sentence goes on in
    lower case ("What does [MASK]. produce?" from "Tesla Inc."): the mention ends with the
    name's last word, so the name's period stays, and the rules that want a word right after
    the topic (the subject rule, "what does X <verb>") read none. The same length, so every
    character position stays; the model's tokens are the masked text's, unchanged."""
    return re.sub(rf"{re.escape(mask)}\.(?=\s+[a-z])", mask + " ", masked)


def parse_question(masked: str, types: list[str], mask: str = "[MASK]",
                   domain: str | None = None) -> Parse:
    """``domain``: whose declared type words count as type nouns too
    (``fusion.language.vocabulary``)."""
    text = name_period_as_space(masked, mask).lower()
    limit = text.find(mask.lower())
    limit = len(text) if limit < 0 else limit
    found: list[tuple[int, int, str | None]] = []
    singular = {words(t) for t in types}
    for phrase, etype in type_words(types, domain):
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", text[:limit]):
            if phrase in singular and not text[m.end():limit].strip():
                # "the gene [MASK]": the topic's own type, not a hop of the path ("the
                # companies [MASK] runs" is a clause: the plural names the hop's nodes)
                continue
            if not any(s < m.end() and m.start() < e for s, e, _ in found):
                found.append((m.start(), m.end(), etype))
    # "the people who control [MASK]": a "who" right after a type noun is its relative
    # pronoun, not a second answer noun
    found = [f for f in found if not (text[f[0]:f[1]] == "who" and any(
        e <= f[0] and not text[e:f[0]].strip() for _, e, _ in found))]
    lead = re.match(r"\s*where\b", text)
    leading = False  # an answer noun before the inner nouns whose words follow the topic
    if lead and "Place" in types and not any(s < lead.end() for s, _, _ in found):
        found.append((lead.end() - 5, lead.end(), "Place"))  # "Where does X operate?"
        leading = True
    what = WHAT_AUX_RE.match(text)
    if what and any(s == what.end() for s, _, _ in found):
        start = text.index("what")
        found.append((start, start + 4, None))  # "What do the companies run by X produce?"
        leading = True
    found.sort()
    if len(found) > 1 and AUX_THE_RE.fullmatch(text[found[0][1]:found[1][0]]):
        leading = True  # "Which symptoms do the disorders linked to X have?"
    if len(found) > 1 and text[found[0][0]:found[0][1]] == "who" and \
            set(text[found[0][1]:found[1][0]].split()) <= AUXILIARIES:
        found = found[1:]  # "who are the people that ...": one answer noun, not two
    found = found[:3]
    spans = []
    for i, (start, _end, _) in enumerate(found):
        spans.append((start, found[i + 1][0] if i + 1 < len(found) else len(masked)))
    segment_texts = [masked[found[i][1]:stop] for i, (_, stop) in enumerate(spans)]
    at = text.find(mask.lower())
    custom = leading and len(found) > 1 and at >= 0
    if custom:
        # "Where do the companies that [MASK] controls operate?": the leading noun's hop is
        # told after the topic ("operate"); the inner clause keeps its verb ("that controls")
        # when the topic is its subject
        split = at + len(mask)
        if RELATIVE_SUBJECT_RE.search(text[found[-1][1]:at]) or \
                not text[found[-1][1]:at].strip():  # "the companies [MASK] controls"
            verb = re.match(r"\s*[a-z][\w-]*", text[split:])
            split += verb.end() if verb else 0
        spans[0] = (split, len(masked))
        spans[-1] = (found[-1][0], split)
        segment_texts[0] = masked[split:]
        segment_texts[-1] = masked[found[-1][1]:split]
    segments = [clean_segment(t, mask) or masked for t in segment_texts]
    subject = SUBJECT_RE.search(text) or TOPIC_FIRST_SUBJECT_RE.search(text)
    topic_subject = subject is not None and not re.search(r"\bby\b", text[subject.end():])
    if found and at >= 0 and not text[found[-1][1]:at].strip() and \
            re.match(r"\s+[a-z]", text[at + len(mask):]) and \
            not re.search(r"\bby\b", text[at + len(mask):]):
        # "the companies [MASK] runs": a clause without "that" whose subject is the topic;
        # read as the training phrasing "that {x} controls" is (forwards)
        topic_subject = True
        segments[-1] = f"that {segments[-1]}"
    kinds = KIND_OF_RE.search(text) is not None
    topic_object = not topic_subject and not kinds and (
        OBJECT_RE.search(text) is not None or WHO_OF_RE.search(text) is not None)
    clause = wh_clause(text)
    if clause is not None and (not found or (len(found) == 1 and
                                             text[found[0][0]:found[0][1]] == "who")):
        # "Who runs [MASK]?" -> "that run", "What is affected by [MASK]?" -> "affected by"; a
        # bare "what" becomes an answer noun of no type, so the clause is hop 1's segment
        if not found:
            start = text.index("what")
            found = [(start, start + 4, None)]
        segments = [clause[0]]
        topic_subject = topic_subject or clause[1] == OUT
    else:
        clause = None
        who_verb = WHO_VERB_RE.match(text[found[0][1]:found[1][0]]) \
            if len(found) > 1 and not custom and text[found[0][0]:found[0][1]] == "who" else None
        if who_verb:
            # "Who runs the companies that ...": the answer's hop in a training phrasing's words
            # ("people that run {x}"), as ``wh_clause`` does for one hop; "runs" alone reads as
            # OPERATE_IN
            particle = " ".join((who_verb["particle"] or "").split())
            segments[0] = " ".join(["that", base_form(who_verb["verb"])] +
                                   ([particle] if particle else []))
    explicit = not (found and text[found[0][0]:found[0][1]] in ("who", "what"))
    who = bool(found) and text[found[0][0]:found[0][1]] == "who"
    lead_subject = custom and not re.search(r"\bby\b", segments[0])
    return Parse(found[0][2] if found else None, found, segments, explicit, len(masked),
                 topic_subject, spans if custom else None, lead_subject,
                 tuple(t for t in AGENT_TYPES if t in types) if who else (),
                 not found and kinds, topic_object, clause is not None)


def asks_count(question: str) -> bool:
    """Whether the question asks for a number ("How many ...?")."""
    return HOW_MANY_RE.search(question) is not None


def wh_clause(text: str) -> tuple[str, str] | None:
    """(segment, direction) of a wh-question whose verb is the first hop, in the words of a
    training phrasing. "who runs [mask]" -> ("that run", in): the bare "runs" is nearer
    OPERATE_IN's texts than CONTROL's, and its -s ending matches forward texts ("that {x}
    owns" gives "that owns"), so "Who owns X?" read as what X owns. "what is affected by
    [mask]" -> ("affected by", out); "what does [mask] own" -> ("own", out): the bare verb
    names the relation better than "that own" does (on 11 hand-written finance questions of
    that shape, "that raised" lost "What has the Federal Reserve raised?" to HAS). ``text``:
    the masked question in lower case."""
    passive = PASSIVE_RE.search(text)
    if passive:
        return f"{passive['verb']} by", OUT
    obj = OBJECT_RE.search(text)
    if obj and not KIND_OF_RE.search(text):
        particle = " ".join((obj["particle"] or "").split())
        return " ".join(["that", base_form(obj["verb"])] + ([particle] if particle else [])), IN
    subject = WHAT_SUBJECT_RE.search(text)
    if subject:
        return " ".join(subject["verb"].split()), OUT
    return None


def step_segment_vectors(parses: list[Parse]) -> torch.Tensor:
    """``[B, MAX_STEPS, 384]``: at step s the MiniLM vector of hop s + 1's words (zeros past
    the parsed hops), the position-independent input of the fusion model's segment term."""
    out = torch.zeros(len(parses), MAX_STEPS, 384)
    texts = [seg for p in parses for seg in p.segments]
    if not texts:
        return out
    vectors = cached_vectors(texts)
    offset = 0
    for b, p in enumerate(parses):
        k = p.hops
        for step in range(min(k, MAX_STEPS)):
            out[b, step] = vectors[offset + k - 1 - step]
        offset += k
    return out


def reverse_actions(actions: list[tuple[str, str]]) -> torch.Tensor:
    """``[A]``: the index of each hop read the other way (a stop: its own index)."""
    index = {a: i for i, a in enumerate(actions)}
    return torch.tensor([index.get((name, IN if kind == OUT else OUT), i)
                         if kind != STOP else i for i, (name, kind) in enumerate(actions)])


def step_priors(parses: list[Parse], pooled: torch.Tensor, space_text: torch.Tensor,
                actions: list[tuple[str, str]]) -> torch.Tensor:
    """``[B, MAX_STEPS, A]`` priors: per step, cosine of the hop's phrase (else the whole
    question) with each action's text / T, plus bonuses for the parsed answer type and hop
    count on the stop actions. ``pooled: [B, 384]``, ``space_text: [A, 384]``."""
    segments = [s for p in parses for s in p.segments]
    # segments hold only relation words around the mask, so they recur: cached per process
    seg_vectors = cached_vectors(segments) if segments else torch.zeros(0, 384)
    base = pooled @ space_text.T / TEMPERATURE  # [B, A]
    out = base.unsqueeze(1).repeat(1, MAX_STEPS, 1)
    is_stop = torch.tensor([k == STOP for _, k in actions])
    is_out = torch.tensor([k == OUT for _, k in actions])
    is_in = torch.tensor([k not in (OUT, STOP) for _, k in actions])
    # each hop's other direction (a stop: itself), for the clauses whose direction is the rule's;
    # built only for a batch that has such a clause (no generated question does)
    reverse = reverse_actions(actions) if any(p.ruled_steps() for p in parses) else None
    offset = 0
    for b, p in enumerate(parses):
        k = p.hops
        vecs = seg_vectors[offset:offset + k]
        offset += k
        forwards, backwards = p.forward_steps(), p.backward_steps()
        ruled = p.ruled_steps()
        for step in range(MAX_STEPS):
            hop = step + 1
            if 1 <= hop <= k:
                rel = vecs[k - hop] @ space_text.T / TEMPERATURE
                if step in ruled and reverse is not None:
                    # the words name the relation; its direction is the rule's bonus
                    rel = torch.maximum(rel, rel[reverse])
                out[b, step] = torch.where(is_stop, out[b, step], rel)
            if step in forwards:
                out[b, step] += DIRECTION_BONUS * is_out
            if step in backwards:
                out[b, step] += DIRECTION_BONUS * is_in
            for a, (name, kind) in enumerate(actions):
                if kind != STOP:
                    continue
                if k and step < k:
                    # the parse names more hops: a stop here contradicts it, and its mass
                    # would otherwise be taken from the hops the question goes on to name
                    out[b, step, a] -= HOPS_BONUS
                    continue
                if p.answer_type is not None and name == p.answer_type:
                    out[b, step, a] += TYPE_BONUS
                if k and step == k:
                    out[b, step, a] += HOPS_BONUS
    return out
