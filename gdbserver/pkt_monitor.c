/* gdbserver/pkt_monitor.c — qRcmd, gdb's `monitor CMD`: the command
 * arrives hex-encoded; its output goes back as O packets (hex text) and
 * the command ends with OK (or an E reply for a bad command). */
#include "gdbserver/gdbserver_int.h"
#include "gdbserver/monitor.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mon_print(struct gdb_server *s, const char *fmt, ...)
{
	char small[2048], *text = small;
	struct rsp_buf out;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(small) && (text = malloc((size_t)n + 1))) {
		/* a long text is sent whole, never cut */
		va_start(ap, fmt);
		vsnprintf(text, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	if (!text)
		text = small;
	rsp_buf_init(&out);
	rsp_buf_putc(&out, 'O');
	rsp_buf_hex(&out, text, strlen(text));
	if (out.err == 0)
		rsp_send(&s->rsp, out.data, out.len);
	rsp_buf_free(&out);
	if (text != small)
		free(text);
}

static int mon_help(struct gdb_server *s, const char *arg)
{
	(void)arg;
	mon_print(s, "vmdb monitor commands:\n"
		     "  help             this list\n"
		     "  info vcpus       every vCPU: mode, run state, RIP (or: info cpus); *: the\n"
		     "                   one the commands below mean by \"current\"\n"
		     "  cpu [N|gdb]      the current vCPU for monitor commands: N (0-based), or\n"
		     "                   gdb's (the thread it last named; the default)\n"
		     "  info caps        what the engine can do here, and what the debugger uses\n"
		     "  phys on|off      m/M/X, breakpoints and watchpoints on guest-physical\n"
		     "                   addresses (on) or guest-virtual ones through the vCPU's\n"
		     "                   page tables (off); hbreak is linear only\n"
		     "  catch VEC...     stop when the guest takes these exceptions (0-31 or names:\n"
		     "                   de db bp ud gp pf ...), at the handler its IDT names\n"
		     "  catch io PORT[-PORT] [r|w]  stop after an access to these ports\n"
		     "  catch msr N[-N] [r|w]       stop after RDMSR/WRMSR of these MSRs (kvm:\n"
		     "                   where the host KVM has the MSR filter)\n"
		     "  catch cr N       stop after a write to CRn (emu: KVM has no CR-write exit)\n"
		     "  catch output REGEX  stop after the serial output byte with which the line\n"
		     "                   so far matches REGEX (extended; 'catch output off')\n"
		     "  catch off        stop catching; 'catch' alone lists what is caught\n"
		     "  sstep irq on|off stepi enters interrupt handlers (on) or never does (off,\n"
		     "                   default: interrupts held off while stepping)\n"
		     "  sstep shadow on|off  keep the guest's own trap flag apart from the\n"
		     "                   debugger's (on, default) or step plainly (off)\n"
		     "  sstep irqblock auto|blockirq|mask-if  how sstep irq off holds interrupts\n"
		     "  sstep core exact|engine  step on the exact core where it applies, or the engine\n"
		     "                   off: the engine's block (KVM_GUESTDBG_BLOCKIRQ), vmdb\n"
		     "                   masking the guest's IF, or auto (the first if present)\n"
		     "  info sstep       the stepping modes and what the step engine did\n"
		     "  info park        stops so far and kicks repeated to get them\n"
		     "  info dr          per vCPU: the guest's own DR0-3/DR6/DR7 and what each\n"
		     "                   hardware slot holds (guest, gdb, waiting)\n"
		     "  info watchpoints every watchpoint and where it lives (DRn, page trap, ...)\n"
		     "  msr read N | msr write N VALUE  the current vCPU's MSR N (0xc0000082 ...)\n"
		     "  gva2gpa ADDR     the guest-physical address ADDR maps to (current vCPU)\n"
		     "  info mem         the current vCPU's mappings: ranges with their rights\n"
		     "  info tlb         the current vCPU's page tables, page by page\n"
		     "  xp/FMT PADDR     guest-physical memory, FMT = [count][xduoc][bhwg]\n"
		     "  poll on|off|US   after answering, look for the client's next packet for\n"
		     "                   up to US microseconds (adapted; on = 1000) before sleeping\n"
		     "  info registers [-a]  the current vCPU's whole state, system registers\n"
		     "                   too (-a: every vCPU's, each under CPU#n)\n"
		     "  info idt         the current vCPU's IDT gates and their handlers\n"
		     "  info gdt         the current vCPU's GDT descriptors, decoded\n"
		     "  info lapic       the current vCPU's local APIC\n"
		     "  info ioapic      the I/O APIC's redirection table\n"
		     "  info pic         the 8259 PIC pair\n"
		     "  dump-guest-memory [-p] FILE [BEGIN LENGTH]  the machine as an ELF core\n"
		     "                   file (QEMU's format: crash vmlinux FILE); -p: by the\n"
		     "                   current vCPU's virtual mappings (gdb vmlinux FILE);\n"
		     "                   BEGIN LENGTH: only that guest-physical range\n"
		     "  system_reset     reset the machine: it boots again and waits at its\n"
		     "                   first instruction, breakpoints kept\n"
		     "  record on [SIZE]|off  record for reverse execution (emu; SIZE: snapshot\n"
		     "                   memory in bytes), or stop and forget the history\n"
		     "  record goto N    the machine to instruction N of the history (monitor\n"
		     "                   info record says where it is and what it holds)\n"
		     "  info record      how far back the recorded history reaches\n");
	return 0;
}

static int mon_info_vcpus(struct gdb_server *s, const char *arg)
{
	(void)arg;
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++) {
		char text[128];
		struct debug_cpu_state st;
		debug_describe_vcpu(s->dbg, i, text, sizeof(text));
		if (debug_read_state(s->dbg, i, &st) == 0)
			mon_print(s, "%c thread %u: %s, rip 0x%llx\n", i == mon_vcpu(s) ? '*' : ' ',
				  i + 1, text, (unsigned long long)st.regs.rip);
		else
			mon_print(s, "%c thread %u: %s\n", i == mon_vcpu(s) ? '*' : ' ', i + 1, text);
	}
	return 0;
}

static int mon_info_caps(struct gdb_server *s, const char *arg)
{
	const struct engine_report *report;
	struct err e = { 0 };
	(void)arg;

	mon_print(s, "engine: %s\n", s->vm->engine->name);
	if (debug_caps_report(s->dbg, &report, &e) < 0) {
		mon_print(s, "probe failed: %s\n", e.msg);
	} else {
		for (unsigned i = 0; i < report->nr; i++) {
			const struct engine_feature *f = &report->features[i];
			mon_print(s, "%s: %s (%s)\n", f->name, f->present ? "yes" : "no", f->how);
		}
	}
	char access[96];
	debug_catch_access_caps(s->dbg, access, sizeof(access));
	mon_print(s, "monitor catch of accesses here: %s\n", access);
	size_t len = debug_fallback_describe(s->dbg, NULL, 0) + 1;
	char *fallback = malloc(len);
	if (fallback) {
		debug_fallback_describe(s->dbg, fallback, len);
		mon_print(s, "%s", fallback);
	}
	free(fallback);
	len = debug_mechanisms(s->dbg, NULL, 0) + 1;
	char *mech = malloc(len);
	if (mech)
		debug_mechanisms(s->dbg, mech, len);
	mon_print(s, "debugger mechanisms in use:\n%s", mech ? mech : "(out of memory)\n");
	free(mech);
	mon_print(s, "interrupts while stepping: %s\n", debug_sstep_irq_mechanism(s->dbg));
	return 0;
}

static int mon_info_park(struct gdb_server *s, const char *arg)
{
	char text[512];
	(void)arg;
	debug_park_describe(s->dbg, text, sizeof(text));
	mon_print(s, "%s", text);
	return 0;
}

static int mon_info_sstep(struct gdb_server *s, const char *arg)
{
	char text[2048];
	(void)arg;
	debug_sstep_describe(s->dbg, text, sizeof(text));
	mon_print(s, "%s", text);
	return 0;
}

static int mon_info_dr(struct gdb_server *s, const char *arg)
{
	(void)arg;
	size_t len = debug_dr_describe(s->dbg, NULL, 0) + 1;
	char *text = malloc(len);
	if (text)
		debug_dr_describe(s->dbg, text, len);
	mon_print(s, "%s", text ? text : "(out of memory)\n");
	free(text);
	return 0;
}

static int mon_info_watchpoints(struct gdb_server *s, const char *arg)
{
	char text[8192];
	(void)arg;
	debug_watch_describe(s->dbg, text, sizeof(text));
	mon_print(s, "%s", text);
	if (!s->phys && strstr(text, " at physical "))
		mon_print(s, "(phys is off: the physical ones stay until removed with phys on)\n");
	return 0;
}

static int on_off(const char *word, bool *on)
{
	if (strcmp(word, "on") == 0)
		*on = true;
	else if (strcmp(word, "off") == 0)
		*on = false;
	else
		return -EINVAL;
	return 0;
}

static int irqblock_of(const char *word, enum debug_irqblock *how)
{
	if (strcmp(word, "auto") == 0)
		*how = DEBUG_IRQBLOCK_AUTO;
	else if (strcmp(word, "blockirq") == 0 || strcmp(word, "engine") == 0)
		*how = DEBUG_IRQBLOCK_ENGINE;
	else if (strcmp(word, "mask-if") == 0)
		*how = DEBUG_IRQBLOCK_MASK_IF;
	else
		return -EINVAL;
	return 0;
}

/* sstep irq on|off, sstep shadow on|off, sstep irqblock auto|blockirq|mask-if;
 * alone: the modes. */
static int mon_sstep(struct gdb_server *s, const char *arg)
{
	enum debug_irqblock how;
	struct err e = { 0 };
	bool on;
	if (strncmp(arg, "irqblock ", 9) == 0) {
		if (irqblock_of(arg + 9, &how) < 0)
			return -EINVAL;
		if (debug_sstep_set_irqblock(s->dbg, how, &e) < 0)
			mon_print(s, "monitor sstep irqblock: %s\n", e.msg);
		else
			mon_print(s, "interrupts while stepping: %s\n",
				  debug_sstep_irq_mechanism(s->dbg));
		return 0;
	}
	if (strncmp(arg, "core ", 5) == 0) {
		if (strcmp(arg + 5, "exact") != 0 && strcmp(arg + 5, "engine") != 0)
			return -EINVAL;
		if (debug_sstep_set_core(s->dbg, strcmp(arg + 5, "exact") == 0, &e) < 0)
			mon_print(s, "monitor sstep core: %s\n", e.msg);
		else
			mon_print(s, "step core: %s\n", debug_sstep_core(s->dbg));
		return 0;
	}
	if (strncmp(arg, "irq ", 4) == 0) {
		if (on_off(arg + 4, &on) < 0)
			return -EINVAL;
		debug_sstep_set_irq(s->dbg, on);
		mon_print(s, "interrupts while stepping: %s\n", debug_sstep_irq_mechanism(s->dbg));
		return 0;
	}
	if (strncmp(arg, "shadow ", 7) == 0) {
		if (on_off(arg + 7, &on) < 0)
			return -EINVAL;
		debug_sstep_set_shadow(s->dbg, on);
		mon_print(s, "shadow trap flag: %s\n", on ? "on" : "off (plain engine stepping)");
		return 0;
	}
	if (arg[0])
		return -EINVAL;
	return mon_info_sstep(s, arg);
}

static int mon_phys(struct gdb_server *s, const char *arg)
{
	if (strcmp(arg, "on") == 0)
		s->phys = true;
	else if (strcmp(arg, "off") == 0)
		s->phys = false;
	else if (arg[0])
		return -EINVAL;
	mon_print(s, "memory accesses use guest-%s addresses\n", s->phys ? "physical" : "virtual");
	return 0;
}


int mon_number(const char *word, uint64_t max, uint64_t *v)
{
	char *end;
	if (!word[0] || word[0] == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(word, &end, 0);
	if (errno || *end || n > max)
		return -EINVAL;
	*v = n;
	return 0;
}

/* msr read N | msr write N VALUE, on the vCPU gdb has selected (Hg). */
static int mon_msr(struct gdb_server *s, const char *arg)
{
	char op[8], n_word[32], v_word[32], extra[2];
	uint64_t msr, value;
	struct err e = { 0 };
	int words = sscanf(arg, "%7s %31s %31s %1s", op, n_word, v_word, extra);
	bool write = words == 3 && strcmp(op, "write") == 0;
	if (!(write || (words == 2 && strcmp(op, "read") == 0)) ||
	    mon_number(n_word, UINT32_MAX, &msr) < 0 ||
	    (write && mon_number(v_word, UINT64_MAX, &value) < 0))
		return -EINVAL;
	if (write && debug_msr_write(s->dbg, mon_vcpu(s), (uint32_t)msr, value, &e) < 0) {
		mon_print(s, "monitor msr: %s\n", e.msg);
		return 0;
	}
	if (debug_msr_read(s->dbg, mon_vcpu(s), (uint32_t)msr, &value, &e) < 0) {
		mon_print(s, "monitor msr: %s\n", e.msg);
		return 0;
	}
	mon_print(s, "MSR 0x%llx = 0x%llx\n", (unsigned long long)msr, (unsigned long long)value);
	return 0;
}


unsigned mon_vcpu(const struct gdb_server *s)
{
	return s->mon_vcpu >= 0 ? (unsigned)s->mon_vcpu : s->cur_g;
}

/* cpu [N|gdb]: QEMU's command; the monitor's vCPU (0-based, thread N+1) */
static int mon_cpu(struct gdb_server *s, const char *arg)
{
	uint64_t n;
	if (!strcmp(arg, "gdb")) {
		s->mon_vcpu = -1;
	} else if (arg[0]) {
		if (mon_number(arg, UINT64_MAX, &n) < 0)
			return -EINVAL;
		if (n >= debug_nr_vcpus(s->dbg)) {
			mon_print(s, "monitor cpu: there is no vCPU %llu (vCPUs 0 to %u)\n",
				  (unsigned long long)n, debug_nr_vcpus(s->dbg) - 1);
			return 0;
		}
		s->mon_vcpu = (int)n;
	}
	mon_print(s, s->mon_vcpu >= 0 ? "monitor commands act on vCPU %u (thread %u); "
		  "`monitor cpu gdb` follows gdb's thread again\n"
		  : "monitor commands act on vCPU %u (thread %u), the thread gdb last named\n",
		  mon_vcpu(s), mon_vcpu(s) + 1);
	return 0;
}

static int mon_system_reset(struct gdb_server *s, const char *arg)
{
	struct err e = { 0 };
	if (arg[0])
		return -EINVAL;
	if (debug_system_reset(s->dbg, &e) < 0) {
		mon_print(s, "monitor system_reset: %s\n", e.msg);
		return 0;
	}
	/* gdb keeps the registers it read before the command */
	mon_print(s, "vmdb: the machine was reset: boot %u holds every vCPU at its first "
		  "instruction; gdb shows the old registers until `maintenance flush "
		  "register-cache` (or the next stop)\n", s->vm->nr_boots);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct gdb_server *s, const char *arg);
} mon_cmds[] = {
	{ "help", mon_help },
	{ "info vcpus", mon_info_vcpus },
	{ "cpu", mon_cpu },
	{ "info cpus", mon_info_vcpus },       /* QEMU's name */
	{ "info caps", mon_info_caps },
	{ "info sstep", mon_info_sstep },
	{ "info park", mon_info_park },
	{ "info dr", mon_info_dr },
	{ "info watchpoints", mon_info_watchpoints },
	{ "sstep", mon_sstep },
	{ "phys", mon_phys },
	{ "poll", gdb_mon_poll },
	{ "catch", mon_catch },
	{ "msr", mon_msr },
	{ "gva2gpa", mon_gva2gpa },
	{ "xp", mon_xp },
	{ "info mem", mon_info_mem },
	{ "info tlb", mon_info_tlb },
	{ "info registers", mon_info_registers },
	{ "info idt", mon_info_idt },
	{ "info gdt", mon_info_gdt },
	{ "info lapic", mon_info_lapic },
	{ "info ioapic", mon_info_ioapic },
	{ "info pic", mon_info_pic },
	{ "dump-guest-memory", mon_dump_guest_memory },
	{ "system_reset", mon_system_reset },
	{ "record", mon_record },
	{ "info record", mon_info_record },
};

static int run_command(struct gdb_server *s, char *line)
{
	while (*line == ' ')
		line++;
	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\n'))
		line[--len] = '\0';
	for (size_t i = 0; i < sizeof(mon_cmds) / sizeof(mon_cmds[0]); i++) {
		size_t n = strlen(mon_cmds[i].name);
		if (strncmp(line, mon_cmds[i].name, n) == 0 &&
		    (line[n] == '\0' || line[n] == ' ' || line[n] == '/')) {
			const char *arg = line + n;
			while (*arg == ' ')
				arg++;
			int r = mon_cmds[i].fn(s, arg);
			if (r == -EINVAL)
				mon_print(s, "monitor %s: bad argument '%s' (try 'monitor help')\n",
					  mon_cmds[i].name, arg);
			return 0;
		}
	}
	mon_print(s, "unknown monitor command '%s' (try 'monitor help')\n", line);
	return 0;
}

static int pkt_qrcmd(struct gdb_server *s, struct rsp_cur *args)
{
	if (!rsp_skip_char(args, ',') || rsp_left(args) % 2)
		return -EINVAL;
	size_t n = rsp_left(args) / 2;
	char *line = malloc(n + 1);
	if (!line)
		return -ENOMEM;
	if (rsp_hex_decode(args->p, 2 * n, (uint8_t *)line) < 0 || memchr(line, '\0', n)) {
		free(line);
		return -EINVAL;
	}
	line[n] = '\0';
	int r = run_command(s, line);
	free(line);
	if (r == 0)
		rsp_buf_printf(&s->reply, "OK");
	return r;
}

const struct gdb_packet gdb_pkt_monitor[] = {
	{ "qRcmd", pkt_qrcmd, true },
	{ NULL, NULL, false },
};
