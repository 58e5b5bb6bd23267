#!/usr/bin/env python3
"""Unpack the ELF vmlinux from a bzImage: the compressed payload that the
setup header's payload_offset/payload_length point at (boot protocol 2.08+),
decompressed by what its magic says it is.

Usage: unpack_bzimage.py BZIMAGE OUT"""
import bz2
import gzip
import lzma
import struct
import subprocess
import sys


def payload(image):
    if image[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", image, 0x206)[0] < 0x208:
        sys.exit("unpack_bzimage: not a bzImage with boot protocol 2.08 or later")
    setup_sects = image[0x1f1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    return image[start:start + length]


def decompress(data):
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.decompress(data)
    if data.startswith(b"BZh"):
        return bz2.decompress(data)
    tools = {b"\x02\x21\x4c\x18": ["lz4", "-dc"], b"\x28\xb5\x2f\xfd": ["zstd", "-dcq"]}
    for magic, cmd in tools.items():
        if data.startswith(magic):
            # the kernel appends the decompressed size; the tools stop before it
            r = subprocess.run(cmd, input=data, capture_output=True)
            if r.stdout[:4] == b"\x7fELF":
                return r.stdout
            sys.exit(f"unpack_bzimage: {cmd[0]} failed: {r.stderr.decode(errors='replace')}")
    sys.exit(f"unpack_bzimage: unknown compression (magic {data[:4].hex()})")


def main():
    image = open(sys.argv[1], "rb").read()
    elf = decompress(payload(image))
    if elf[:4] != b"\x7fELF":
        sys.exit("unpack_bzimage: the payload is not an ELF file")
    open(sys.argv[2], "wb").write(elf)


if __name__ == "__main__":
    main()
