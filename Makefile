# vmdb — `make` builds, `make run` boots the demo guest and waits for gdb,
# `make test` runs every test on a normal and an ASan+UBSan build.

BUILD   ?= build
SAN     ?= 0
CC      ?= gcc
CFLAGS  ?= -O2 -g
WARN    := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
CPPFLAGS += -I. -D_GNU_SOURCE -MMD -MP
LDLIBS  += -lZydis -lpthread

ifeq ($(SAN),1)
BUILD   := build-asan
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRC_DIRS := util x86 engine engine/kvm engine/emu machine rsp gdbserver debug cli
SRCS     := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
OBJS     := $(SRCS:%.c=$(BUILD)/%.o)
VMDB     := $(BUILD)/vmdb

.PHONY: all deps run test test-quick clean bench linux-assets check-linux check-linux-symbols
.PHONY: man install uninstall check-deb
all: $(VMDB) man guests

$(VMDB): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# vmdb(1), made from `vmdb --help`: the option table in cli/options.c is the
# one source of both.
man: $(BUILD)/vmdb.1
$(BUILD)/vmdb.1: $(VMDB) scripts/mkman.sh
	scripts/mkman.sh $(VMDB) > $@.tmp && mv $@.tmp $@

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
install: $(VMDB) $(BUILD)/vmdb.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(VMDB) $(DESTDIR)$(BINDIR)/vmdb
	install -m 644 $(BUILD)/vmdb.1 $(DESTDIR)$(MANDIR)/man1/vmdb.1
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vmdb $(DESTDIR)$(MANDIR)/man1/vmdb.1

# The Debian package, built from a clean copy of the committed tree with
# `dpkg-buildpackage -us -uc -b`, then unpacked and run (needs dpkg-dev and
# debhelper). DEB_OUT keeps the .deb.
DEB_OUT ?= $(BUILD)/deb
check-deb:
	scripts/check-deb.sh $(DEB_OUT)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

include guests/guests.mk
include tests/unit/unit.mk
include bench/bench.mk
include fuzz/fuzz.mk

deps:
	@scripts/deps.sh build

run: deps
	@$(MAKE) -s -j2 --no-print-directory all
	@scripts/run-demo.sh $(VMDB)

# Debian's kernel and busybox (downloaded once into build/linux, never
# committed) and the test initramfs built from tests/linux.
LINUX_DIR := build/linux
linux-assets: $(LINUX_DIR)/initramfs.gz
$(LINUX_DIR)/busybox:
	@scripts/linux-assets.sh $(LINUX_DIR)
# dynhello: a dynamically linked program, with the host's ld.so and libc.
$(LINUX_DIR)/dynhello: tests/linux/dynhello.c
	@mkdir -p $(LINUX_DIR) && $(CC) -O2 -Wall -Werror -o $@ $<
$(LINUX_DIR)/initramfs.gz: $(LINUX_DIR)/busybox $(LINUX_DIR)/dynhello tests/linux/init \
		tests/linux/mkinitramfs.py
	@python3 tests/linux/mkinitramfs.py $(LINUX_DIR)/busybox tests/linux/init $@ \
		bin/dynhello=$(LINUX_DIR)/dynhello \
		lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
		lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6

# The whole suite, once per build, in one pytest run (one summary line) on two
# workers: most tests wait on a guest or a debugger more than they compute.
test:
	@scripts/deps.sh test
	@$(MAKE) -s -j2 --no-print-directory all unit linux-assets fuzz-build
	@$(MAKE) -s -j2 --no-print-directory SAN=1 all unit
	/usr/bin/python3 -m pytest -q -n 2 tests --builds build,build-asan --engines kvm,emu

# Normal build only; for the edit-test loop.
test-quick: all unit linux-assets fuzz-build
	/usr/bin/python3 -m pytest -q -n 2 tests --builds build --engines kvm,emu

# The long Linux check, outside `make test`: Debian's kernel (bzImage and
# PVH, 1 and 2 vCPUs) boots to the test init on ENGINE; how far each got and
# how long it took. Minutes per boot where KVM emulates guest ring 0.
ENGINE ?= kvm
CHECK_LINUX_TIMEOUT ?= 3600
CHECK_LINUX_JOBS ?= 1
CHECK_LINUX_CMDLINE ?=
check-linux: all linux-assets
	scripts/check-linux.py --engine $(ENGINE) --vmdb $(VMDB) \
		--timeout $(CHECK_LINUX_TIMEOUT) --jobs $(CHECK_LINUX_JOBS) \
		--cmdline "$(CHECK_LINUX_CMDLINE)" $(if $(CHECK_LINUX_PLAIN),--plain)

# gdb with Debian's -dbg vmlinux and the kernel's gdb scripts against the
# cloud kernel (~420 MB of packages into build/linux): the README's session.
SYMBOLS_ENGINE ?= emu
check-linux-symbols: all linux-assets
	@scripts/deps.sh symbols
	scripts/linux-assets.sh $(LINUX_DIR) symbols
	scripts/check-linux-symbols.py --engine $(SYMBOLS_ENGINE) --vmdb $(VMDB)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all bench-tools
	bench/boot
	bench/rsp
	bench/emu

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d)
