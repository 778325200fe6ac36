"""kgr's log lines: one handler on the ``kgr`` logger, tagged with the process id so that the
lines of several ``kgr serve`` workers can be told apart."""

from __future__ import annotations

import logging
import os

_MARK = "kgr_handler"


def configure_logging(level: int = logging.INFO) -> None:
    """Install kgr's handler once per process (each uvicorn worker calls this); uvicorn's own
    loggers keep their handlers."""
    kgr_log = logging.getLogger("kgr")
    if any(getattr(h, _MARK, False) for h in kgr_log.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(
        f"%(levelname)s:     [{os.getpid()}] %(name)s: %(message)s"))
    setattr(handler, _MARK, True)
    kgr_log.addHandler(handler)
    kgr_log.setLevel(level)
