/* gdbserver/mon_views.c — the monitor's views of the system state
 * (gva2gpa, xp, info mem/tlb/registers/idt/gdt/lapic/ioapic/pic): the
 * text comes from debug/inspect.c line by line and leaves in O packets
 * of a few KiB. */
#include "gdbserver/monitor.h"

#include <errno.h>
#include <string.h>

#include "debug/inspect.h"

/* Lines from debug/inspect.c, gathered into O packets of a few KiB (a
 * page-table listing can have thousands of lines). */
struct mon_text {
	struct gdb_server *s;
	size_t len;
	char buf[4096];
};

static void mon_text_flush(struct mon_text *t)
{
	if (t->len)
		mon_print(t->s, "%s", t->buf);
	t->len = 0;
	t->buf[0] = '\0';
}

static void mon_text_emit(void *opaque, const char *line)
{
	struct mon_text *t = opaque;
	size_t n = strlen(line);
	if (t->len + n >= sizeof(t->buf))
		mon_text_flush(t);
	if (n >= sizeof(t->buf)) {
		mon_print(t->s, "%s", line);
		return;
	}
	memcpy(t->buf + t->len, line, n + 1);
	t->len += n;
}

typedef int (*inspect_fn)(struct debug *d, unsigned vcpu, const struct debug_text *out,
			  struct err *e);

/* Run one view of a vCPU and send its text. */
static int mon_inspect_vcpu(struct gdb_server *s, unsigned vcpu, const char *name,
			    inspect_fn fn)
{
	struct mon_text t = { .s = s };
	struct debug_text out = { mon_text_emit, &t };
	struct err e = { 0 };
	int r = fn(s->dbg, vcpu, &out, &e);
	mon_text_flush(&t);
	if (r < 0)
		mon_print(s, "monitor %s: %s\n", name, e.msg);
	return 0;
}

/* ... of the current vCPU (Hg) */
static int mon_inspect(struct gdb_server *s, const char *name, inspect_fn fn)
{
	return mon_inspect_vcpu(s, mon_vcpu(s), name, fn);
}

int mon_gva2gpa(struct gdb_server *s, const char *arg)
{
	struct mon_text t = { .s = s };
	struct debug_text out = { mon_text_emit, &t };
	struct err e = { 0 };
	uint64_t gva;
	if (mon_number(arg, UINT64_MAX, &gva) < 0)
		return -EINVAL;
	if (debug_inspect_gva2gpa(s->dbg, mon_vcpu(s), gva, &out, &e) < 0)
		mon_print(s, "monitor gva2gpa: %s\n", e.msg);
	mon_text_flush(&t);
	return 0;
}

int mon_xp(struct gdb_server *s, const char *arg)
{
	struct mon_text t = { .s = s };
	struct debug_text out = { mon_text_emit, &t };
	struct err e = { 0 };
	int r = debug_inspect_xp(s->dbg, arg, &out, &e);
	mon_text_flush(&t);
	if (r < 0)
		mon_print(s, "monitor xp: %s\n", e.msg);
	return 0;
}

int mon_info_mem(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info mem", debug_inspect_mem);
}

int mon_info_tlb(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info tlb", debug_inspect_tlb);
}

/* info registers [-a]: the current vCPU's, or every vCPU's under a
 * "CPU#n" line (QEMU's -a) */
int mon_info_registers(struct gdb_server *s, const char *arg)
{
	if (strcmp(arg, "-a") == 0) {
		for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++) {
			mon_print(s, "CPU#%u\n", i);
			mon_inspect_vcpu(s, i, "info registers", debug_inspect_registers);
		}
		return 0;
	}
	return arg[0] ? -EINVAL : mon_inspect(s, "info registers", debug_inspect_registers);
}

int mon_info_idt(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info idt", debug_inspect_idt);
}

int mon_info_gdt(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info gdt", debug_inspect_gdt);
}

static int lapic_view(struct debug *d, unsigned vcpu, const struct debug_text *out, struct err *e)
{
	return debug_inspect_irqchip(d, vcpu, DEBUG_IRQCHIP_LAPIC, out, e);
}

static int ioapic_view(struct debug *d, unsigned vcpu, const struct debug_text *out,
		       struct err *e)
{
	return debug_inspect_irqchip(d, vcpu, DEBUG_IRQCHIP_IOAPIC, out, e);
}

static int pic_view(struct debug *d, unsigned vcpu, const struct debug_text *out, struct err *e)
{
	return debug_inspect_irqchip(d, vcpu, DEBUG_IRQCHIP_PIC, out, e);
}

int mon_info_lapic(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info lapic", lapic_view);
}

int mon_info_ioapic(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info ioapic", ioapic_view);
}

int mon_info_pic(struct gdb_server *s, const char *arg)
{
	return arg[0] ? -EINVAL : mon_inspect(s, "info pic", pic_view);
}
