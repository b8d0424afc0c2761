"""A private, fresh directory named in an environment variable, for the processes started inside.

``baryon server`` with several API workers hands each of them such directories (the metrics'
files, ``api.metrics``; the workers' sockets, ``api.siblings``): the workers are spawned and
inherit the environment. At the end the directory is removed and the variable put back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def private_dir(variable: str, prefix: str) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=prefix)
    previous = os.environ.get(variable)
    os.environ[variable] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
        shutil.rmtree(path, ignore_errors=True)
