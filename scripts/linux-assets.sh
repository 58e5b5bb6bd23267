#!/bin/sh
# Fetch the Linux test assets into build/linux (cached, never committed):
#   vmlinuz-cloud     Debian's current linux-image-cloud-amd64 bzImage (LZ4)
#   vmlinux-cloud     the same kernel's ELF (with its PVH note), unpacked from the bzImage
#   busybox           busybox-static, for the initramfs tests/linux/mkinitramfs.py builds
# and, with FLAVOUR generic (bench/linux), vmlinuz-generic: linux-image-amd64's
# bzImage (XZ); with FLAVOUR symbols (make check-linux-symbols), for the cloud
# kernel above:
#   vmlinux-cloud-dbg its vmlinux with symbols and DWARF (the -dbg package)
#   binfmt_misc.ko    one of its modules, for the guest to load, and
#   modules-dbg/      that module with symbols and DWARF, for lx-symbols
#   src/              the same version's linux-source, configured as Debian
#                     built it, with the kernel's gdb scripts made (vmlinux-gdb.py)
# Usage: scripts/linux-assets.sh [DIR [FLAVOUR]]   (DIR defaults to build/linux)
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build/linux}
flavour=${2:-cloud}
mkdir -p "$dir"
cd "$dir"

download() {
	# apt-get download runs unsandboxed as root into a directory _apt cannot
	# write: harmless, and the warning would only be noise.
	apt-get download "$@" >/dev/null 2>&1 && return 0
	apt-get update -qq && apt-get download "$@" >/dev/null
}

# The package a meta package (linux-image-cloud-amd64, ...) depends on now.
image_package() {
	pkg=$(apt-cache depends "$1" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		apt-get update -qq
		pkg=$(apt-cache depends "$1" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || { echo "linux-assets: no $1 in apt's lists" >&2; exit 1; }
	echo "$pkg"
}

# Download packages and unpack them into x/.
fetch() {
	rm -rf deb x
	mkdir deb
	(cd deb && download "$@")
	for d in deb/*.deb; do dpkg-deb -x "$d" x; done
}

if [ "$flavour" = symbols ]; then
	[ -s vmlinux-cloud-dbg ] && [ -e src/vmlinux-gdb.py ] && [ -s binfmt_misc.ko ] &&
		[ -s modules-dbg/binfmt_misc.ko ] && exit 0
	kpkg=$(cat kernel-package)
	# linux-image-6.1.0-57-cloud-amd64 -> linux-source-6.1
	src=linux-source-$(echo "$kpkg" | sed -n 's/^linux-image-\([0-9]*\.[0-9]*\)\..*/\1/p')
	fetch "$kpkg-dbg" "$kpkg" "$src" || {
		echo "linux-assets: $kpkg-dbg or $src is not on the mirror any more;" \
			"remove $dir to fetch the current kernel" >&2
		exit 1
	}
	cp x/usr/lib/debug/boot/vmlinux-* vmlinux-cloud-dbg.tmp
	mkdir -p modules-dbg
	cp x/lib/modules/*/kernel/fs/binfmt_misc.ko binfmt_misc.ko
	cp x/usr/lib/debug/lib/modules/*/kernel/fs/binfmt_misc.ko modules-dbg/
	rm -rf src
	mkdir src
	tar -xf x/usr/src/$src.tar.xz -C src --strip-components=1
	cp x/boot/config-* src/.config
	make -s -C src olddefconfig scripts_gdb >/dev/null
	mv vmlinux-cloud-dbg.tmp vmlinux-cloud-dbg
	rm -rf deb x
	exit 0
fi

if [ "$flavour" = generic ]; then
	[ -s vmlinuz-generic ] && exit 0
	fetch "$(image_package linux-image-amd64)"
	cp x/boot/vmlinuz-* vmlinuz-generic.tmp
	mv vmlinuz-generic.tmp vmlinuz-generic
	rm -rf deb x
	exit 0
fi

[ -s vmlinuz-cloud ] && [ -s vmlinux-cloud ] && [ -s busybox ] && exit 0
kpkg=$(image_package linux-image-cloud-amd64)
fetch "$kpkg" busybox-static
cp x/boot/vmlinuz-* vmlinuz-cloud.tmp
cp x/bin/busybox busybox.tmp
python3 "$root/tests/linux/unpack_bzimage.py" vmlinuz-cloud.tmp vmlinux-cloud.tmp
echo "$kpkg" > kernel-package
mv vmlinuz-cloud.tmp vmlinuz-cloud
mv vmlinux-cloud.tmp vmlinux-cloud
mv busybox.tmp busybox
rm -rf deb x
