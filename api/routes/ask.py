"""/v1/ask (placeholder: filled in by the ask work)."""

from fastapi import APIRouter

router = APIRouter(tags=["ask"])
