"""/v1/migrations (placeholder: filled in by the migrations work)."""

from fastapi import APIRouter

router = APIRouter(tags=["migrations"])
