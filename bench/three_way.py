"""lakeshift, rclone and the bare loop on the multipart set, rotated in one series.

  python bench/three_way.py [ROUNDS]        # default 4 rounds, after one warm-up of each
  BENCH_AZURITE_MEMORY=1 python bench/three_way.py 4   # Azurite in memory

Each run gets fresh emulators (bench/copy_vs_rclone.py ``one_run``); the order of the three
tools rotates each round so none always runs first or last.  Prints every run and the ratios
of the mean MB/s.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import copy_vs_rclone as cvr
from common import Measured

#: The set each tool runs: rclone against the multipart set, lakeshift and the bare loop on
#: the same data through the set that runs the bare loop.
SET = {"rclone": "multipart", "bare": "multipart-bare", "lakeshift": "multipart-bare"}
TOOLS = ["rclone", "bare", "lakeshift"]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    for tool in TOOLS:
        print("(warm-up)", cvr.one_run(tool, SET[tool], []).row(), flush=True)
    runs: dict[str, list[Measured]] = {t: [] for t in TOOLS}
    for r in range(rounds):
        for tool in TOOLS[r % 3:] + TOOLS[:r % 3]:
            m = cvr.one_run(tool, SET[tool], [])
            runs[tool].append(m)
            print(r, m.row(), flush=True)
    mean = {t: statistics.mean(m.nbytes / 1048576 / m.wall for m in runs[t]) for t in TOOLS}
    print("mean MB/s", {t: round(v, 1) for t, v in mean.items()})
    print(f"bare/rclone {mean['bare'] / mean['rclone']:.2f}  "
          f"lakeshift/rclone {mean['lakeshift'] / mean['rclone']:.2f}  "
          f"lakeshift/bare {mean['lakeshift'] / mean['bare']:.2f}")


if __name__ == "__main__":
    main()
