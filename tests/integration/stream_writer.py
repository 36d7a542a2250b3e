#!/usr/bin/env python3
"""stream_writer.py - the writer of the streamed-upload tests.

    stream_writer.py TARGET SRC ALT SIGDIR OP...

Opens TARGET (write-only, created, truncated) and runs the OPs in order,
writing in 1 MiB pieces, then closes it.  Sizes take K or M suffixes.

    w:START:END   write SRC[START:END] at START
    o:START:END   write ALT[START:END] at START (other bytes: an overwrite)
    t:SIZE        ftruncate to SIZE
    f             fsync
    p:NAME        pause: create SIGDIR/NAME, wait (60 s at most) for
                  SIGDIR/NAME.go
    h             hold: create SIGDIR/held and sleep (a crash test kills us)

With SIGDIR "-" pauses and holds are skipped: run on a plain file, this
writes the bytes the test expects.  The writer never forks, so the only
close of TARGET is its own (a child closing an inherited descriptor would
flush the file early).
"""
import os
import sys
import time

PIECE = 1 << 20


def size(text):
    mult = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
    return int(text[:-1] if mult > 1 else text) * mult


def write_range(fd, data, start, end):
    for off in range(start, end, PIECE):
        chunk = data[off:min(off + PIECE, end)]
        if os.pwrite(fd, chunk, off) != len(chunk):
            sys.exit(f"short write at {off}")


def wait_for(path):
    for _ in range(600):
        if os.path.exists(path):
            return
        time.sleep(0.1)
    sys.exit(f"nobody created {path}")


def main():
    target, src, alt, sig = sys.argv[1:5]
    ops = sys.argv[5:]
    with open(src, "rb") as f:
        data = f.read()
    with open(alt, "rb") as f:
        other = f.read()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for op in ops:
        kind, _, arg = op.partition(":")
        if kind in ("w", "o"):
            start, end = (size(x) for x in arg.split(":"))
            write_range(fd, data if kind == "w" else other, start, end)
        elif kind == "t":
            os.ftruncate(fd, size(arg))
        elif kind == "f":
            os.fsync(fd)
        elif kind == "p" and sig != "-":
            open(os.path.join(sig, arg), "w").close()
            wait_for(os.path.join(sig, arg + ".go"))
        elif kind == "h" and sig != "-":
            open(os.path.join(sig, "held"), "w").close()
            time.sleep(120)
        elif kind not in ("p", "h"):
            sys.exit(f"unknown op {op}")
    os.close(fd)


main()
