#!/usr/bin/env python3
"""Build the Linux test initramfs: a gzip'ed newc cpio holding busybox-static
as /bin/busybox and tests/linux/init as /init (plus the directories init
mounts on), and any further files given as ARCHIVE_PATH=HOST_FILE (their
directories made too; a symbolic link on the host is stored as the file it
names). Written here rather than with cpio(1) to need no other package.

Usage: mkinitramfs.py BUSYBOX INIT OUT [ARCHIVE_PATH=HOST_FILE ...]"""
import gzip
import sys

S_IFDIR, S_IFREG = 0o040000, 0o100000


def entry(name, mode, data=b"", ino=[0]):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    fields = [ino[0], mode, 0, 0, 2 if mode & S_IFDIR else 1, 0, len(data), 0, 0, 0, 0,
              len(name_b), 0]
    hdr = b"070701" + b"".join(b"%08x" % f for f in fields)
    out = hdr + name_b
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def parents(path):
    """The directories above an archive path, outermost first."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def main():
    busybox = open(sys.argv[1], "rb").read()
    init = open(sys.argv[2], "rb").read()
    extra = [arg.split("=", 1) for arg in sys.argv[4:]]
    dirs = ["bin", "dev", "proc", "sys", "tmp", "root"]
    for name, _ in extra:
        dirs += [d for d in parents(name) if d not in dirs]
    archive = b"".join([
        *(entry(d, S_IFDIR | 0o755) for d in dirs),
        entry("bin/busybox", S_IFREG | 0o755, busybox),
        entry("init", S_IFREG | 0o755, init),
        *(entry(name, S_IFREG | 0o755, open(host, "rb").read()) for name, host in extra),
        entry("TRAILER!!!", 0),
    ])
    with open(sys.argv[3], "wb") as f:
        f.write(gzip.compress(archive, 6))


if __name__ == "__main__":
    main()
