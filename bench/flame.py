"""Summaries of py-spy collapsed-stack profiles (`py-spy record --format raw`).

    python -m bench.flame PROFILE.txt [--top 25] [--match pinsched]

Prints, for the frames whose location contains `--match`, the share of samples where the frame
is on the stack (inclusive) and where it is the innermost matching frame ("self": time spent in
it or in library code it called that is not itself a matching frame).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def summarize(path: Path, *, match: str = "pinsched", top: int = 25) -> dict[str, Any]:
    stacks = load(path)
    total = sum(c for _, c in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, count in stacks:
        mine = [f for f in frames if match in f]
        for f in set(mine):
            inclusive[f] += count
        if mine:
            own[mine[-1]] += count
        if frames:
            leaf[frames[-1]] += count

    def pct(c: int) -> float:
        return round(100 * c / total, 1)

    return {
        "file": str(path),
        "samples": total,
        "inclusive": [(f, pct(c)) for f, c in inclusive.most_common(top)],
        "self": [(f, pct(c)) for f, c in own.most_common(top)],
        "leaf": [(f, pct(c)) for f, c in leaf.most_common(top)],
    }


def summarize_dir(folder: Path, top: int = 25) -> list[dict[str, Any]]:
    return [summarize(p, top=top) for p in sorted(folder.glob("*.txt"))]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.flame")
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="pinsched")
    args = p.parse_args()
    s = summarize(args.profile, match=args.match, top=args.top)
    print(f"{s['file']}: {s['samples']} samples")
    for title in ("inclusive", "self", "leaf"):
        print(f"\n{title} (% of samples)")
        for frame, share in s[title]:
            print(f"  {share:5.1f}  {frame}")


if __name__ == "__main__":
    main()
