"""The fusion model: scores the next action of a relation path from the question and the graph.

Inputs (one question):
- question token states from MiniLM (frozen) ``tokens: [L, 384]``, mask ``[L]``, pooled ``[384]``;
  the topic mention is masked out, so the question text speaks of relations and types only;
- the topic entity: its type's text embedding ``[384]`` and, with graph embeddings on, its
  graph-encoder embedding ``[d]`` (projected and fused into the initial state);
- the actions of the domain (a hop ``(relation, direction)`` or a stop on an answer type), each
  embedded from its text (MiniLM) plus, with graph embeddings on, the projected relation
  embedding of the graph encoder;
- with graph embeddings on and ``frontier_graph``, the mean graph-encoder embedding of the
  frontier the path prefix has reached ``[d]``, added to the state at every step.

A GRU carries the path prefix; at every step the state attends over the question tokens
(cross-attention) and scores the candidate actions by a dot product. With
``segment_attention`` the attention at hop step s is restricted to the tokens that describe that
hop in the parse (``fusion.language.parse.step_token_masks``): the same words-to-relation mapping
then
serves every hop position, which is what lets 1-hop phrasings carry over to 2- and 3-hop
questions (without it, hop 2 of "phenotypes that generalize the phenotypes that generalize X"
was read as the reverse relation). Trained with cross-entropy
over the candidate actions that exist in the graph at that step (teacher forcing).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fusion.language.text import TEXT_DIM

KIND_OUT, KIND_IN, KIND_STOP = 0, 1, 2
PRIOR_TEMPERATURE = 0.05


def text_prior(pooled: torch.Tensor, action_text: torch.Tensor) -> torch.Tensor:
    """Zero-shot prior: cosine(question, action text) / T; ``[B, 384] x [A, 384] -> [B, A]``."""
    return pooled @ action_text.T / PRIOR_TEMPERATURE


class FusionModel(nn.Module):
    """Path-step scorer. ``graph_dim = 0`` (or ``use_graph=False``) is the text-only ablation."""

    def __init__(self, hidden: int = 192, graph_dim: int = 0, use_graph: bool = True,
                 dropout: float = 0.1, text_dim: int = TEXT_DIM,
                 segment_attention: bool = False, frontier_graph: bool = False) -> None:
        super().__init__()
        self.hidden = hidden
        self.segment_attention = segment_attention
        self.graph_dim = graph_dim
        self.use_graph = bool(use_graph and graph_dim > 0)
        self.q_proj = nn.Linear(text_dim, hidden)
        self.topic_type_proj = nn.Linear(text_dim, hidden)
        self.init = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh())
        self.action_text_proj = nn.Linear(text_dim, hidden)
        self.kind = nn.Embedding(3, hidden)
        self.step = nn.Embedding(4, hidden)
        self.gru = nn.GRUCell(hidden, hidden)
        self.key = nn.Linear(text_dim, hidden)
        self.value = nn.Linear(text_dim, hidden)
        self.query = nn.Linear(hidden, hidden)
        last = nn.Linear(hidden, hidden)
        self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                 last)
        # weight of the zero-shot prior (cosine of question and action text) per step
        self.prior_weight = nn.Parameter(torch.ones(4))
        if segment_attention:
            # the hop's own words (MiniLM vector of the segment alone) against each action:
            # the same at every position, unlike the contextual token states
            self.segment_proj = nn.Linear(text_dim, hidden)
        # the learned terms start at zero, so an untrained model scores exactly like the
        # zero-shot prior (epoch 0 of model selection, ``fusion.learn.train.fit``) and training
        # moves
        # away from it only as far as validation on unseen wording supports
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if segment_attention:
            nn.init.zeros_(self.segment_proj.weight)
            nn.init.zeros_(self.segment_proj.bias)
        if self.use_graph:
            self.graph_rel_proj = nn.Linear(graph_dim, hidden)
            self.graph_ent_proj = nn.Linear(graph_dim, hidden)
            self.graph_gate = nn.Parameter(torch.tensor(0.5))
        # where the path stands in the graph: the mean graph embedding of the prefix's frontier
        # joins the state at every step (zero at first, like the other learned terms)
        self.frontier_graph = bool(frontier_graph and self.use_graph)
        if self.frontier_graph:
            self.graph_front_proj = nn.Linear(graph_dim, hidden)
            nn.init.zeros_(self.graph_front_proj.weight)
            nn.init.zeros_(self.graph_front_proj.bias)

    def action_vectors(self, action_text: torch.Tensor, action_kind: torch.Tensor,
                       action_graph: torch.Tensor | None) -> torch.Tensor:
        """``action_text: [A, 384]``, ``action_kind: [A]``, ``action_graph: [A, d]``
        -> ``[A, H]``."""
        vectors = self.action_text_proj(action_text) + self.kind(action_kind)
        if self.use_graph and action_graph is not None:
            vectors = vectors + self.graph_gate * self.graph_rel_proj(action_graph)
        return vectors

    def initial_state(self, pooled: torch.Tensor, topic_type_text: torch.Tensor,
                      topic_graph: torch.Tensor | None) -> torch.Tensor:
        """``pooled: [B, 384]``, ``topic_type_text: [B, 384]``, ``topic_graph: [B, d]``
        -> ``[B, H]``."""
        topic = self.topic_type_proj(topic_type_text)
        if self.use_graph and topic_graph is not None:
            topic = topic + self.graph_gate * self.graph_ent_proj(topic_graph)
        return self.init(torch.cat([self.q_proj(pooled), topic], dim=-1))

    def step_scores(self, state: torch.Tensor, step: int, keys: torch.Tensor,
                    values: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor,
                    prior: torch.Tensor | None = None,
                    segment: torch.Tensor | None = None,
                    frontier: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of every action: state ``[B, H]``, keys/values ``[B, L, H]``, mask ``[B, L]``,
        actions ``[A, H]``, prior ``[B, A]`` (zero-shot text similarity), segment ``[B, 384]``
        (the hop's words, with ``segment_attention``), frontier ``[B, d]`` (mean graph
        embedding of the prefix's frontier, with ``frontier_graph``) -> ``[B, A]``."""
        if self.frontier_graph and frontier is not None:
            state = state + self.graph_front_proj(frontier)
        query = self.query(state + self.step.weight[min(step, 3)])
        attn = torch.einsum("bh,blh->bl", query, keys) / math.sqrt(self.hidden)
        attn = attn.masked_fill(~mask, float("-inf")).softmax(-1)
        context = torch.einsum("bl,blh->bh", attn, values)
        summary = self.out(torch.cat([state, context], dim=-1))
        scores = summary @ actions.T / math.sqrt(self.hidden)
        if self.segment_attention and segment is not None:
            scores = scores + self.segment_proj(segment) @ actions.T / math.sqrt(self.hidden)
        if prior is not None:
            scores = scores + self.prior_weight[min(step, 3)] * prior
        return scores

    def encode_question(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens ``[B, L, 384]`` -> keys, values ``[B, L, H]``."""
        return self.key(tokens), self.value(tokens)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor,
                topic_type_text: torch.Tensor, topic_graph: torch.Tensor | None,
                actions: torch.Tensor, gold: torch.Tensor,
                prior: torch.Tensor | None = None,
                step_mask: torch.Tensor | None = None,
                segment: torch.Tensor | None = None,
                frontier: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced scores ``[B, T, A]`` for gold action ids ``gold: [B, T]`` (-1 = pad);
        ``prior: [B, T, A]``, per step as in ``step_scores``; ``step_mask: [B, T, L]`` the
        tokens each step attends to and ``segment: [B, T, 384]`` each step's hop words (both used
        with ``segment_attention``; default ``mask`` and none); ``frontier: [B, T, d]`` the
        mean graph embedding of the frontier before each step (with ``frontier_graph``)."""
        keys, values = self.encode_question(tokens)
        state = self.initial_state(pooled, topic_type_text, topic_graph)
        scores = []
        for t in range(gold.shape[1]):
            step_prior = prior[:, t] if prior is not None else None
            attend = step_mask[:, t] if (self.segment_attention and step_mask is not None) \
                else mask
            step_segment = segment[:, t] if segment is not None else None
            step_frontier = frontier[:, t] if frontier is not None else None
            scores.append(self.step_scores(state, t, keys, values, attend, actions, step_prior,
                                           step_segment, step_frontier))
            taken = actions[gold[:, t].clamp(min=0)]
            state = self.gru(taken, state)
        return torch.stack(scores, dim=1)

    def prefix_states(self, base: torch.Tensor, prefixes: list[list[int]],
                      actions: torch.Tensor) -> torch.Tensor:
        """States after each prefix: base ``[B, H]`` (one per prefix), prefixes of action ids."""
        state = base
        longest = max((len(p) for p in prefixes), default=0)
        for t in range(longest):
            active = torch.tensor([len(p) > t for p in prefixes])
            ids = torch.tensor([p[t] if len(p) > t else 0 for p in prefixes])
            moved = self.gru(actions[ids], state)
            state = torch.where(active.unsqueeze(-1), moved, state)
        return state
