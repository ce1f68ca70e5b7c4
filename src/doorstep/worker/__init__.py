"""Background work: a registry of periodic jobs and the runner that loops over the due ones.

Runs in-process under ``doorstep serve`` (unless ``--no-worker``) and as ``doorstep worker``
(one or several processes). Jobs claim their work through the database, so any number of
runners may run side by side.
"""

from doorstep.worker.jobs import JOBS, Job, registered_jobs
from doorstep.worker.runner import Runner, RunnerStats

__all__ = ["JOBS", "Job", "Runner", "RunnerStats", "registered_jobs"]
