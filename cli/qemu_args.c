/* cli/qemu_args.c — QEMU's spelling of the options vmdb shares with it
 * (options.h, options_take_qemu): a kernel developer's
 *     qemu-system-x86_64 -kernel bzImage -initrd initrd.img -append "..."
 *         -m 1G -smp 2 -nographic -s -S
 * runs with vmdb in place of qemu-system-x86_64. Options that only shape
 * what vmdb lacks anyway (a display, a machine or CPU model) are taken and
 * have no effect; options for what vmdb does not have (disks, network,
 * firmware) are refused in words, never ignored. The QEMU words are taken
 * out of argv before getopt sees it: "-smp" would read as -s -m -p. */
#include "cli/options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*qemu_apply_fn)(struct options *o, const char *arg, struct err *e);

static int take_kernel(struct options *o, const char *arg, struct err *e)
{
	(void)e;
	o->vm.kernel_path = arg;
	return 0;
}

static int take_append(struct options *o, const char *arg, struct err *e)
{
	(void)e;
	o->vm.cmdline = arg;
	return 0;
}

static int take_initrd(struct options *o, const char *arg, struct err *e)
{
	(void)e;
	o->vm.initrd_path = arg;
	return 0;
}

/* -m 512, -m 1G, -m size=1G,slots=2,maxmem=4G: the size is all vmdb uses */
static int take_mem(struct options *o, const char *arg, struct err *e)
{
	char size[32];
	if (!strncmp(arg, "size=", 5))
		arg += 5;
	size_t n = strcspn(arg, ",");
	if (n >= sizeof(size))
		return err_set(e, EINVAL, "-m '%s': not a size (try 512M or 1G)", arg);
	memcpy(size, arg, n);
	size[n] = '\0';
	return options_set_mem(o, size, e);
}

/* -smp 2, -smp cpus=2,sockets=1,...: the count is all vmdb uses */
static int take_smp(struct options *o, const char *arg, struct err *e)
{
	const char *cpus = !strncmp(arg, "cpus=", 5) ? arg + 5 : arg;
	char count[16];
	size_t n = strcspn(cpus, ",");
	if (!isdigit((unsigned char)cpus[0]) || n >= sizeof(count))
		return err_set(e, EINVAL, "-smp '%s': expected a number of CPUs", arg);
	memcpy(count, cpus, n);
	count[n] = '\0';
	return options_set_smp(o, count, e);
}

static int take_serial(struct options *o, const char *arg, struct err *e)
{
	if (!strcmp(arg, "stdio") || !strcmp(arg, "mon:stdio"))
		arg = "stdio";
	else if (!strcmp(arg, "null"))
		arg = "none";
	return options_set_serial(o, arg, e);
}

/* -gdb tcp::1234 (QEMU: every interface; vmdb: loopback, as its own
 * default), tcp:HOST:PORT, unix:PATH */
static int take_gdb(struct options *o, const char *arg, struct err *e)
{
	const char *port = !strncmp(arg, "tcp::", 5) ? arg + 5 : NULL;
	if (port) {
		snprintf(o->gdb_addr, sizeof(o->gdb_addr), "tcp:127.0.0.1:%s", port);
		arg = o->gdb_addr;
	}
	return options_set_gdb(o, arg, e);
}

static int take_engine(struct options *o, const char *accel, struct err *e)
{
	if (!strncmp(accel, "kvm", 3) && (!accel[3] || accel[3] == ','))
		o->vm.engine = "kvm";
	else if (!strncmp(accel, "tcg", 3) && (!accel[3] || accel[3] == ','))
		o->vm.engine = "emu";      /* vmdb's software engine */
	else
		return err_set(e, EINVAL, "-accel '%s': vmdb has kvm and tcg (its emu engine)",
			       accel);
	return 0;
}

static int take_enable_kvm(struct options *o, const char *arg, struct err *e)
{
	(void)arg;
	return take_engine(o, "kvm", e);
}

static int take_no_reboot(struct options *o, const char *arg, struct err *e)
{
	(void)arg, (void)e;
	o->vm.no_reboot = true;
	return 0;
}

/* -M microvm, -machine q35,accel=kvm: one machine here; accel= picks the engine */
static int take_machine(struct options *o, const char *arg, struct err *e)
{
	const char *accel = strstr(arg, "accel=");
	return accel ? take_engine(o, accel + 6, e) : 0;
}

static int take_monitor(struct options *o, const char *arg, struct err *e)
{
	(void)o;
	if (!strcmp(arg, "none"))
		return 0;
	return err_set(e, EINVAL, "-monitor %s: vmdb's monitor commands are gdb's `monitor ...` "
		       "(monitor help)", arg);
}

static int take_nothing(struct options *o, const char *arg, struct err *e)
{
	(void)o, (void)arg, (void)e;
	return 0;
}

static const struct qemu_opt {
	const char *name;
	bool has_arg;
	qemu_apply_fn apply;
	const char *refusal;      /* apply == NULL: why vmdb cannot take it */
} qemu_opts[] = {
	{ "-kernel", true, take_kernel, NULL },
	{ "-append", true, take_append, NULL },
	{ "-initrd", true, take_initrd, NULL },
	{ "-m", true, take_mem, NULL },
	{ "-smp", true, take_smp, NULL },
	{ "-serial", true, take_serial, NULL },
	{ "-gdb", true, take_gdb, NULL },
	{ "-accel", true, take_engine, NULL },
	{ "-enable-kvm", false, take_enable_kvm, NULL },
	{ "-machine", true, take_machine, NULL },
	{ "-M", true, take_machine, NULL },
	{ "-monitor", true, take_monitor, NULL },
	{ "-no-reboot", false, take_no_reboot, NULL },
	/* what shapes only things vmdb has one of, or none */
	{ "-nographic", false, take_nothing, NULL },
	{ "-display", true, take_nothing, NULL },
	{ "-vga", true, take_nothing, NULL },
	{ "-nodefaults", false, take_nothing, NULL },
	{ "-no-user-config", false, take_nothing, NULL },
	{ "-cpu", true, take_nothing, NULL },
	{ "-name", true, take_nothing, NULL },
	/* what vmdb does not have */
	{ "-drive", true, NULL, "vmdb has no disks: put the root filesystem in the initramfs "
				"(-initrd)" },
	{ "-hda", true, NULL, "vmdb has no disks: put the root filesystem in the initramfs "
			      "(-initrd)" },
	{ "-cdrom", true, NULL, "vmdb has no disks" },
	{ "-device", true, NULL, "vmdb has no pluggable devices (its machine: 'vmdb --help')" },
	{ "-netdev", true, NULL, "vmdb has no network devices" },
	{ "-nic", true, NULL, "vmdb has no network devices" },
	{ "-bios", true, NULL, "vmdb boots the kernel itself, without firmware" },
	{ "-d", true, NULL, "QEMU's logs: vmdb stops at faults in gdb ('monitor catch', "
			    "'monitor help')" },
};

static const struct qemu_opt *qemu_opt_find(const char *word)
{
	for (size_t i = 0; i < sizeof(qemu_opts) / sizeof(qemu_opts[0]); i++)
		if (!strcmp(word, qemu_opts[i].name))
			return &qemu_opts[i];
	return NULL;
}

static int take_one(const struct qemu_opt *q, const char *arg, struct options *o, struct err *e)
{
	if (q->refusal)
		return err_set(e, EINVAL, "QEMU's %s: %s", q->name, q->refusal);
	return q->apply(o, arg, e);
}

int options_take_qemu(int *argc, char **argv, struct options *o, struct err *e)
{
	int kept = 1;
	for (int i = 1; i < *argc; i++) {
		const char *word = argv[i];
		const struct qemu_opt *q = qemu_opt_find(word);
		if (!strcmp(word, "--")) {        /* the rest is getopt's */
			while (i < *argc)
				argv[kept++] = argv[i++];
			break;
		}
		/* a word of one dash is QEMU's or vmdb's -s/-S (getopt would
		 * read "-no-acpi" as -n -o ... and could not name it) */
		if (!q && word[0] == '-' && word[1] && word[1] != '-' &&
		    word[1 + strspn(word + 1, "sS")])
			return err_set(e, EINVAL, "unknown option '%s'", word);
		if (!q) {
			argv[kept++] = argv[i];
			/* the value of one of vmdb's own options is not an option */
			if (options_takes_value(word) && i + 1 < *argc)
				argv[kept++] = argv[++i];
			continue;
		}
		if (q->has_arg && i + 1 >= *argc)
			return err_set(e, EINVAL, "%s needs a value", q->name);
		int r = take_one(q, q->has_arg ? argv[i + 1] : NULL, o, e);
		if (r < 0)
			return r;
		i += q->has_arg;
		o->kernel_from_qemu |= q->apply == take_kernel;
	}
	argv[kept] = NULL;
	*argc = kept;
	return 0;
}
