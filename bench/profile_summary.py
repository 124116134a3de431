"""Summarise a ``py-spy record --format raw`` profile: where the samples go, inclusive and self.

``--gil`` profiles count only samples of the thread holding the interpreter lock, i.e. Python CPU time, so
shares there are shares of the server's CPU. Run from the repository root::

    python -m bench.profile_summary /tmp/durable.txt [--top 40] [--match storage,tasks]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence

_FRAME = re.compile(r"^(?P<function>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:12)`` → ``module.py:function`` (other frames stay as they are)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    short = "/".join(path.split("/")[-2:]) if "machinery" in path else path.split("/")[-1]
    return f"{short}:{match['function']}"


def summarise(lines: Sequence[str]) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if "_find_and_load" in stack:
            continue  # the server starting (imports), not serving
        total += count
        frames = [frame_name(frame) for frame in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__)
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="comma-separated substrings: only these frames")
    args = parser.parse_args(argv)
    with open(args.profile, encoding="utf-8") as handle:
        total, inclusive, own = summarise(handle.readlines())
    wanted = [part for part in args.match.split(",") if part]
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        shown = 0
        for name, count in counter.most_common():
            if wanted and not any(part in name for part in wanted):
                continue
            print(f"  {100.0 * count / max(1, total):5.1f} %  {name}")
            shown += 1
            if shown >= args.top:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
