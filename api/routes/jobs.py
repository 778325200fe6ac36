"""/v1/jobs: background jobs (training, evaluation) and their progress."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, JobsDep
from api.jobs import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=list[Job], summary="All jobs of this process, newest first")
def list_jobs(jobs: JobsDep, _: AdminDep) -> list[Job]:
    return jobs.list()


@router.get("/{job_id}", response_model=Job, summary="One job's status and progress")
def get_job(job_id: str, jobs: JobsDep, _: AdminDep) -> Job:
    return jobs.get(job_id)
