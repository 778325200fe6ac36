"""The reasoner exported to ONNX Runtime reads questions as PyTorch does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.reasoner.model import PathReasoner, ReasonerConfig, load_tokenizer
from fusion.reasoner.serve import ReasonerRunner
from fusion.reasoner.vocab import Vocab

pytestmark = pytest.mark.slow


def test_the_onnx_reasoner_matches_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    vocab = Vocab([("parents", "out"), ("parents", "in"), ("gender", "out")], ["Thing"])
    model = PathReasoner(torch.randn(3, 384), torch.randn(1, 384),
                         ReasonerConfig(tuned_layers=1))
    with torch.no_grad():  # heads away from their start, as after training
        model.hop_residual.normal_()
        model.length_head.weight.normal_()
    tokenizer = load_tokenizer()
    onnx = ReasonerRunner(model, vocab, tokenizer, tmp_path / "reasoner.onnx")
    plain = ReasonerRunner(model, vocab, tokenizer)
    assert (onnx.runtime, plain.runtime) == ("onnx", "torch")
    assert (tmp_path / "reasoner.onnx").exists()
    questions = ["the sex of [MASK] 's heir ?", "who is the darling of [MASK] 's kid 's dad ?"]
    got, want = onnx.forward(questions), plain.forward(questions)
    for a, b in ((got.hops, want.hops), (got.length, want.length), (got.types, want.types)):
        assert torch.allclose(a, b, atol=1e-4)
    read = onnx.read(questions)
    assert len(read) == 2
    assert read[0].action(1, ("gender", "out")) == pytest.approx(
        plain.read(questions)[0].action(1, ("gender", "out")), abs=1e-4)
