"""Where Azurite spent its CPU: a summary of the ``.cpuprofile`` files Node wrote.

  BENCH_AZURITE_PROFILE=/tmp/azp python bench/copy_vs_rclone.py --sets multipart-bare
  python bench/azurite_profile.py /tmp/azp/*/*.cpuprofile

Per profile: the CPU time sampled (idle left out), and the functions with the most time of
their own, with the two groups that told a slow run from a fast one in session 19 summed
apart: ``(garbage collector)``, and the extent file's reads and writes (Azurite writes every
block it is sent to an extent file, then reads it back to compute its MD5).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

#: Native frames of Azurite's extent file I/O (fs write of a block, fs read of it back,
#: the read-back's buffers).
_EXTENT_IO = ("writeBuffer", "read", "createUnsafeBuffer")


def self_times(profile: dict[str, object]) -> Counter[str]:
    """Microseconds of self time per function (``name file:line``) in a V8 CPU profile."""
    nodes = {int(n["id"]): n for n in profile["nodes"]}  # type: ignore[attr-defined]
    samples: list[int] = list(profile["samples"])  # type: ignore[call-overload]
    deltas: list[int] = list(profile["timeDeltas"])  # type: ignore[call-overload]
    out: Counter[str] = Counter()
    # timeDeltas[i] is the time before sample i: sample i lasted until sample i + 1.
    for node_id, dt in zip(samples, [*deltas[1:], 0], strict=True):
        frame = nodes[node_id]["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        where = frame["url"].rsplit("/", 1)[-1]
        out[f"{name} {where}:{frame['lineNumber']}" if where else name] += dt
    return out


def summary(path: Path, top: int) -> list[str]:
    times = self_times(json.loads(path.read_text()))
    idle = sum(t for k, t in times.items() if k.startswith("(idle)"))
    busy = sum(times.values()) - idle
    gc = sum(t for k, t in times.items() if k.startswith("(garbage collector)"))
    io = sum(t for k, t in times.items() if k.split(" ", 1)[0] in _EXTENT_IO)
    lines = [f"{path}: {busy / 1e6:.2f} s busy (garbage collector {gc / 1e6:.2f} s, "
             f"extent file I/O {io / 1e6:.2f} s)"]
    for key, t in times.most_common():
        if key.startswith("(idle)"):
            continue
        if len(lines) > top:
            break
        lines.append(f"  {t / 1e6:6.2f} s  {key}")
    return lines


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=12, help="functions shown per profile")
    args = ap.parse_args(argv)
    for p in args.profiles:
        try:
            print("\n".join(summary(p, args.top)))
        except (OSError, ValueError, KeyError) as e:
            print(f"{p}: not a readable V8 CPU profile ({e})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
