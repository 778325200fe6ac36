"""Serving reads model versions through the checkpoint modules and never loads training code:
a served process does not carry the optimiser loops, supervision and data preparation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAINING_MODULES = {"fusion.learn.train", "usecases.train_qa", "fusion.reasoner.learn",
                    "fusion.reasoner.train", "fusion.reasoner.supervision",
                    "fusion.learn.questions"}


def _modules_after_import(module: str) -> set[str]:
    code = (f"import json, sys; import {module}; print(json.dumps(sorted("
            "m for m in sys.modules if m.startswith(('fusion', 'usecases')))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_serving_pipeline_imports_no_training_module() -> None:
    loaded = _modules_after_import("fusion.serve.pipeline")
    assert "fusion.serve.checkpoint" in loaded and "fusion.reasoner.serve" in loaded
    assert loaded & TRAINING_MODULES == set()
    assert not [m for m in loaded if m.startswith("fusion.learn")]


def test_training_does_import_them() -> None:
    # the check above can fail: importing training loads what serving must not
    loaded = _modules_after_import("fusion.reasoner.train")
    assert {"fusion.reasoner.learn", "fusion.reasoner.supervision"} <= loaded
