"""``kgr train encoder``'s hyperparameter options as one object: what is set goes on, checked."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from usecases.train_encoder import EncoderOptions


def test_only_the_options_set_go_on_under_their_config_names() -> None:
    assert EncoderOptions().overrides() == {}
    assert EncoderOptions(num_layers=2, lr=0.01, decoder="rotate").overrides() == {
        "num_layers": 2, "lr": 0.01, "decoder": "rotate"}


@pytest.mark.parametrize("options,field", [
    (EncoderOptions(decoder="transe"), "decoder"),
    (EncoderOptions(num_layers=9), "num_layers"),
    (EncoderOptions(dim=1), "dim"),
])
def test_a_bad_option_is_refused_with_its_name(options: EncoderOptions, field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"(?s)invalid encoder configuration.*{field}"):
        options.overrides()
