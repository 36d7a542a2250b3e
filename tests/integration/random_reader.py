#!/usr/bin/env python3
"""random_reader.py - random 4 KiB reads of one file, checked against a copy.

    random_reader.py FILE SOURCE COUNT SEED [BLOCKS] [WAIT_CMD...]

Opens FILE once and reads COUNT pieces of 4 KiB at random offsets (a
seeded generator: the same offsets each run), each compared with the same
bytes of SOURCE.  With BLOCKS (a number > 0) the reads are spread over
that many distinct, evenly spaced blocks of FILE (one read per block, the
blocks in a scrambled order): a sparse reader.  With WAIT_CMD, after the
reads and with FILE still open, runs WAIT_CMD (a shell test, e.g. "is the
whole file cached?") every 0.2 s until it succeeds or 120 s went by.
Prints "reads N bad M waited S" and exits 1 when a piece differed or the
wait failed.  READER_JOBS=N in the environment: N threads share the reads
(as fio's iodepth would), each reading every Nth offset.  Used by cache_random_dense.sh.
"""
import os
import random
import subprocess
import sys
import threading
import time

path, source, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
blocks = int(sys.argv[5]) if len(sys.argv) > 5 else 0
wait_cmd = sys.argv[6:]
size = os.path.getsize(source)
rng = random.Random(seed)
if blocks:
    span = size // blocks
    order = list(range(blocks))
    rng.shuffle(order)
    offsets = [b * span + rng.randrange(0, span - 4096) for b in order[:count]]
else:
    offsets = [rng.randrange(0, size - 4096) for _ in range(count)]
fd = os.open(path, os.O_RDONLY)
sfd = os.open(source, os.O_RDONLY)
jobs = max(1, int(os.environ.get("READER_JOBS", "1")))
bads = [0] * jobs


def reader(k):
    for off in offsets[k::jobs]:
        if os.pread(fd, 4096, off) != os.pread(sfd, 4096, off):
            bads[k] += 1


threads = [threading.Thread(target=reader, args=(k,)) for k in range(jobs)]
for t in threads:
    t.start()
for t in threads:
    t.join()
bad = sum(bads)
os.close(sfd)
waited, ok = 0.0, True
if wait_cmd:
    start = time.monotonic()
    ok = False
    while time.monotonic() - start < 120:
        if subprocess.run(wait_cmd).returncode == 0:
            ok = True
            break
        time.sleep(0.2)
    waited = time.monotonic() - start
os.close(fd)
print("reads %d bad %d waited %.1f" % (len(offsets), bad, waited))
sys.exit(1 if bad or not ok else 0)
