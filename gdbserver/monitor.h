/* gdbserver/monitor.h — what the monitor's files share: pkt_monitor.c
 * (qRcmd, the command table, help and the small commands), mon_views.c
 * (the system views debug/inspect.c writes) and mon_catch.c (catch). A
 * command gets the words after its name and answers with mon_print;
 * -EINVAL means a bad argument, which the dispatcher reports. */
#ifndef VMDB_GDBSERVER_MONITOR_H
#define VMDB_GDBSERVER_MONITOR_H

#include <stdint.h>

#include "gdbserver/gdbserver_int.h"

/* One O packet per call: "O" + hex of the text (a long text whole). */
void mon_print(struct gdb_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The vCPU commands "of the current vCPU" use: the one `monitor cpu N`
 * chose, else the thread gdb last named (Hg). gdb names a thread only
 * when it reads registers it has not cached, so after `info threads` Hg
 * may be another thread than the one `thread` selected. */
unsigned mon_vcpu(const struct gdb_server *s);
/* A whole word as an unsigned number (0x hex, 0 octal, else decimal) <= max. */
int mon_number(const char *word, uint64_t max, uint64_t *v);

/* mon_views.c */
int mon_gva2gpa(struct gdb_server *s, const char *arg);
int mon_xp(struct gdb_server *s, const char *arg);
int mon_info_mem(struct gdb_server *s, const char *arg);
int mon_info_tlb(struct gdb_server *s, const char *arg);
int mon_info_registers(struct gdb_server *s, const char *arg);
int mon_info_idt(struct gdb_server *s, const char *arg);
int mon_info_gdt(struct gdb_server *s, const char *arg);
int mon_info_lapic(struct gdb_server *s, const char *arg);
int mon_info_ioapic(struct gdb_server *s, const char *arg);
int mon_info_pic(struct gdb_server *s, const char *arg);

/* mon_dump.c: dump-guest-memory [-p] FILE [BEGIN LENGTH] */
int mon_dump_guest_memory(struct gdb_server *s, const char *arg);

/* pkt_reverse.c: record on [SIZE] | off | goto N, info record */
int mon_record(struct gdb_server *s, const char *arg);
int mon_info_record(struct gdb_server *s, const char *arg);

/* mon_catch.c: catch VEC... | io ... | msr ... | cr ... | off */
int mon_catch(struct gdb_server *s, const char *arg);

/* server.c: poll off | on | MAX_US (how long it looks for the next packet) */
int gdb_mon_poll(struct gdb_server *s, const char *arg);

#endif
