"""Question encoding and the two path scorers used by the beam search.

- ``ModelScorer``: the fine-tuned fusion model (``fusion.model.model``).
- ``ZeroShotScorer``: no training at all; each action's text is compared with the question
  (cosine of MiniLM vectors), and the complete paths are re-ranked by the similarity of their
  verbalisation ("phenotypes of the diseases associated with ...") to the question.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from itertools import permutations

import torch

from fusion.language.lexical import step_overlap
from fusion.language.parse import (
    DIRECTION_BONUS,
    MAX_STEPS,
    PathHints,
    parse_question,
    step_priors,
    step_segment_vectors,
    step_token_masks,
)
from fusion.language.text import cached_vectors, get_text_encoder, pool
from fusion.language.verbalize import OUT, STOP, Action, most_common, noun_phrase
from fusion.model.model import FusionModel
from fusion.model.space import ActionSpace, GraphFeatures
from fusion.serve.retrieval import BeamItem, Expander, PathResult, Scorer

MASK = "[MASK]"
ZERO_SHOT_TEMPERATURE = 0.05
# the zero-shot prior's bonus (nats) for an action that shares a word stem with the hop: as much
# as the parse's direction rule (``fusion.language.parse.DIRECTION_BONUS``)
LEXICAL_BONUS = 2.0
# nats per unit of ``path_alignment`` (0-2) in the zero-shot rerank of a question whose parse
# names no hop; chosen on PathQuestion's train split and the built-in domains' generated
# questions, never on a test split (bench/RESULTS.md)
ALIGN_WEIGHT = 80.0
# a word names a hop when its peak (see WordAlignment) is this share of the question's best
CONTENT_SHARE = 0.5
WORD = re.compile(r"[^\W\d_]+")


@dataclass
class QuestionContext:
    """One encoded question: ``tokens: [L, 384]``, ``mask: [L]``, ``pooled: [384]``,
    ``offsets: [L, 2]`` (each token's characters in ``text``)."""

    text: str
    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    offsets: torch.Tensor


def encode_questions(texts: list[str], batch_size: int = 64) -> list[QuestionContext]:
    encoder = get_text_encoder()
    out: list[QuestionContext] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        states, mask, offsets = encoder.encode_tokens_with_offsets(chunk)
        pooled = pool(states, mask)
        for i, text in enumerate(chunk):
            length = int(mask[i].sum())
            out.append(QuestionContext(text, states[i, :length].clone(), mask[i, :length].clone(),
                                       pooled[i].clone(), offsets[i, :length].clone()))
    return out


def question_priors(ctx: QuestionContext, space: ActionSpace) -> torch.Tensor:
    """``[MAX_STEPS, A]`` step priors of one (masked) question."""
    return step_priors([parse_question(ctx.text, space.types, domain=space.domain)],
                       ctx.pooled.unsqueeze(0),
                       space.text, space.actions)[0]


class ModelScorer:
    """Scores candidate actions with a trained ``FusionModel``."""

    def __init__(self, model: FusionModel, space: ActionSpace,
                 features: GraphFeatures | None) -> None:
        self.model = model.eval()
        self.space = space
        self.features = features if model.use_graph else None
        with torch.no_grad():
            self.actions = model.action_vectors(space.text, space.kind,
                                                space.graph_vectors(self.features))

    @torch.no_grad()
    def for_question(self, ctx: QuestionContext, expander: Expander) -> Scorer:
        keys, values = self.model.encode_question(ctx.tokens.unsqueeze(0))
        mask = ctx.mask.unsqueeze(0)
        priors = question_priors(ctx, self.space)
        parse = parse_question(ctx.text, self.space.types, domain=self.space.domain)
        step_masks = segments = None
        if self.model.segment_attention:
            step_masks = step_token_masks(parse, ctx.offsets, ctx.mask)
            segments = step_segment_vectors([parse])[0]  # [MAX_STEPS, 384]
        cache: dict[str, torch.Tensor] = {}
        features = self.features if self.model.frontier_graph else None

        def frontier_means(items: list[BeamItem]) -> torch.Tensor | None:
            if features is None:
                return None
            return features.mean_entity([item.frontier for item in items])

        def base_state(topic: str) -> torch.Tensor:
            if topic not in cache:
                topic_type = self.space.topic_type_text([expander.node(topic).type])
                graph = self.features.entity([topic]) if self.features is not None else None
                cache[topic] = self.model.initial_state(ctx.pooled.unsqueeze(0), topic_type,
                                                        graph)[0]
            return cache[topic]

        @torch.no_grad()
        def score(items: list[BeamItem], candidates: list[list[Action]]) -> list[list[float]]:
            if not items:
                return []
            base = torch.stack([base_state(item.topic) for item in items])
            prefixes = [[self.space.index[a] for a in item.steps] for item in items]
            state = self.model.prefix_states(base, prefixes, self.actions)
            step = len(items[0].steps)
            n = len(items)
            attend = mask if step_masks is None else \
                step_masks[min(step, MAX_STEPS - 1)].unsqueeze(0)
            logits = self.model.step_scores(state, step, keys.expand(n, -1, -1),
                                            values.expand(n, -1, -1), attend.expand(n, -1),
                                            self.actions,
                                            priors[min(step, MAX_STEPS - 1)].expand(n, -1),
                                            None if segments is None else
                                            segments[min(step, MAX_STEPS - 1)].expand(n, -1),
                                            frontier_means(items))
            out = []
            for row, cands in zip(logits, candidates, strict=True):
                ids = [self.space.index.get(a, -1) for a in cands]
                known = torch.tensor([i for i in ids if i >= 0], dtype=torch.long)
                values_ = torch.full((len(ids),), float("-inf"))
                if len(known):
                    lp = torch.log_softmax(row[known], dim=0)
                    values_[torch.tensor([k for k, i in enumerate(ids) if i >= 0])] = lp
                out.append(values_.tolist())
            return out

        return score


def zero_shot_hints(hints: PathHints, space: ActionSpace) -> PathHints:
    """The zero-shot search's hints. On a graph with one entity type (a plain triples file)
    no type noun can name a hop, so where ``PathHints.of`` assumes one hop ("who" names an
    answer type, not a hop) the length is left open, and the rerank's word alignment weighs
    each path length (``ZeroShotScorer.rerank``). A typed graph keeps the one-hop prior where
    the question names no type: with few relation types, function words resemble one of them
    as much as the relation words do, and the alignment would count them as hops."""
    if len(space.types) <= 1 and hints.hops == 1 \
            and all(t is None for t in hints.hop_types):
        return replace(hints, hops=None)
    return hints


class ZeroShotScorer:
    """Text similarity only; no trained parameters."""

    def __init__(self, space: ActionSpace, temperature: float = ZERO_SHOT_TEMPERATURE) -> None:
        self.space = space
        self.temperature = temperature

    def for_question(self, ctx: QuestionContext, expander: Expander) -> Scorer:
        priors = question_priors(ctx, self.space)
        parse = parse_question(ctx.text, self.space.types, domain=self.space.domain)
        # a stem the hop's words share with an action's phrasings is evidence MiniLM's cosine
        # can miss ("specialize" / "more specific than"): fusion.language.lexical
        priors = priors + LEXICAL_BONUS * step_overlap(parse.segments, parse.hops,
                                                       self.space.stems, MAX_STEPS)

        def score(items: list[BeamItem], candidates: list[list[Action]]) -> list[list[float]]:
            out = []
            for item, cands in zip(items, candidates, strict=True):
                prior = priors[min(len(item.steps), MAX_STEPS - 1)]
                ids = [self.space.index.get(a, -1) for a in cands]
                sims = torch.full((len(ids),), -20.0)
                known = [k for k, i in enumerate(ids) if i >= 0]
                if known:
                    sims[known] = prior[[ids[k] for k in known]]
                out.append(torch.log_softmax(sims, dim=0).tolist())
            return out

        return score

    def rerank(self, ctx: QuestionContext, finals: list[PathResult], expander: Expander,
               top: int = 24, align: bool = False) -> list[PathResult]:
        """Re-score the best ``top`` complete paths by their verbalisation's similarity; with
        ``align`` (the search left the length open: ``zero_shot_hints``), also by how well
        the path's relations and the question's words explain each other
        (``path_alignment``): the hop count then comes from the question's words, not from a
        preference for short paths.

        The softmax runs over the paths with recorded answers, as without predicted links; a
        path whose answers are all predicted, or that takes a guessed hop
        (``fusion.serve.linkpred``),
        is scored against the same normaliser, so it cannot change the others' scores."""
        plain = [f for f in finals if not f.guessed]
        guessed = [f for f in finals if f.guessed]
        head = [f for f in plain[:top] + guessed[:top] if f.answers]
        if not head:
            return finals
        texts = [verbalize_path(f, expander, self.space.domain) for f in head]
        sims = cached_vectors(texts) @ ctx.pooled
        parse = parse_question(ctx.text, self.space.types, domain=self.space.domain)
        steps, backs = parse.forward_steps(), parse.backward_steps()
        if steps or backs:
            # the verbalisation loses who does what to whom; the parse's subject and object
            # rules hold for it as for the steps
            agree = torch.tensor([float(sum(f.steps[s][1] == OUT for s in steps
                                            if s < len(f.steps))
                                        + sum(f.steps[s][1] != OUT for s in backs
                                              if s < len(f.steps))) for f in head])
            sims = sims + DIRECTION_BONUS * self.temperature * agree
        logits = sims / self.temperature
        if align:
            words = WordAlignment.of(ctx.text, self.space)
            if words is not None:
                logits = logits + ALIGN_WEIGHT * torch.tensor(
                    [words.path_alignment(f.steps) for f in head])
        recorded = torch.tensor([bool(f.recorded_answers) and not f.guessed for f in head])
        norm = torch.logsumexp(logits[recorded] if recorded.any() else logits, dim=0)
        logp = (logits - norm).tolist()
        for final, lp in zip(head, logp, strict=True):
            final.logp = 0.5 * (final.logp + lp)
        head.sort(key=lambda f: (-f.logp, f.hops))
        return head


@dataclass(frozen=True)
class WordAlignment:
    """Which of a question's words name relations, and which relation actions each points at.

    A word's cosine with every relation action's text, minus its mean over them, is its
    ``centred`` profile; its best value is its ``peak``: a word that resembles every relation
    alike ("what", "of") has a low one. The words that name hops are those whose peak is at
    least ``CONTENT_SHARE`` of the question's highest; ``fit: [words, A]`` is each one's
    centred cosine over its own peak (1 at the actions it points at most)."""

    space: ActionSpace
    fit: torch.Tensor
    words: tuple[str, ...]  # the hop-naming words, one per occurrence

    @classmethod
    def of(cls, text: str, space: ActionSpace) -> WordAlignment | None:
        words = [w.lower() for w in WORD.findall(text.replace(MASK, " "))]
        relations = [i for i, (_, kind) in enumerate(space.actions) if kind != STOP]
        if not words or not relations:
            return None
        distinct = sorted(set(words))
        vectors = cached_vectors(distinct)[[distinct.index(w) for w in words]]
        cos = vectors @ space.text[relations].T
        centred = cos - cos.mean(dim=1, keepdim=True)  # [words, relation actions]
        peak = centred.max(dim=1).values
        if float(peak.max()) <= 0.0:
            return None
        content = peak >= CONTENT_SHARE * peak.max()
        fit = torch.zeros(int(content.sum()), len(space.actions))
        fit[:, relations] = (centred[content] / peak[content, None]).clamp(min=0.0)
        kept = [w for w, keep in zip(words, content.tolist(), strict=True) if keep]
        return cls(space, fit, tuple(kept))

    def path_alignment(self, steps: tuple[Action, ...]) -> float:
        """0-2: how well the path's hops explain the hop-naming words (each word by its best
        hop, averaged), plus how well the words claim the hops (the best one-to-one assignment
        of words to hops, averaged over the hops). A path that skips a hop the words ask for
        loses the first part; one with a hop no word asks for, or that turns straight back,
        loses the second."""
        ids = [self.space.index[a] for a in steps if a in self.space.index]
        if not ids or len(ids) < len(steps):
            return 0.0
        fit = self.fit[:, ids]  # [words, hops]
        # a word said c times ("X 's children 's children") names c different hops; different
        # words may share one ("cause of death")
        explained = 0.0
        for word, count in Counter(self.words).items():
            row = fit[self.words.index(word)]
            explained += float(row.topk(min(count, len(ids))).values.sum())
        words_part = explained / len(self.words)
        # a hop straight back over the relation just taken (X -ISA-> Y <-ISA- Z) returns to
        # the previous node's kin; two words that both point at ISA ("is", "kind") do not ask
        # for that, so no word claims such a hop
        claimable = fit.clone()
        for hop in range(1, len(steps)):
            (rel, kind), (before, kind_before) = steps[hop], steps[hop - 1]
            if rel == before and kind != kind_before:
                claimable[:, hop] = 0.0
        # the best one-to-one assignment: with at least as many words as hops, an ordered
        # choice of words for the hops; with fewer, an ordered choice of hops for the words
        words, hops = fit.shape[0], len(ids)
        if words >= hops:
            pairs = ([(w, h) for h, w in enumerate(chosen)]
                     for chosen in permutations(range(words), hops))
        else:
            pairs = ([(w, h) for w, h in enumerate(chosen)]
                     for chosen in permutations(range(hops), words))
        best = max(sum(float(claimable[w, h]) for w, h in assignment) for assignment in pairs)
        return words_part + best / len(ids)


def verbalize_path(final: PathResult, expander: Expander, domain: str | None = None) -> str:
    mids = []
    predicted = getattr(expander, "predicted", None)  # a fusion.serve.linkpred.PredictingExpander's
    # the types of the nodes reached by recorded links, as without predicted ones
    recorded = final.recorded_nodes(predicted) if predicted else None
    for hop in range(len(final.steps)):
        nodes = final.back[hop] if recorded is None or not recorded[hop] else recorded[hop]
        counts = Counter(expander.node(u).type for u in nodes)
        mids.append(most_common(counts) or "Entity")
    return noun_phrase(final.steps, mids, final.answer_type, MASK, domain=domain)
