"""MiniLM in ONNX Runtime (the fast path) against PyTorch (the reference): the same token
states and sentence vectors, and PyTorch whenever ONNX Runtime cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fusion.language.text as text
from fusion.language.text import TextEncoder, pool

TEXTS = ["Who controls Tesla Inc.?",
         "Which genes are associated with the diseases characterized by [MASK]?",
         "What are the phenotypes of the diseases associated with FBN1, and which genes cause "
         "them in people with a family history of Marfan syndrome?"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextEncoder, TextEncoder]:
    torch.manual_seed(0)
    cache = tmp_path_factory.mktemp("cache")
    fast = TextEncoder("onnx", cache)
    assert fast.runtime == "onnx"
    assert (cache / f"all-MiniLM-L6-v2-opset{text.ONNX_OPSET}.onnx").exists()
    return fast, TextEncoder("torch")


def test_onnx_token_states_match_pytorch(encoders: tuple[TextEncoder, TextEncoder]) -> None:
    fast, reference = encoders
    states, mask, offsets = fast.encode_tokens_with_offsets(TEXTS)  # padded to the longest
    ref_states, ref_mask, ref_offsets = reference.encode_tokens_with_offsets(TEXTS)
    assert states.shape == ref_states.shape and states.shape[0] == len(TEXTS)
    assert torch.equal(mask, ref_mask) and torch.equal(offsets, ref_offsets)
    assert torch.allclose(states[mask], ref_states[mask], atol=1e-4)
    assert torch.allclose(pool(states, mask), pool(ref_states, ref_mask), atol=1e-5)
    assert torch.allclose(fast.encode(TEXTS[:2]), reference.encode(TEXTS[:2]), atol=1e-5)
    # one at a time, as an ask encodes its question
    single, single_mask = fast.encode_tokens(TEXTS[:1])
    assert torch.allclose(single[single_mask], ref_states[0][ref_mask[0]], atol=1e-4)


def test_pytorch_runs_it_when_onnx_runtime_cannot(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model_path: Path, cache_dir: Path) -> None:
        raise RuntimeError("no onnxruntime here")

    monkeypatch.setattr(text, "onnx_session", broken)
    encoder = TextEncoder("onnx", tmp_path)
    assert encoder.runtime == "torch"
    assert encoder.encode(TEXTS[:1]).shape == (1, text.TEXT_DIM)

    # a session whose states differ from PyTorch's is refused
    class Wrong:
        def run(self, outputs: object, feeds: dict[str, object]) -> list[object]:
            ids = feeds["input_ids"]
            return [torch.zeros(*ids.shape, text.TEXT_DIM).numpy()]  # type: ignore[attr-defined]

    monkeypatch.setattr(text, "onnx_session", lambda model_path, cache_dir: Wrong())
    assert TextEncoder("onnx", tmp_path).runtime == "torch"
