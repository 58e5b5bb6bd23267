/* gdbserver/gdbserver.h — vmdb's GDB remote stub (all-stop). Owns the
 * listening socket, the one client connection and its thread, packet
 * dispatch, register numbering and target.xml, stop-reply syntax and the
 * monitor commands. Machine control goes through debug/ (debug.h). */
#ifndef VMDB_GDBSERVER_H
#define VMDB_GDBSERVER_H

#include <stdbool.h>

#include "util/err.h"

struct vm;

/* addr: "tcp:HOST:PORT", "unix:PATH", or NULL/"" for tcp:127.0.0.1:1234.
 * Binds and listens now (errors: bad address, port in use — in words),
 * creates the debug core (which installs vm->debug_hooks and vm->debug),
 * starts the server thread. With wait_gdb every vCPU is held before its
 * first instruction until a client attaches. Binding a non-loopback host
 * prints a warning on stderr. Prints "vmdb: gdb server listening on ..."
 * on stderr once listening. */
int gdbserver_start(struct vm *vm, const char *addr, bool wait_gdb, struct err *e) must_check;
/* At exit: tells a waiting client how the guest ended, joins the thread,
 * closes the sockets and frees the debug core. */
void gdbserver_stop(struct vm *vm);

#endif
