"""Training curves of a stored model version (encoder or QA): the per-epoch history each
training run keeps with its version, read back and drawn as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import NotFoundError
from core.settings import Settings

CONFIG_FILE = "config.json"
# what an epoch row may hold, in the order the panels are drawn
SERIES = ("loss", "val_loss", "val_hits@1", "valid_mrr")


def version_folder(settings: Settings, kind: str, domain: str, version: str) -> Path:
    from fusion.serve.versions import artifacts_of, check_kind

    store = artifacts_of(settings, check_kind(kind))
    if version not in store.versions(domain):
        raise NotFoundError(f"no {kind} version {version!r} for domain {domain!r}")
    return store.path(domain, version)


def histories(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each training history a version's config holds, by the model it trained: a reasoner's
    (``history``), an encoder's (``metrics.history``), a fusion model's heads
    (``metrics.<head>.history``)."""
    found: dict[str, list[dict[str, Any]]] = {}
    metrics = config.get("metrics") or {}
    candidates = [(config.get("kind") or "model", config.get("history")),
                  ("encoder", metrics.get("history"))]
    candidates += [(f"{head} head", (metrics.get(head) or {}).get("history"))
                   for head in ("text", "graph") if isinstance(metrics.get(head), dict)]
    for name, rows in candidates:
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            found[name] = rows
    return found


def read_histories(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return histories(json.loads((folder / CONFIG_FILE).read_text()))


def plot(curves: dict[str, list[dict[str, Any]]], title: str, target: Path) -> list[str]:
    """Draw one panel per series that some history has (loss, validation Hits@1 or MRR, ...)
    against the epoch into ``target`` (PNG); returns the series drawn."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    drawn = [s for s in SERIES if any(isinstance(r.get(s), int | float) for rows in
                                      curves.values() for r in rows)]
    if not drawn:
        raise NotFoundError(f"{title}: no per-epoch history is stored with this version")
    fig, axes = plt.subplots(1, len(drawn), figsize=(4.5 * len(drawn), 3.4), squeeze=False)
    for ax, series in zip(axes[0], drawn, strict=True):
        for name, rows in curves.items():
            points = [(r["epoch"], r[series]) for r in rows
                      if isinstance(r.get(series), int | float) and "epoch" in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(series)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return drawn
