#!/bin/sh
# Fetch the Linux test assets into build/linux (cached, never committed):
#   vmlinuz-cloud   Debian's current linux-image-cloud-amd64 bzImage (LZ4)
#   vmlinux-cloud   the same kernel's ELF (with its PVH note), unpacked from the bzImage
#   busybox         busybox-static, for the initramfs tests/linux/mkinitramfs.py builds
# Usage: scripts/linux-assets.sh [DIR]   (DIR defaults to build/linux)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build/linux}
mkdir -p "$dir"
cd "$dir"
[ -s vmlinuz-cloud ] && [ -s vmlinux-cloud ] && [ -s busybox ] && exit 0

download() {
	# apt-get download runs unsandboxed as root into a directory _apt cannot
	# write: harmless, and the warning would only be noise.
	apt-get download "$@" >/dev/null 2>&1 && return 0
	apt-get update -qq && apt-get download "$@" >/dev/null
}

# The meta package names the current image package; download that one.
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
	apt-get update -qq
	kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$kpkg" ] || { echo "linux-assets: no linux-image-cloud-amd64 in apt's lists" >&2; exit 1; }
rm -rf deb x
mkdir deb
(cd deb && download "$kpkg" busybox-static)
for d in deb/*.deb; do dpkg-deb -x "$d" x; done
cp x/boot/vmlinuz-* vmlinuz-cloud.tmp
cp x/bin/busybox busybox.tmp
python3 "$root/tests/linux/unpack_bzimage.py" vmlinuz-cloud.tmp vmlinux-cloud.tmp
echo "$kpkg" > kernel-package
mv vmlinuz-cloud.tmp vmlinuz-cloud
mv vmlinux-cloud.tmp vmlinux-cloud
mv busybox.tmp busybox
rm -rf deb x
