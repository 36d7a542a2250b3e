#!/usr/bin/env python3
"""posix_compare.py - compares two posix_ops.py transcripts, knowing the
differences a cloud kind is expected to have.

    python3 posix_compare.py PLAIN.out MOUNT.out KIND

PLAIN.out is the transcript of a plain directory, MOUNT.out that of a
skyfs mount over a cloud of kind KIND (local, s3, azure).  Lines are
"label -> result"; the script prints the same labels in the same order
everywhere, so the two are compared line by line.  A line whose result
differs is a known difference when posix_known_differences.txt (next to
this file) lists its label for KIND, with the reason; any other difference
is unexpected.  A listed difference that no longer shows is reported too,
so the list stays true.

Prints every difference, then one line:
    KIND: N operations, D differences (K known, U unexpected, S listed but gone)
and exits 1 when U or S is not 0 (or the transcripts do not line up).
"""

import os
import sys

KNOWN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "posix_known_differences.txt")


def load_known(kind):
    """{label: reason} of the differences listed for `kind`."""
    known = {}
    with open(KNOWN_FILE, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2].strip():
                sys.exit(f"{KNOWN_FILE}:{number}: want KINDS<TAB>LABEL<TAB>REASON")
            kinds, label, reason = parts
            if kind in kinds.split(",") or kinds == "*":
                known[label] = reason
    return known


def split(line):
    label, sep, value = line.partition(" -> ")
    return (label, value) if sep else (line, None)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: posix_compare.py PLAIN.out MOUNT.out KIND")
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        plain = f.read().splitlines()
    with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
        mount = f.read().splitlines()
    kind = sys.argv[3]
    known = load_known(kind)
    ops = sum(1 for line in plain if split(line)[1] is not None)
    if len(plain) != len(mount):
        print(f"the transcripts differ in length: {len(plain)} lines on the plain "
              f"directory, {len(mount)} on the mount")
    seen_known, known_lines, unexpected = set(), 0, 0
    for i, (p, m) in enumerate(zip(plain, mount)):
        (pl, pv), (ml, mv) = split(p), split(m)
        if pl != ml:
            print(f"line {i + 1}: the transcripts no longer line up:\n  plain: {p}\n  mount: {m}")
            unexpected += 1
            break
        if pv == mv:
            continue
        if pl in known:
            seen_known.add(pl)
            known_lines += 1
            print(f"known:      {pl}\n  plain: {pv}\n  mount: {mv}\n  why:   {known[pl]}")
        else:
            unexpected += 1
            print(f"UNEXPECTED: {pl}\n  plain: {pv}\n  mount: {mv}")
    gone = sorted(set(known) - seen_known)
    for label in gone:
        print(f"LISTED BUT GONE (remove it from the list?): {label}")
    if len(plain) != len(mount):
        unexpected += 1
    total = known_lines + unexpected
    print(f"{kind}: {ops} operations, {total} differences ({known_lines} known, "
          f"{unexpected} unexpected, {len(gone)} listed but gone)")
    return 1 if unexpected or gone else 0


if __name__ == "__main__":
    sys.exit(main())
