"""The use cases' request records refuse what cannot run when they are made (a 4xx or a CLI exit
code before a job is queued or the graph read), and build from the API's bodies."""

from __future__ import annotations

import pytest

from fusion.exceptions import QuestionError, TrainingDataError
from fusion.serve.schemas import EvalQARequest, TrainQARequest
from usecases.evaluate import QAEvaluationRequest, eval_mode
from usecases.train_encoder import EncoderOptions, EncoderTrainingRequest
from usecases.train_qa import QATrainingRequest

ROWS: list[dict[str, object]] = [{"question": "Which genes cause X?", "answers": ["G"]}]


def test_a_training_request_needs_rows_or_generated_questions() -> None:
    with pytest.raises(TrainingDataError, match="generate_per_hop > 0"):
        QATrainingRequest()
    assert QATrainingRequest(rows=ROWS).kind() == "reasoner"
    assert QATrainingRequest(rows=ROWS, generate_per_hop=5).kind() == "fusion"


def test_a_training_request_refuses_an_unknown_model_and_init_for_the_reasoner() -> None:
    with pytest.raises(QuestionError, match="auto, reasoner or fusion"):
        QATrainingRequest(rows=ROWS, model="gpt")  # type: ignore[arg-type]
    with pytest.raises(TrainingDataError, match="--init-from-active"):
        QATrainingRequest(rows=ROWS, init_active=True)  # auto: the reasoner
    assert QATrainingRequest(rows=ROWS, init_active=True, model="fusion").kind() == "fusion"


def test_the_api_bodies_translate_field_for_field() -> None:
    body = TrainQARequest(domain="m", data=ROWS, generate_per_hop=0, epochs=3,
                          graph_embeddings=False, init_from_active=True, model="fusion",
                          hold_out_wording=True)
    assert QATrainingRequest.of(body) == QATrainingRequest(
        rows=ROWS, generate_per_hop=0, model="fusion", epochs=3, use_graph=False,
        init_active=True, hold_out_wording=True)
    evaluation = QAEvaluationRequest.of(EvalQARequest(domain="m", modes=["zero-shot"],
                                                      predicted_links=True))
    assert evaluation == QAEvaluationRequest(rows=[], generate_per_hop=100,
                                             modes=["zero-shot"], predicted_links=True)


def test_the_cli_mode_and_graph_switch_name_one_evaluation_mode() -> None:
    assert eval_mode("fine-tuned") == "fine-tuned"
    assert eval_mode("fine-tuned", use_graph=False) == "fine-tuned-no-graph"
    assert eval_mode("zero-shot", use_graph=False) == "zero-shot"
    with pytest.raises(QuestionError, match="fine-tuned or zero-shot"):
        eval_mode("few-shot")
    with pytest.raises(QuestionError, match="modes must be"):
        QAEvaluationRequest(modes=["few-shot"])  # type: ignore[list-item]


def test_an_encoder_run_with_a_bad_option_is_refused_when_it_is_asked_for() -> None:
    from core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="decoder"):
        EncoderTrainingRequest(EncoderOptions(decoder="transe"))
    assert EncoderTrainingRequest(EncoderOptions(dim=32)).options.overrides() == {"dim": 32}
