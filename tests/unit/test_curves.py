"""Training curves read back from a version's config and drawn as a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import NotFoundError
from fusion.learn.curves import histories, plot

REASONER = {"kind": "reasoner", "history": [
    {"epoch": 1, "loss": 2.1, "val_hits@1": 0.8, "seconds": 10.0},
    {"epoch": 2, "loss": 0.4, "val_hits@1": 0.97, "seconds": 19.5}]}
ENCODER = {"metrics": {"history": [{"epoch": 1, "loss": 5.0, "valid_mrr": None},
                                   {"epoch": 2, "loss": 3.0, "valid_mrr": 0.41}]}}
FUSION = {"metrics": {"text": {"history": [{"epoch": 0, "val_hits@1": 0.5, "val_loss": 1.2}]},
                      "graph": {"n_train": 3}}}


def test_each_kind_of_version_gives_its_histories() -> None:
    assert list(histories(REASONER)) == ["reasoner"]
    assert histories(ENCODER)["encoder"][1]["valid_mrr"] == 0.41
    assert list(histories(FUSION)) == ["text head"]  # the graph head kept no history here
    assert histories({"metrics": {}}) == {}


def test_the_curves_are_drawn_into_a_png(tmp_path: Path) -> None:
    target = tmp_path / "curves" / "reasoner.png"
    drawn = plot(histories(REASONER), "qa family v1", target)
    assert drawn == ["loss", "val_hits@1"]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a missing value (an epoch not evaluated) is left out, not drawn as zero
    assert plot(histories(ENCODER), "encoder", tmp_path / "e.png") == ["loss", "valid_mrr"]
    with pytest.raises(NotFoundError, match="no per-epoch history"):
        plot({"x": [{"epoch": 1, "seconds": 3.0}]}, "none", tmp_path / "n.png")
