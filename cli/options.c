#include "cli/options.h"

#include "engine/engine.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MEM (128ull << 20)
#define MIN_MEM (2ull << 20)
#define MAX_MEM (1ull << 40)
#define DEFAULT_GDB "tcp:127.0.0.1:1234"

const char options_usage[] =
	"usage: vmdb [options] KERNEL\n"
	"  --engine NAME        execution engine: auto, kvm or emu (default auto: kvm where\n"
	"                       the host runs guest kernel code natively, else emu; a\n"
	"                       line on stderr says which and why)\n"
	"  --cpu MODEL          intel, amd or kvm-step, optionally with ,shared-dr:\n"
	"                       the software engine's CPU model: how it steps for the\n"
	"                       debugger (intel: monitor-trap-flag style; amd: trap flag\n"
	"                       with PUSHF/POPF intercepts; kvm-step: the trap flag as\n"
	"                       the host KVM steps, so vmdb's step shadow runs; default\n"
	"                       intel); emu only. ,shared-dr: one DR0-3 set per vCPU for\n"
	"                       the guest and the debugger, as on kvm (e.g. --cpu\n"
	"                       intel,shared-dr)\n"
	"  --smp N              number of vCPUs (default 1)\n"
	"  --mem SIZE           guest RAM, e.g. 256M, 1G (default 128M; a bare number is MiB)\n"
	"  --serial SPEC        where the 16550 UART at 0x3f8 goes: stdio (default),\n"
	"                       file:PATH, none. With stdio, stdin is its input; a\n"
	"                       terminal is in raw mode while vmdb runs: Ctrl-A x ends\n"
	"                       vmdb, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h helps\n"
	"  --gdb [ADDR], -s     serve GDB on tcp:HOST:PORT or unix:PATH\n"
	"                       (ADDR defaults to " DEFAULT_GDB "; -s as QEMU's)\n"
	"  --wait-gdb, -S       hold every vCPU before its first instruction until a\n"
	"                       debugger attaches (implies --gdb)\n"
	"  --gdb-arch ARCH      the registers gdb is told of: x86-64, i386 (eax..., for\n"
	"                       32-bit firmware), i8086 (i386's, 16-bit code), or auto\n"
	"                       (default: x86-64 for an ELF64 kernel, else the mode of\n"
	"                       vCPU 0 when gdb connects)\n"
	"  --no-reboot          when the guest resets the machine, end vmdb (status 0) with\n"
	"                       a line saying so, instead of booting it again\n"
	"  --record             record from the start, for reverse execution in GDB\n"
	"                       (emu engine; see also monitor record on|off)\n"
	"  --record-mem SIZE    memory for the recording's snapshots and log (default 256M);\n"
	"                       the oldest history is dropped first. Implies --record\n"
	"  --cmdline STR        kernel command line\n"
	"  --initrd FILE        the initial ramdisk (Linux initrd, multiboot module 0)\n"
	"  --probe              print what this host's engine can do for debugging, and exit\n"
	"  --version            print the version and exit\n"
	"  --help               print this help and exit\n"
	"QEMU's spelling of the same options works too, so that a qemu-system-x86_64\n"
	"command line runs with vmdb in its place: -kernel FILE (instead of KERNEL),\n"
	"-append STR, -initrd FILE, -m SIZE, -smp N, -serial stdio|null|file:PATH,\n"
	"-gdb tcp::PORT (loopback), -s, -S, -no-reboot, -accel kvm|tcg (tcg: emu),\n"
	"-enable-kvm, -machine/-M ...,accel=...; -nographic, -display, -vga, -cpu,\n"
	"-name and -nodefaults change nothing here; -drive, -device, -netdev, -bios and\n"
	"-d are refused (vmdb has no disks, network, firmware or QEMU logs).\n"
	"KERNEL is a Linux bzImage, a vmlinux with the PVH note, an ELF64 kernel\n"
	"(entered in long mode) or a Multiboot v1 kernel, recognised by content.\n"
	"Exit status: the guest's debug-exit status, 1 on a runtime error, 2 on a usage error.\n";

int options_parse_size(const char *text, uint64_t *bytes)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	unsigned long long n = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 20;
	switch (toupper((unsigned char)*end)) {
	case '\0': shift = 20; break;
	case 'B': shift = 0; end++; break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (shift && (*end == 'i' || *end == 'I'))
		end++;
	if (shift && (*end == 'b' || *end == 'B'))
		end++;
	if (*end != '\0' || n > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)n << shift;
	return 0;
}

int options_set_smp(struct options *o, const char *text, struct err *e)
{
	unsigned *n = &o->vm.nr_vcpus;
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno)
		return err_set(e, EINVAL, "--smp '%s': not a number", text);
	if (v == 0 || v > VM_MAX_GUEST_VCPUS)
		return err_set(e, EINVAL, "--smp %s: must be between 1 and %u (APIC IDs 0 to 0xFE; "
			       "0xFF is the xAPIC broadcast ID)", text, VM_MAX_GUEST_VCPUS);
	*n = (unsigned)v;
	return 0;
}

int options_set_mem(struct options *o, const char *text, struct err *e)
{
	uint64_t *bytes = &o->vm.mem_size;
	if (options_parse_size(text, bytes) < 0)
		return err_set(e, EINVAL, "--mem '%s': not a size (try 256M or 1G)", text);
	if (*bytes < MIN_MEM || *bytes > MAX_MEM || (*bytes & 0xfff))
		return err_set(e, EINVAL, "--mem %s: must be a multiple of 4K between 2M and 1T",
			       text);
	return 0;
}

int options_set_serial(struct options *o, const char *text, struct err *e)
{
	struct vm_config *cfg = &o->vm;
	if (!strcmp(text, "stdio"))
		cfg->serial = SERIAL_STDIO;
	else if (!strcmp(text, "none"))
		cfg->serial = SERIAL_NONE;
	else if (!strncmp(text, "file:", 5) && text[5]) {
		cfg->serial = SERIAL_FILE;
		cfg->serial_path = text + 5;
	} else
		return err_set(e, EINVAL, "--serial '%s': expected stdio, file:PATH or none", text);
	return 0;
}

static bool looks_like_gdb_addr(const char *s)
{
	return !strncmp(s, "tcp:", 4) || !strncmp(s, "unix:", 5);
}

int options_set_gdb(struct options *o, const char *addr, struct err *e)
{
	if (!looks_like_gdb_addr(addr))
		return err_set(e, EINVAL, "--gdb '%s': expected tcp:HOST:PORT or unix:PATH", addr);
	o->vm.gdb_addr = addr;
	return 0;
}

enum { OPT_ENGINE = 256, OPT_CPU, OPT_SMP, OPT_MEM, OPT_SERIAL, OPT_GDB, OPT_WAIT_GDB, OPT_NO_REBOOT, OPT_CMDLINE,
       OPT_RECORD, OPT_RECORD_MEM,
       OPT_INITRD, OPT_PROBE, OPT_VERSION, OPT_HELP, OPT_GDB_ARCH };

static const struct option long_options[] = {
	{ "engine", required_argument, NULL, OPT_ENGINE },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "smp", required_argument, NULL, OPT_SMP },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "gdb", optional_argument, NULL, OPT_GDB },
	{ "wait-gdb", no_argument, NULL, OPT_WAIT_GDB },
	{ "gdb-arch", required_argument, NULL, OPT_GDB_ARCH },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "record", no_argument, NULL, OPT_RECORD },
	{ "record-mem", required_argument, NULL, OPT_RECORD_MEM },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "probe", no_argument, NULL, OPT_PROBE },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

bool options_takes_value(const char *word)
{
	if (strncmp(word, "--", 2) || strchr(word, '='))
		return false;
	for (const struct option *lo = long_options; lo->name; lo++)
		if (!strcmp(word + 2, lo->name))
			return lo->has_arg == required_argument;
	return false;
}

static int parse_one(int opt, int argc, char **argv, struct options *o, struct err *e)
{
	struct vm_config *cfg = &o->vm;

	switch (opt) {
	case OPT_ENGINE:
		if (strcmp(optarg, OPTIONS_ENGINE_AUTO) && !engine_find(optarg)) {
			char names[64];
			engine_names(names, sizeof(names));
			return err_set(e, EINVAL, "--engine '%s': unknown engine (available: "
				       OPTIONS_ENGINE_AUTO ", %s)", optarg, names);
		}
		cfg->engine = optarg;
		return 0;
	case OPT_CPU: {
		size_t model = strcspn(optarg, ",");
		const char *rest = optarg + model;
		if (model == 5 && !strncmp(optarg, "intel", 5))
			cfg->cpu = VM_CPU_INTEL;
		else if (model == 3 && !strncmp(optarg, "amd", 3))
			cfg->cpu = VM_CPU_AMD;
		else if (model == 8 && !strncmp(optarg, "kvm-step", 8))
			cfg->cpu = VM_CPU_KVM_STEP;
		else
			rest = "?";
		if (*rest && strcmp(rest, ",shared-dr"))
			return err_set(e, EINVAL, "--cpu '%s': expected intel, amd or kvm-step, "
				       "optionally followed by ,shared-dr", optarg);
		cfg->shared_dr = *rest != 0;
		o->cpu_given = true;
		return 0;
	}
	case OPT_SMP: return options_set_smp(o, optarg, e);
	case OPT_MEM: return options_set_mem(o, optarg, e);
	case OPT_SERIAL: return options_set_serial(o, optarg, e);
	case OPT_GDB:
		/* "--gdb ADDR" as well as "--gdb=ADDR"; a bare --gdb means the default */
		if (!optarg && optind < argc && looks_like_gdb_addr(argv[optind]))
			optarg = argv[optind++];
		return options_set_gdb(o, optarg ? optarg : DEFAULT_GDB, e);
	case OPT_WAIT_GDB: cfg->wait_gdb = true; return 0;
	case OPT_GDB_ARCH: {
		/* in gdbserver_int.h's enum gdb_arch order */
		static const char *const arches[] = { "auto", "x86-64", "i386", "i8086" };
		for (int i = 0; i < 4; i++)
			if (strcmp(optarg, arches[i]) == 0) {
				cfg->gdb_arch = i;
				return 0;
			}
		return err_set(e, EINVAL, "--gdb-arch '%s': expected auto, x86-64, i386 or i8086",
			       optarg);
	}
	case OPT_NO_REBOOT: cfg->no_reboot = true; return 0;
	case OPT_RECORD: cfg->record = true; return 0;
	case OPT_RECORD_MEM:
		cfg->record = true;
		if (options_parse_size(optarg, &cfg->record_mem) < 0 || cfg->record_mem < (1ull << 20))
			return err_set(e, EINVAL, "--record-mem '%s': not a size of 1M or more "
				       "(try 512M)", optarg);
		return 0;
	case OPT_CMDLINE: cfg->cmdline = optarg; return 0;
	case OPT_INITRD: cfg->initrd_path = optarg; return 0;
	case OPT_PROBE: o->probe = true; return 0;
	case OPT_VERSION: o->version = true; return 0;
	case OPT_HELP: o->help = true; return 0;
	default:
		for (const struct option *lo = long_options; lo->name; lo++)
			if (optopt && lo->val == optopt)
				return err_set(e, EINVAL, "--%s needs a value", lo->name);
		return err_set(e, EINVAL, "unknown option '%s'", argv[optind - 1]);
	}
}

int options_parse(int argc, char **argv, struct options *o, struct err *e)
{
	memset(o, 0, sizeof(*o));
	o->vm.engine = OPTIONS_ENGINE_AUTO;
	o->vm.nr_vcpus = 1;
	o->vm.mem_size = DEFAULT_MEM;
	o->vm.serial = SERIAL_STDIO;
	o->vm.cmdline = "";

	int r = options_take_qemu(&argc, argv, o, e);
	if (r < 0)
		return r;
	optind = 1;
	opterr = 0;
	int opt;
	/* -s and -S as QEMU's, for the fingers and scripts of its gdb users */
	while ((opt = getopt_long(argc, argv, "+sS", long_options, NULL)) != -1) {
		opt = opt == 's' ? OPT_GDB : opt == 'S' ? OPT_WAIT_GDB : opt;
		r = parse_one(opt, argc, argv, o, e);
		if (r < 0)
			return r;
	}
	if (o->help || o->version || o->probe)
		return 0;
	/* with auto, main checks it once the engine is picked */
	if (o->cpu_given && strcmp(o->vm.engine, "emu") &&
	    strcmp(o->vm.engine, OPTIONS_ENGINE_AUTO))
		return err_set(e, EINVAL, "--cpu chooses the software engine's CPU model; "
			       "engine %s runs the host's CPU", o->vm.engine);
	if (o->vm.wait_gdb && !o->vm.gdb_addr)
		o->vm.gdb_addr = DEFAULT_GDB;
	if (o->kernel_from_qemu && optind < argc)
		return err_set(e, EINVAL, "two kernels: -kernel %s and %s", o->vm.kernel_path,
			       argv[optind]);
	if (o->kernel_from_qemu)
		return 0;
	if (optind >= argc)
		return err_set(e, EINVAL, "no KERNEL given");
	if (optind + 1 < argc)
		return err_set(e, EINVAL, "unexpected argument '%s' after KERNEL", argv[optind + 1]);
	o->vm.kernel_path = argv[optind];
	return 0;
}
