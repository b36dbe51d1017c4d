"""`archlab.jobs` exposes each job as a function, whichever job modules were imported first."""

from __future__ import annotations

import subprocess
import sys


def test_jobs_are_functions_after_any_import_order():
    code = ("import archlab.jobs.evaluate, archlab.jobs.explain, archlab.jobs.predict, archlab.jobs.generate; "
            "from archlab import jobs; "
            "assert all(callable(getattr(jobs, n)) and not isinstance(getattr(jobs, n), type(jobs)) "
            "for n in ('train', 'predict', 'generate', 'explain', 'evaluate_checkpoint', 'meta_train'))")
    subprocess.run([sys.executable, "-c", code], check=True)
