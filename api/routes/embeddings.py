"""/v1/embeddings (placeholder: filled in by the embeddings work)."""

from fastapi import APIRouter

router = APIRouter(tags=["embeddings"])
