#!/usr/bin/env python3
"""power_writer.py - the writer and the checker of the power-cut test.

    power_writer.py write DIR ACKLOG SEED
    power_writer.py check ROOT SUFFIX ACKLOG SEED

write: in DIR, until killed or a call fails, over and over: a new file of
1 to 48 KiB; every fourth turn one of 160 to 400 KiB (past the size whose
bytes the journal entry carries), every sixteenth one of 3 to 5 MiB (more
than one cache block); every third file is written under a temporary name,
renamed into place and its folder fsynced (what an application does to
know a rename is on disk: the close alone does not promise it); and each turn appends one
line to DIR/log.txt (opened with O_APPEND, closed).  A line goes to ACKLOG
(flushed, on a disk the cut does not touch) only once the close, or the
folder's fsync, returned: what the application was told is safe.  The bytes of
each file follow from SEED and the turn.

check: every file ACKLOG names must be at ROOT/NAME+SUFFIX with exactly
its bytes; ROOT/log.txt+SUFFIX must begin with every acknowledged line, in
order, and hold nothing else but the next line (written, its close not
returned).  Prints each difference; exits 1 if there is one.
"""
import hashlib
import os
import random
import sys


def content(seed, turn):
    rng = random.Random(seed * 1_000_003 + turn)
    if turn % 16 == 15:
        size = rng.randint(3 << 20, 5 << 20)
    elif turn % 4 == 3:
        size = rng.randint(160 << 10, 400 << 10)
    else:
        size = rng.randint(1 << 10, 48 << 10)
    return rng.randbytes(size)


def line(turn):
    return f"line {turn}: acknowledged when its close returned\n".encode()


def write_all(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:1 << 20]):]
    finally:
        os.close(fd)


def write(directory, acklog, seed):
    with open(acklog, "a", encoding="utf-8") as ack:
        turn = 0
        while True:
            data = content(seed, turn)
            name = f"f{turn:05d}.bin"
            try:
                if turn % 3 == 2:
                    tmp = os.path.join(directory, f".tmp-{turn}")
                    write_all(tmp, data)
                    os.rename(tmp, os.path.join(directory, name))
                    dirfd = os.open(directory, os.O_RDONLY)     # the rename made durable
                    try:
                        os.fsync(dirfd)
                    finally:
                        os.close(dirfd)
                else:
                    write_all(os.path.join(directory, name), data)
                ack.write(f"file {name} {len(data)}\n")
                ack.flush()
                write_all(os.path.join(directory, "log.txt"), line(turn),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                ack.write(f"line {turn}\n")
                ack.flush()
            except OSError as err:
                print(f"turn {turn}: {err}", file=sys.stderr)
                return 0
            turn += 1


def check(root, suffix, acklog, seed):
    bad = 0
    lines = 0
    files = 0
    with open(acklog, encoding="utf-8") as ack:
        for entry in ack:
            kind, rest = entry.split(" ", 1)
            if kind == "line":
                lines += 1
                continue
            name, size = rest.split()
            files += 1
            turn = int(name[1:6])
            want = content(seed, turn)
            path = os.path.join(root, name + suffix)
            try:
                with open(path, "rb") as f:
                    have = f.read()
            except OSError as err:
                print(f"{name}: acknowledged ({size} bytes) but not on the cloud: {err}")
                bad += 1
                continue
            if have != want:
                print(f"{name}: {len(have)} bytes on the cloud (md5 "
                      f"{hashlib.md5(have).hexdigest()}), acknowledged {len(want)} "
                      f"(md5 {hashlib.md5(want).hexdigest()})")
                bad += 1
    if lines:
        want = b"".join(line(t) for t in range(lines))
        try:
            with open(os.path.join(root, "log.txt" + suffix), "rb") as f:
                have = f.read()
        except OSError as err:
            have = b""
            print(f"log.txt: {lines} lines acknowledged but not on the cloud: {err}")
            bad += 1
        if have and have not in (want, want + line(lines)):
            got = have.count(b"\n")
            print(f"log.txt: {got} lines on the cloud, {lines} acknowledged; "
                  f"first difference at byte {next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))}")
            bad += 1
    print(f"{files} files and {lines} appended lines acknowledged, {bad} wrong")
    return 1 if bad else 0


def main(argv):
    if len(argv) == 5 and argv[1] == "write":
        return write(argv[2], argv[3], int(argv[4]))
    if len(argv) == 6 and argv[1] == "check":
        return check(argv[2], argv[3], argv[4], int(argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
