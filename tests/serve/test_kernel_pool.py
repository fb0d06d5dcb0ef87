"""The warm kernel pool of `OwnedKernelManager`, with real kernels (in process, no server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from amzigo_lab.serve.kernels import REQUEST_USER, OwnedKernelManager
from amzigo_lab.serve.warmup import WARMUP_CODE


async def _run_code(km: OwnedKernelManager, kernel_id: str, code: str) -> str:
    """Run `code` in the kernel; return what it printed."""
    client: Any = km.get_kernel(kernel_id).client()
    client.start_channels()
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    try:
        await client.wait_for_ready(timeout=60)
        await client.execute_interactive(code, timeout=60, output_hook=hook)
    finally:
        client.stop_channels()
    return "".join(out)


def _with_manager(
    tmp_path: Path, test: Callable[[OwnedKernelManager], Awaitable[None]], **traits: Any
) -> None:
    async def main() -> None:
        km = OwnedKernelManager(
            root_dir=str(tmp_path),
            pool_refill_delay=0.0,
            transport_encryption="required",  # as the servers run them
            **traits,
        )
        try:
            await test(km)
        finally:
            await km.shutdown_all(now=True)

    # in a thread of its own: the browser tests' Playwright keeps a loop running in this one
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the kernel pool test hung"
    if errors:
        raise errors[0]


def test_a_pooled_kernel_is_warm_ownerless_uncullable_then_handed_over(tmp_path: Path) -> None:
    os.environ["AMZIGO_POOL_TEST_SECRET"] = "must-not-reach-kernels"

    async def test(km: OwnedKernelManager) -> None:
        await km.fill_pool()
        (pooled,) = km.pooled
        assert km.owner_of(pooled) is None
        assert await _run_code(km, pooled, "print(warmed)") == "yes\n"
        # the culler leaves a waiting kernel alone, however long it has been idle
        kernel: Any = km.get_kernel(pooled)
        kernel.last_activity -= dt.timedelta(hours=1)
        await km.cull_kernels()
        assert pooled in km
        # nobody can start (or attach to) a kernel without a logged-in user
        with pytest.raises(web.HTTPError) as refused:
            await km.start_kernel(kernel_name="python3")
        assert refused.value.status_code == 403
        REQUEST_USER.set("sam")
        handed = await km.start_kernel(kernel_name="python3", env={"QUERY_STRING": "tenant=x"})
        assert handed == pooled and km.owner_of(handed) == "sam"
        assert [k["id"] for k in km.list_kernels()] == [handed]
        env = await _run_code(km, handed, "import os; print(sorted(os.environ))")
        assert "AMZIGO_POOL_TEST_SECRET" not in env
        # the pool refills (refill delay 0 here) with a new kernel nobody owns
        for _ in range(600):
            if km.pooled:
                break
            await asyncio.sleep(0.1)
        (refill,) = km.pooled
        assert refill != handed and km.owner_of(refill) is None
        assert [k["id"] for k in km.list_kernels()] == [handed]  # sam sees only his own
        # an owned kernel that idles too long is culled
        kernel = km.get_kernel(handed)
        kernel.last_activity -= dt.timedelta(hours=1)
        await km.cull_kernels()
        assert handed not in km and refill in km

    try:
        _with_manager(
            tmp_path,
            test,
            pool_size=1,
            warmup_code="warmed = 'yes'",
            cull_idle_timeout=60,
        )
    finally:
        del os.environ["AMZIGO_POOL_TEST_SECRET"]


def test_a_failed_warm_up_discards_the_kernel_and_pages_get_a_cold_one(tmp_path: Path) -> None:
    async def test(km: OwnedKernelManager) -> None:
        await km.fill_pool()
        assert km.pooled == () and km.list_kernel_ids() == []  # the broken one was shut down
        REQUEST_USER.set("bob")
        kernel_id = await km.start_kernel(kernel_name="python3")
        assert km.owner_of(kernel_id) == "bob"
        assert await _run_code(km, kernel_id, "print(1 + 1)") == "2\n"

    _with_manager(tmp_path, test, pool_size=1, warmup_code="raise RuntimeError('broken')")


def test_the_warm_up_reads_no_home_and_leaves_no_names(tmp_path: Path) -> None:
    """WARMUP_CODE as the pool runs it, with AMZIGO_HOME pointing nowhere: it must not need one."""
    code = (
        "before = set(globals())\n"
        f"exec({WARMUP_CODE!r})\n"
        "left = set(globals()) - before - {'before'}\n"
        "assert not left, left\n"
        "import sys\n"
        "assert 'amzigo_lab.serve.dashboard' in sys.modules\n"
    )
    env = {**os.environ, "AMZIGO_HOME": str(tmp_path / "no-such-home")}
    env.pop("AMZIGO_MASTER_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "no-such-home").exists()
