#!/bin/sh
# `make run`: boot the demo guest under vmdb, held before its first
# instruction until gdb attaches, and say how to attach.
set -e
vmdb=${1:-build/vmdb}
demo=build/guests/demo.elf
port=${VMDB_PORT:-1234}
echo "vmdb: attach with:  gdb $demo -ex 'target remote 127.0.0.1:$port'"
[ -t 0 ] && echo "vmdb: the terminal is the guest's serial console: Ctrl-A x ends vmdb"
exec "$vmdb" --smp 2 --mem 128M --gdb "tcp:127.0.0.1:$port" --wait-gdb "$demo"
