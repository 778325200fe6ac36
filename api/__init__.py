"""kgr HTTP API (FastAPI)."""
