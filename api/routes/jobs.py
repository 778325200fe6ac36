"""/v1/jobs: background jobs (training, evaluation) and their progress."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, JobsDep
from api.errors import errors
from api.jobs import Job
from core.errors import NotFoundError

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[Job], summary="The jobs of every API process, newest first")
def list_jobs(jobs: JobsDep, principal: AdminDep) -> list[Job]:
    return [job for job in jobs.list() if principal.allows(job.domain)]


@router.get("/{job_id}", response_model=Job, summary="One job's status and progress",
            responses=errors(404))
def get_job(job_id: str, jobs: JobsDep, principal: AdminDep) -> Job:
    job = jobs.get(job_id)
    if not principal.allows(job.domain):  # as unknown as a job that does not exist
        raise NotFoundError(f"no job {job_id!r}")
    return job
