"""Another process holding decrypted lake data in a hot cache of its own (the drop's refusal
and release tests): it prints the cached partition ids, lets go when told (a line on its
stdin), prints "cleared", then waits for a last line to exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLDER = """
import json, sys
from pathlib import Path
from amzigo_lab.config import load_settings
from amzigo_lab.home import open_lake
from amzigo_lab.lake import hot_cache
lake = open_lake(load_settings(Path(sys.argv[1]), env={}))
cache = hot_cache.enable(lake, 64 * 1024 * 1024)
lake.scan("orders").engine_source()
print(json.dumps(sorted(cache.partition_ids())), flush=True)
sys.stdin.readline()  # the test says when to let go
hot_cache.disable(lake)
print("cleared", flush=True)
sys.stdin.readline()
"""


def start_holder(home: Path) -> subprocess.Popen[str]:
    """The holder process on `home` (pipes open; read its first line for the ids)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdin is not None and proc.stdout is not None
    return proc
