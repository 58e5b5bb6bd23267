#!/bin/sh
# check-deb.sh OUTDIR — build vmdb's Debian package from a clean copy of this
# tree (tracked and untracked-but-not-ignored files) with
# `dpkg-buildpackage -us -uc -b`, check what it holds and what it depends on,
# and leave the .deb in OUTDIR. Exit 77 (skip) when the build tools are missing.
set -e
out=${1:?usage: check-deb.sh OUTDIR}
for tool in dpkg-buildpackage dh; do
	if ! command -v $tool >/dev/null; then
		echo "check-deb: skipped: $tool not found (apt-get install dpkg-dev debhelper)"
		exit 77
	fi
done
top=$(git rev-parse --show-toplevel)
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/vmdb-$version
mkdir "$src"
(cd "$top" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src")

echo "check-deb: dpkg-buildpackage -us -uc -b (log: $out/build.log)"
mkdir -p "$out"
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=2 nocheck" \
	dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log"
	echo "check-deb: dpkg-buildpackage failed"
	exit 1
fi
deb=$work/vmdb_${version}_amd64.deb
cp "$deb" "$out/"
deb=$out/vmdb_${version}_amd64.deb
echo "check-deb: built $deb"

contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/vmdb ./usr/share/man/man1/vmdb.1.gz; do
	echo "$contents" | grep -q " $path\$" || { echo "check-deb: $path missing from the package"; exit 1; }
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "check-deb: Depends: $depends"
for lib in libzydis libc6; do
	echo "$depends" | grep -q "$lib" || { echo "check-deb: Depends lacks $lib"; exit 1; }
done
echo "check-deb: ok"
