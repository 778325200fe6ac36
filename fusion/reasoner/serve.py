"""The trained reasoner as a ``fusion.serve.retrieval.Scorer``: the beam search over the graph
executes its paths (bounded Neo4j reads, evidence paths) with its probabilities."""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from fusion.language.text import ONNX_OPSET
from fusion.language.verbalize import STOP, Action
from fusion.reasoner.model import PathReasoner, StepOutput
from fusion.reasoner.vocab import Vocab
from fusion.serve.retrieval import BeamItem, Scorer
from fusion.serve.threads import default_threads

log = logging.getLogger("kgr.fusion")
NEG_INF = float("-inf")


class StepScores:
    """One question's conditional log-probabilities for the beam search: at step ``t``
    (``t`` hops taken) a stop on type ``y`` scores ``log P(len = t) - log P(len >= t)`` plus
    the type's, and a hop ``log P(len > t) - log P(len >= t)`` plus the step's hop, so that a
    whole path scores ``log P(len) + sum log P(hop_t) + log P(type)``, as in training."""

    def __init__(self, out: StepOutput, vocab: Vocab) -> None:
        self.vocab = vocab
        self.hops = out.hops[0].tolist()  # [T][H]
        self.types = out.types[0].tolist()  # [Y]
        length = out.length[0].exp().tolist()  # P(len = k + 1)
        self.max_hops = len(length)
        # survive[t] = P(len >= t) for t = 0..T (t = 0: every path takes a first hop)
        survive = [1.0] + [sum(length[t - 1:]) for t in range(1, self.max_hops + 1)]
        self.stop = [NEG_INF] + [_log(length[t - 1]) - _log(survive[t])
                                 for t in range(1, self.max_hops + 1)]
        self.cont = [_log(survive[t + 1]) - _log(survive[t]) if t > 0 else 0.0
                     for t in range(self.max_hops)]

    def action(self, step: int, action: Action) -> float:
        if action[1] == STOP:
            type_id = self.vocab.type_index.get(action[0])
            if step == 0 or step > self.max_hops or type_id is None:
                return NEG_INF
            return self.stop[step] + self.types[type_id]
        hop_id = self.vocab.hop_index.get(action)
        if step >= self.max_hops or hop_id is None:
            return NEG_INF
        return self.cont[step] + self.hops[step][hop_id]

    def scorer(self) -> Scorer:
        def score(items: list[BeamItem], candidates: list[list[Action]]) -> list[list[float]]:
            return [[self.action(len(item.steps), a) for a in actions]
                    for item, actions in zip(items, candidates, strict=True)]
        return score


def _log(p: float) -> float:
    return math.log(p) if p > 0 else NEG_INF


ONNX_FILE = "reasoner.onnx"
ONNX_OUTPUTS = ("hops", "length", "types")
CHECK_QUESTIONS = ["what is the gender of [MASK] 's dad ?",
                   "Which genes are associated with the diseases that present [MASK]?"]


class _Outputs(torch.nn.Module):
    """The reasoner as ONNX sees it: ids and mask in, the three log-probability tensors out."""

    def __init__(self, model: PathReasoner) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(input_ids, mask)
        return out.hops, out.length, out.types


@torch.no_grad()
def export_onnx(model: PathReasoner, tokenizer: Any, target: Path) -> None:
    """The whole reasoner (fine-tuned MiniLM and heads) as one ONNX graph at ``target``."""
    batch = tokenizer(CHECK_QUESTIONS, padding=True, return_tensors="pt")
    partial = target.with_suffix(f".tmp-{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the wrapper in eval mode too: the exporter leaves every module in its mode
        torch.onnx.export(_Outputs(model).eval(), (batch["input_ids"], batch["attention_mask"]),
                          str(partial), input_names=["input_ids", "mask"],
                          output_names=list(ONNX_OUTPUTS),
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "mask": {0: "batch", 1: "tokens"},
                                        **{name: {0: "batch"} for name in ONNX_OUTPUTS}},
                          opset_version=ONNX_OPSET, dynamo=False)
    model.eval()
    partial.replace(target)  # atomic: another process may be exporting too


class ReasonerRunner:
    """Reads questions with a trained ``PathReasoner``, in ONNX Runtime when it can
    (``Settings.text_runtime``; the version's graph is exported once into its folder and
    checked against PyTorch), else in PyTorch (one forward at a time: the modules are shared
    by the API's threads)."""

    def __init__(self, model: PathReasoner, vocab: Vocab, tokenizer: Any,
                 onnx_path: Path | None = None) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.tokenizer = tokenizer
        self._lock = threading.Lock()
        self._session: Any = None
        self.runtime = "torch"
        if onnx_path is not None:
            try:
                self._session = self._onnx(onnx_path)
                self.runtime = "onnx"
            except Exception as exc:  # no onnxruntime, a failed export or check: PyTorch
                log.warning("reasoner in PyTorch, not ONNX Runtime: %s", exc)

    def _onnx(self, path: Path) -> Any:
        import onnxruntime

        if not path.exists():
            export_onnx(self.model, self.tokenizer, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, default_threads())
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
        batch = self.tokenizer(CHECK_QUESTIONS, padding=True, return_tensors="pt")
        got = session.run(None, {"input_ids": batch["input_ids"].numpy(),
                                 "mask": batch["attention_mask"].numpy()})
        with torch.no_grad():
            want = self.model(batch["input_ids"], batch["attention_mask"])
        for name, array, tensor in zip(ONNX_OUTPUTS, got, (want.hops, want.length, want.types),
                                       strict=True):
            if not torch.allclose(torch.from_numpy(array), tensor, atol=1e-3):
                raise ValueError(f"the ONNX reasoner's {name} differ from PyTorch's")
        return session

    def forward(self, masked_questions: list[str]) -> StepOutput:
        batch = self.tokenizer(masked_questions, padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
        if self._session is not None:
            hops, length, types = self._session.run(
                None, {"input_ids": batch["input_ids"].numpy(),
                       "mask": batch["attention_mask"].numpy()})
            return StepOutput(torch.from_numpy(hops), torch.from_numpy(length),
                              torch.from_numpy(types))
        with self._lock, torch.no_grad():
            out: StepOutput = self.model(batch["input_ids"], batch["attention_mask"])
            return out

    def read(self, masked_questions: list[str]) -> list[StepScores]:
        if not masked_questions:
            return []
        out = self.forward(masked_questions)
        return [StepScores(StepOutput(out.hops[i:i + 1], out.length[i:i + 1],
                                      out.types[i:i + 1]), self.vocab)
                for i in range(len(masked_questions))]
