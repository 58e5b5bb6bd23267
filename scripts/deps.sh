#!/bin/sh
# Install the Debian packages vmdb needs for a purpose (build, test, bench)
# when any is missing: `apt-get update` once, then `apt-get install -y`.
set -e
purpose=${1:-build}
need="gcc make libc6-dev binutils libzydis-dev"
case "$purpose" in
test)  need="$need gdb lldb python3 python3-pytest python3-pytest-xdist lz4 clang libclang-rt-dev" ;;
bench) need="$need gdb python3 qemu-system-x86 qemu-utils bochs bochsbios vgabios" ;;
symbols) need="$need gdb python3 lz4 xz-utils flex bison bc crash" ;;
esac
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "vmdb: installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "vmdb: need root to install packages; run: sudo apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
