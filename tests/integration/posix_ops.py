#!/usr/bin/env python3
"""posix_ops.py - runs a fixed script of POSIX file operations in DIR.

    python3 posix_ops.py DIR

DIR must exist and be empty.  Every operation prints one line: what was
done and its result ("ok", a value, or the errno name).  Nothing printed
depends on where DIR is, on inode numbers or on times that were not set
explicitly, so running the script on a skyfs mount and on a plain
directory must print the same lines: local_posix.sh diffs the two.

Used by tests/integration/local_posix.sh (and any test that wants to
compare a mount with a plain directory).
"""

import errno
import hashlib
import os
import stat
import sys


def result(label, fn):
    """Run fn(); print 'label -> value' or 'label -> ERRNO'."""
    try:
        value = fn()
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        print(f"{label} -> {name}")
        return None
    print(f"{label} -> {'ok' if value is None else value}")
    return value


def digest(data):
    return f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:16]}"


def read_all(path):
    with open(path, "rb") as f:
        return digest(f.read())


def pwrite(path, data, offset, flags=os.O_WRONLY):
    fd = os.open(path, flags)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def append(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def create(path, mode=0o644, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    os.close(os.open(path, flags, mode))


def ftruncate(path, size):
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def kind(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return "other"


def describe(path, with_mtime=False, follow=False):
    """The stat fields that must agree between a mount and a plain dir."""
    st = os.stat(path) if follow else os.lstat(path)
    text = f"{kind(st.st_mode)} mode={stat.S_IMODE(st.st_mode):04o}"
    if stat.S_ISREG(st.st_mode):
        text += f" size={st.st_size} nlink={st.st_nlink}"
    if stat.S_ISLNK(st.st_mode):
        text += f" size={st.st_size}"
    if with_mtime:
        text += f" mtime_ns={st.st_mtime_ns}"
    return text


def listing(path):
    """Sorted names with their kinds, as readdir + lstat see them."""
    names = sorted(os.listdir(path))
    return " ".join(f"{n}:{kind(os.lstat(os.path.join(path, n)).st_mode)}"
                    for n in names) or "(empty)"


def user_xattrs(path):
    # user.skyfs.* are skyfs's own read-only facts (the etag), not the
    # file's: a plain directory has none of them.
    return " ".join(sorted(a for a in os.listxattr(path)
                           if a.startswith("user.")
                           and not a.startswith("user.skyfs."))) or "(none)"


def files_and_data():
    result("create f1", lambda: create("f1"))
    result("create f1 again O_EXCL", lambda: create("f1"))
    result("stat f1", lambda: describe("f1"))
    result("pwrite f1 @0", lambda: pwrite("f1", b"hello world\n", 0))
    result("pwrite f1 @100 (hole)", lambda: pwrite("f1", b"after a hole", 100))
    result("pwrite f1 @6 (overwrite)", lambda: pwrite("f1", b"WORLD", 6))
    result("read f1", lambda: read_all("f1"))
    result("stat f1", lambda: describe("f1"))
    result("append f1", lambda: append("f1", b"appended\n"))
    result("append f1 again", lambda: append("f1", b"and more\n"))
    result("read f1", lambda: read_all("f1"))
    result("truncate f1 50 (shrink)", lambda: os.truncate("f1", 50))
    result("read f1", lambda: read_all("f1"))
    result("truncate f1 5000 (grow)", lambda: os.truncate("f1", 5000))
    result("read f1", lambda: read_all("f1"))
    result("ftruncate f1 7", lambda: ftruncate("f1", 7))
    result("read f1", lambda: read_all("f1"))
    result("stat f1", lambda: describe("f1"))
    result("create empty", lambda: create("empty"))
    result("read empty", lambda: read_all("empty"))
    result("O_TRUNC rewrite f1", lambda: pwrite(
        "f1", b"rewritten", 0, os.O_WRONLY | os.O_TRUNC))
    result("read f1", lambda: read_all("f1"))
    result("open missing", lambda: read_all("missing"))
    result("open f1 O_DIRECTORY", lambda: os.close(
        os.open("f1", os.O_RDONLY | os.O_DIRECTORY)))


def renames():
    result("rename f1 f2", lambda: os.rename("f1", "f2"))
    result("stat f1", lambda: describe("f1"))
    result("read f2", lambda: read_all("f2"))
    result("create x", lambda: create("x"))
    result("write x", lambda: pwrite("x", b"x content", 0))
    result("create y", lambda: create("y"))
    result("write y", lambda: pwrite("y", b"y has other content", 0))
    result("rename x over y", lambda: os.rename("x", "y"))
    result("stat x", lambda: describe("x"))
    result("read y", lambda: read_all("y"))
    result("rename missing z", lambda: os.rename("missing", "z"))
    result("mkdir d1", lambda: os.mkdir("d1"))
    result("mkdir d1/sub", lambda: os.mkdir("d1/sub"))
    result("create d1/a", lambda: create("d1/a"))
    result("write d1/a", lambda: pwrite("d1/a", b"a" * 3000, 0))
    result("create d1/sub/b", lambda: create("d1/sub/b"))
    result("write d1/sub/b", lambda: pwrite("d1/sub/b", b"deep file", 0))
    result("rename d1 d2", lambda: os.rename("d1", "d2"))
    result("stat d1", lambda: describe("d1"))
    result("list d2", lambda: listing("d2"))
    result("list d2/sub", lambda: listing("d2/sub"))
    result("read d2/a", lambda: read_all("d2/a"))
    result("read d2/sub/b", lambda: read_all("d2/sub/b"))
    result("rename y into d2", lambda: os.rename("y", "d2/y"))
    result("read d2/y", lambda: read_all("d2/y"))
    result("mkdir emptydir", lambda: os.mkdir("emptydir"))
    result("rename file over dir", lambda: os.rename("d2/y", "emptydir"))
    result("rename dir over file", lambda: os.rename("emptydir", "f2"))
    result("rename dir over non-empty dir", lambda: os.rename("emptydir", "d2"))


def directories():
    result("mkdir d2 (exists)", lambda: os.mkdir("d2"))
    result("mkdir f2 (a file)", lambda: os.mkdir("f2"))
    result("mkdir in missing parent", lambda: os.mkdir("nope/sub"))
    result("rmdir emptydir", lambda: os.rmdir("emptydir"))
    result("stat emptydir", lambda: describe("emptydir"))
    result("rmdir d2 (non-empty)", lambda: os.rmdir("d2"))
    result("rmdir missing", lambda: os.rmdir("missing"))
    result("rmdir f2 (a file)", lambda: os.rmdir("f2"))
    result("unlink d2/y", lambda: os.unlink("d2/y"))
    result("unlink d2/y again", lambda: os.unlink("d2/y"))
    result("unlink missing", lambda: os.unlink("missing"))
    result("unlink d2 (a dir)", lambda: os.unlink("d2"))
    result("list d2", lambda: listing("d2"))
    result("unlink d2/a", lambda: os.unlink("d2/a"))
    result("unlink d2/sub/b", lambda: os.unlink("d2/sub/b"))
    result("rmdir d2/sub", lambda: os.rmdir("d2/sub"))
    result("rmdir d2", lambda: os.rmdir("d2"))
    result("stat d2", lambda: describe("d2"))


def symlinks():
    result("symlink ln -> f2", lambda: os.symlink("f2", "ln"))
    result("symlink ln again", lambda: os.symlink("f2", "ln"))
    result("readlink ln", lambda: os.readlink("ln"))
    result("lstat ln", lambda: describe("ln"))
    result("stat ln (follows)", lambda: describe("ln", follow=True))
    result("read via ln", lambda: read_all("ln"))
    result("symlink dangling -> nowhere", lambda: os.symlink("nowhere", "dangling"))
    result("readlink dangling", lambda: os.readlink("dangling"))
    result("read via dangling", lambda: read_all("dangling"))
    result("readlink f2 (not a link)", lambda: os.readlink("f2"))
    result("unlink dangling", lambda: os.unlink("dangling"))


def attributes():
    result("chmod f2 0600", lambda: os.chmod("f2", 0o600))
    result("stat f2", lambda: describe("f2"))
    result("chmod f2 0755", lambda: os.chmod("f2", 0o755))
    result("stat f2", lambda: describe("f2"))
    result("chmod missing", lambda: os.chmod("missing", 0o644))
    result("mkdir modes", lambda: os.mkdir("modes", 0o750))
    result("stat modes", lambda: describe("modes"))
    result("chmod modes 0700", lambda: os.chmod("modes", 0o700))
    result("stat modes", lambda: describe("modes"))
    result("utime f2 (whole seconds)",
           lambda: os.utime("f2", ns=(1_000_000_000_000_000_000,
                                      1_234_567_890_000_000_000)))
    result("stat f2", lambda: describe("f2", with_mtime=True))
    result("utime f2 (nanoseconds)",
           lambda: os.utime("f2", ns=(1_000_000_000_000_000_000,
                                      1_300_000_000_123_456_789)))
    result("stat f2", lambda: describe("f2", with_mtime=True))
    result("utime modes", lambda: os.utime("modes", ns=(1_000_000_000_000_000_000,
                                                        1_111_111_111_000_000_000)))
    result("stat modes", lambda: describe("modes", with_mtime=True))
    result("utime missing", lambda: os.utime("missing", ns=(0, 0)))
    result("write f2 after utime", lambda: pwrite("f2", b"new", 0))
    result("read f2", lambda: read_all("f2"))


def xattrs():
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("setxattr user.color", lambda: os.setxattr("f2", "user.color", b"blue"))
    result("getxattr user.color", lambda: os.getxattr("f2", "user.color").decode())
    result("setxattr user.size", lambda: os.setxattr("f2", "user.size", b"12345"))
    result("setxattr user.color (replace)",
           lambda: os.setxattr("f2", "user.color", b"green", os.XATTR_REPLACE))
    result("getxattr user.color", lambda: os.getxattr("f2", "user.color").decode())
    result("setxattr user.color CREATE (exists)",
           lambda: os.setxattr("f2", "user.color", b"red", os.XATTR_CREATE))
    result("setxattr user.new REPLACE (missing)",
           lambda: os.setxattr("f2", "user.new", b"v", os.XATTR_REPLACE))
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("getxattr user.missing", lambda: os.getxattr("f2", "user.missing"))
    result("removexattr user.size", lambda: os.removexattr("f2", "user.size"))
    result("removexattr user.size again", lambda: os.removexattr("f2", "user.size"))
    result("listxattr f2", lambda: user_xattrs("f2"))
    result("setxattr on dir modes", lambda: os.setxattr("modes", "user.d", b"dirval"))
    result("getxattr on dir modes", lambda: os.getxattr("modes", "user.d").decode())
    result("getxattr after rename", lambda: (os.rename("f2", "f3"),
                                             os.getxattr("f3", "user.color").decode())[1])
    result("rename f3 f2", lambda: os.rename("f3", "f2"))


def final_state():
    result("list .", lambda: listing("."))
    for name in sorted(os.listdir(".")):
        explicit = name == "modes"  # f2 was written after its utime
        result(f"final stat {name}", lambda: describe(name, with_mtime=explicit))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: posix_ops.py DIR")
    os.chdir(sys.argv[1])
    os.umask(0o022)
    for part in (files_and_data, renames, directories, symlinks, attributes,
                 xattrs, final_state):
        print(f"# {part.__name__}")
        part()


if __name__ == "__main__":
    main()
