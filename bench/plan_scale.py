"""Plan and list a large partition set in process: time and peak RSS at 100k vs 1M keys.

  python bench/plan_scale.py            # 100,000 and 1,000,000 keys, each in a fresh process

Each size runs in its own process under /usr/bin/time: a synthetic store yields sorted keys
page by page (1,000 a page, like S3) in folders of 1,000; `plan --partition-by auto` lists
the folders in parallel, groups them into partitions of about 10,000 and writes the job to a
SQLite control DB; then a dry-run pipeline lists every key
through the same listing/compare path a copy uses. RSS must stay flat as keys grow.
"""

from __future__ import annotations

import asyncio
import bisect
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from lakeshift.control.repository import ControlDB  # noqa: E402
from lakeshift.engine.events import EventBus  # noqa: E402
from lakeshift.engine.pipeline import CopyOptions, run_pipeline  # noqa: E402
from lakeshift.engine.pipeline_stats import StatsCounter  # noqa: E402
from lakeshift.engine.retry import RetryPolicy  # noqa: E402
from lakeshift.engine.slots import SlotPool  # noqa: E402
from lakeshift.model import ObjectInfo, TransferStats  # noqa: E402
from lakeshift.plan.partitioner import PlannedSource, auto_partitions  # noqa: E402
from lakeshift.plan.source import SourceSpec  # noqa: E402
from lakeshift.stores.base import Page, StoreConfig  # noqa: E402
from lakeshift.stores.local.store import LocalStore  # noqa: E402
from lakeshift.stores.s3.store import CAPABILITIES as S3_CAPABILITIES  # noqa: E402
from lakeshift.urls import parse_url  # noqa: E402


class SyntheticStore:
    """Sorted keys 'data/dNNNN/objNNNNNNN.bin', answered page by page as a store's
    ``list_page`` does (1,000 a page; the token is the page's last key)."""

    page_size = 1000
    capabilities = S3_CAPABILITIES

    def __init__(self, n: int) -> None:
        self.n = n
        self.url = parse_url("s3://synthetic/data/")

    def key(self, i: int) -> str:
        return f"data/d{i // 1000:04d}/obj{i:07d}.bin"

    def _bounds(self, prefix: str) -> tuple[int, int]:
        if prefix.startswith("data/d") and len(prefix) > 6:
            folder = int(prefix[6:10])
            return folder * 1000, min((folder + 1) * 1000, self.n)
        return 0, self.n

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        await asyncio.sleep(0)
        if delimiter and prefix == "data/":
            return Page([], [f"data/d{d:04d}/" for d in range(-(-self.n // 1000))])
        lo, hi = self._bounds(prefix)
        after = token if token is not None else start_after
        if after is not None:  # keys grow with i: the first index after it
            lo = max(lo, bisect.bisect_right(range(self.n), after, key=self.key))
        page = [ObjectInfo(self.key(i), 1024, None, f"{i:032x}", None)
                for i in range(lo, min(lo + self.page_size, hi))]
        more = lo + self.page_size < hi and not delimiter
        return Page(page, (), page[-1].key if more and page else None)


async def child(n: int) -> None:
    store = SyntheticStore(n)
    spec = SourceSpec("data/", "data/")
    t0 = time.monotonic()
    specs = await auto_partitions(store,  # type: ignore[arg-type]
                                  PlannedSource("s3://synthetic/data/", spec, "s3://synthetic/",
                                                "/tmp/out/"), 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        db = ControlDB(f"sqlite:///{tmp}/plan.db", create=True)
        db.create_job("scale", "/tmp/out", {}, specs)
        db.close()
        t_plan = time.monotonic() - t0
        stats = TransferStats()
        dst = LocalStore(StoreConfig(parse_url(tmp + "/empty")))
        t1 = time.monotonic()
        await run_pipeline(store, dst, spec, "", CopyOptions(dry_run=True),  # type: ignore[arg-type]
                           EventBus([StatsCounter(stats, [])]), SlotPool(32), RetryPolicy())
        t_list = time.monotonic() - t1
    print(f"{n:>9} keys: plan {len(specs)} partitions in {t_plan:.1f} s "
          f"({n / t_plan:,.0f} keys/s); list+compare {stats.listed:,} keys in {t_list:.1f} s "
          f"({stats.listed / t_list:,.0f} keys/s)", flush=True)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(child(int(sys.argv[2])))
        return 0
    for n in (100_000, 1_000_000):
        stats = Path(tempfile.mkstemp()[1])
        subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", str(stats), sys.executable,
                        __file__, "--child", str(n)], check=True)
        rss_kb, wall = stats.read_text().split()[-2:]
        stats.unlink()
        print(f"{'':>9}       peak RSS {int(rss_kb) / 1024:.0f} MB, wall {wall} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
