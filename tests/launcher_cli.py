"""The `cstor` command run as an operator runs it (python -m launcher), for tests of its
subcommands (rotate-key, rebuild-read-models): what it prints is part of what is tested."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def run_cstor(
    *args: str, env: Mapping[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """`cstor <args>` with ``env`` as its whole environment; its output as text. A failure
    is the test's to check (its return code and words), not an exception here."""
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
