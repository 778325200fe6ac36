"""Shared word stems between a hop's words and an action's phrasings: a zero-shot term.

MiniLM's cosine is blind to some contrasts that the words themselves carry: "phenotypes that
specialize X" sits nearer "that subsume" and "that are superclasses of" (IS_A read forwards)
than "more specific than" (backwards), although "specialize" and "specific" share their stem.
A bonus for an action one of whose phrasings shares a content stem with the hop's words
restores that evidence. Stems are the first ``STEM_CHARS`` letters of a word (truncation
stemming, a common stand-in for a stemmer in English retrieval); words shorter than
``MIN_WORD`` letters and function words carry no evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import torch

STEM_CHARS = 5
MIN_WORD = 4
WORD_RE = re.compile(r"[a-z]+")
FUNCTION_WORDS = frozenset(
    "that the of by are is a an in to with which what who whom whose than more most its their "
    "as from for on at be been was were has have had do does did this these those it they them "
    "and or not no any all some each there here also such into onto over under about".split())


@lru_cache(maxsize=20_000)
def stems(text: str) -> frozenset[str]:
    """The content stems of ``text`` (a phrasing's ``{x}`` slot is no word)."""
    words = WORD_RE.findall(text.lower().replace("{x}", " "))
    return frozenset(w[:STEM_CHARS] for w in words
                     if len(w) >= MIN_WORD and w not in FUNCTION_WORDS)


def action_stems(texts: Sequence[Sequence[str]]) -> list[frozenset[str]]:
    """Per action, the stems of all its phrasings (``texts[a]``: action ``a``'s phrasings)."""
    return [frozenset().union(*(stems(t) for t in group)) for group in texts]


def step_overlap(segments: Sequence[str], hops: int, per_action: list[frozenset[str]],
                 max_steps: int) -> torch.Tensor:
    """``[max_steps, A]``: 1 where hop ``s + 1``'s words (``segments[hops - 1 - s]``, the
    order of ``fusion.language.parse.Parse.segments``) share a stem with action ``a``'s
    phrasings."""
    out = torch.zeros(max_steps, len(per_action))
    for step in range(min(hops, max_steps)):
        words = stems(segments[hops - 1 - step])
        if words:
            out[step] = torch.tensor([float(bool(words & a)) for a in per_action])
    return out
