/* tests/unit/machine_test.c — unit tests of machine/: the bus, device
 * registration, the devices' port behaviour, ACPI tables, loader_detect
 * and both loaders, including malformed images built in memory (each must
 * be refused with a message, never crash — run it under SAN=1 too).
 *
 * The machine is a fake: RAM from calloc'd pages, an engine whose register
 * calls just record, and local versions of vm_gpa_to_host, vm_on_destroy
 * and vm_request_exit (machine/vm.c is not linked).
 *
 * Prints one line per failed check and ends with "machine: N passed,
 * M failed"; exits non-zero on any failure. */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/bus.h"
#include "machine/device.h"
#include "machine/linux_boot.h"
#include "machine/linux_cmdline.h"
#include "machine/loader.h"
#include "machine/vm.h"

#include "tests/unit/check.h"

/* --- the fake machine ---------------------------------------------------- */

#define TEST_RAM (16ull << 20)

static struct x86_regs fake_regs;
static struct x86_sregs fake_sregs;
static int fake_irq_level[16];
static int exit_status = -1;

static int fake_get_state(struct vcpu *v, unsigned mask, struct x86_state *st)
{
	(void)v;
	if (mask & X86_STATE_REGS)
		st->regs = fake_regs;
	if (mask & X86_STATE_SREGS)
		st->sregs = fake_sregs;
	return 0;
}

static int fake_set_state(struct vcpu *v, unsigned mask, const struct x86_state *st)
{
	(void)v;
	if (mask & X86_STATE_REGS)
		fake_regs = st->regs;
	if (mask & X86_STATE_SREGS)
		fake_sregs = st->sregs;
	return 0;
}

static int fake_irq_line(struct vm *vm, unsigned irq, int level)
{
	(void)vm;
	if (irq < 16)
		fake_irq_level[irq] = level;
	return 0;
}

static const struct engine_vm_ops fake_vm_ops = { .irq_line = fake_irq_line };
static const struct engine_vcpu_ops fake_vcpu_ops = {
	.get_state = fake_get_state, .set_state = fake_set_state,
};
static const struct engine_ops fake_engine = {
	.name = "fake", .vm = &fake_vm_ops, .vcpu = &fake_vcpu_ops,
};

/* An engine that, like kvm on a host answering CPUID with its own CPU,
 * wants a parameter on Linux's command line. */
static unsigned fake_linux_params_calls;
static const char *fake_linux_params(struct vm *vm, const char **why)
{
	(void)vm;
	fake_linux_params_calls++;
	*why = "for the test";
	return "noxsave";
}
static const struct engine_vm_ops fake_linux_vm_ops = {
	.irq_line = fake_irq_line, .linux_params = fake_linux_params,
};
static const struct engine_ops fake_linux_engine = {
	.name = "fake-linux", .vm = &fake_linux_vm_ops, .vcpu = &fake_vcpu_ops,
};

void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	if (gpa >= vm->low_ram_size || len > vm->low_ram_size - gpa)
		return NULL;
	return vm->ram + gpa;
}

int vm_on_destroy(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_teardowns >= VM_MAX_TEARDOWNS)
		return err_set(e, ENOSPC, "too many teardowns");
	vm->teardowns[vm->nr_teardowns++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
{
	(void)vm;
	(void)fmt;
	exit_status = status;
}

static int reset_requests;
static uint64_t fake_guest_ns;

void vm_request_reset(struct vm *vm, const char *why)
{
	(void)vm;
	(void)why;
	reset_requests++;
}

int vm_on_reset(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_resets >= VM_MAX_RESETS)
		return err_set(e, ENOSPC, "too many resets");
	vm->resets[vm->nr_resets++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

int vm_on_exit(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_exit_hooks >= VM_MAX_EXIT_HOOKS)
		return err_set(e, ENOSPC, "too many exit hooks");
	vm->exit_hooks[vm->nr_exit_hooks++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

int vm_on_snapshot(struct vm *vm, const char *name, size_t size,
		   void (*save)(void *opaque, void *buf),
		   void (*restore)(void *opaque, const void *buf), void *opaque, struct err *e)
{
	if (vm->nr_snapshot_hooks >= VM_MAX_SNAPSHOT_HOOKS)
		return err_set(e, ENOSPC, "too many snapshot hooks");
	vm->snapshot_hooks[vm->nr_snapshot_hooks++] =
		(struct vm_snapshot_hook){ name, size, save, restore, opaque };
	return 0;
}

void vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	vm->engine->vm->irq_line(vm, irq, level);
}

uint64_t vm_guest_ns(struct vm *vm)
{
	(void)vm;
	return fake_guest_ns;
}

void vm_realtime(struct vm *vm, struct timespec *ts)
{
	(void)vm;
	clock_gettime(CLOCK_REALTIME, ts);
}

static struct vm *fake_vm(unsigned nr_vcpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	vm->ram = mmap(NULL, TEST_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm->ram_size = vm->low_ram_size = TEST_RAM;
	vm->cfg.mem_size = TEST_RAM;
	vm->cfg.nr_vcpus = vm->nr_vcpus = nr_vcpus;
	vm->cfg.cmdline = "console=ttyS0 test";
	vm->cfg.serial = SERIAL_NONE;
	vm->engine = &fake_engine;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	for (unsigned i = 0; i < nr_vcpus; i++)
		vm->vcpus[i] = (struct vcpu){ .vm = vm, .id = i };
	memset(&fake_regs, 0, sizeof(fake_regs));
	memset(&fake_sregs, 0, sizeof(fake_sregs));
	return vm;
}

static void fake_vm_free(struct vm *vm)
{
	while (vm->nr_teardowns--)
		vm->teardowns[vm->nr_teardowns].fn(vm->teardowns[vm->nr_teardowns].opaque);
	munmap(vm->ram, TEST_RAM);
	free(vm);
}

/* --- bus ------------------------------------------------------------------- */

static int echo_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	if (!is_write)
		memset(data, (int)offset, len);
	return 0;
}

static void test_bus(void)
{
	struct bus bus = { .name = "pio" };
	struct err e = { 0 };
	CHECK(bus_register(&bus, 0x100, 8, echo_handler, NULL, "a", &e) == 0, "%s", e.msg);
	CHECK(bus_register(&bus, 0x10, 1, echo_handler, NULL, "b", &e) == 0, "%s", e.msg);
	CHECK(bus_register(&bus, 0x108, 8, echo_handler, NULL, "c", &e) == 0, "adjacent: %s", e.msg);
	CHECK(bus_register(&bus, 0x104, 2, echo_handler, NULL, "d", &e) == -EEXIST, "overlap");
	CHECK(strstr(e.msg, "overlaps a"), "overlap message: %s", e.msg);
	CHECK(bus_register(&bus, 0xf0, 0x11, echo_handler, NULL, "d", &e) == -EEXIST, "overlap start");
	CHECK(bus_register(&bus, 0x200, 0, echo_handler, NULL, "z", &e) == -EINVAL, "empty range");
	CHECK(bus_register(&bus, ~0ull, 2, echo_handler, NULL, "w", &e) == -EINVAL, "wrapping range");

	uint8_t d[4];
	CHECK(bus_access(&bus, 0x103, d, 1, false) == 0 && d[0] == 3, "lookup offset %u", d[0]);
	CHECK(bus_access(&bus, 0x10a, d, 2, false) == 0 && d[0] == 2, "second range");
	CHECK(bus_access(&bus, 0x10, d, 1, false) == 0 && d[0] == 0, "first range");
	CHECK(bus_access(&bus, 0x106, d, 4, false) == -ENOENT && d[0] == 0xff, "straddle");
	CHECK(bus_access(&bus, 0x300, d, 4, false) == -ENOENT && d[3] == 0xff, "unclaimed read");
	CHECK(bus_access(&bus, 0x300, d, 4, true) == -ENOENT, "unclaimed write");

	unsigned n = bus.nr_ranges;
	int r = 0;
	for (unsigned i = n; i < BUS_MAX_RANGES + 1 && r == 0; i++)
		r = bus_register(&bus, 0x1000 + i * 4, 4, echo_handler, NULL, "f", &e);
	CHECK(r == -ENOSPC, "full bus: %d", r);
	for (unsigned i = 1; i < bus.nr_ranges; i++)
		CHECK(bus.ranges[i - 1].base < bus.ranges[i].base, "sorted at %u", i);
}

/* --- devices ----------------------------------------------------------------- */

static uint32_t pio_in(struct vm *vm, uint16_t port, uint32_t len)
{
	uint8_t d[4] = { 0 };
	bus_access(&vm->pio, port, d, len, false);
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

static void pio_out(struct vm *vm, uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	bus_access(&vm->pio, port, d, len, true);
}

static void test_uart(const char *path)
{
	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	vm->cfg.serial = SERIAL_FILE;
	vm->cfg.serial_path = path;
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	for (const char *s = "hi\n"; *s; s++)
		pio_out(vm, 0x3f8, (uint8_t)*s, 1);
	CHECK((pio_in(vm, 0x3fd, 1) & 0x60) == 0x60, "LSR THRE|TEMT");
	pio_out(vm, 0x3ff, 0x5a, 1);
	CHECK(pio_in(vm, 0x3ff, 1) == 0x5a, "scratch");
	pio_out(vm, 0x3fb, 0x83, 1);                  /* DLAB */
	pio_out(vm, 0x3f8, 0x01, 1);
	pio_out(vm, 0x3f9, 0x00, 1);
	CHECK(pio_in(vm, 0x3f8, 1) == 0x01, "DLL");
	pio_out(vm, 0x3fb, 0x03, 1);
	CHECK(pio_in(vm, 0x3fa, 1) == 0x01, "IIR no interrupt");
	pio_out(vm, 0x3f9, 0x02, 1);                  /* THRI */
	CHECK(fake_irq_level[4] == 1, "THRI raises IRQ 4");
	CHECK((pio_in(vm, 0x3fa, 1) & 0x0f) == 0x02, "IIR THRI");
	CHECK(fake_irq_level[4] == 0 && pio_in(vm, 0x3fa, 1) == 0x01, "IIR read acks THRI");
	pio_out(vm, 0x3f9, 0x01, 1);                  /* RX data only */
	pio_out(vm, 0x3fc, 0x1a, 1);                  /* loopback, RTS, OUT2 */
	CHECK((pio_in(vm, 0x3fe, 1) & 0xf0) == 0x90, "loopback MSR");
	pio_out(vm, 0x3f8, 'x', 1);
	CHECK(pio_in(vm, 0x3fd, 1) & 1, "loopback DR");
	CHECK(fake_irq_level[4] == 1, "RX data raises IRQ 4");
	CHECK(pio_in(vm, 0x3f8, 1) == 'x', "loopback byte");
	CHECK(fake_irq_level[4] == 0, "RX drained lowers IRQ 4");
	pio_out(vm, 0x3fc, 0x08, 1);
	fake_vm_free(vm);

	char buf[16] = { 0 };
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	CHECK(n == 3 && !strcmp(buf, "hi\n"), "serial file has \"%s\"", buf);

	vm = fake_vm(1);
	vm->cfg.serial = SERIAL_FILE;
	vm->cfg.serial_path = "/nonexistent-dir/x";
	CHECK(machine_devices_init(vm, &e) < 0 && strstr(e.msg, "/nonexistent-dir/x") &&
	      strstr(e.msg, "uart"), "bad serial path: %s", e.msg);
	fake_vm_free(vm);
}

/* Every device's snapshot hook: the bytes of each, one after the other. */
static uint8_t *devices_save(struct vm *vm, size_t *len)
{
	size_t n = 0;
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++)
		n += vm->snapshot_hooks[i].size;
	uint8_t *buf = calloc(1, n ? n : 1), *p = buf;
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++, p += vm->snapshot_hooks[i - 1].size)
		vm->snapshot_hooks[i].save(vm->snapshot_hooks[i].opaque, p);
	*len = n;
	return buf;
}

static void devices_restore(struct vm *vm, const uint8_t *buf)
{
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++, buf += vm->snapshot_hooks[i - 1].size)
		vm->snapshot_hooks[i].restore(vm->snapshot_hooks[i].opaque, buf);
}

/* Device state saved, changed through the ports, restored: the guest reads
 * what it read before, and saving again gives the same bytes. */
static void test_device_snapshots(void)
{
	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	CHECK(vm->nr_snapshot_hooks >= 6, "snapshot hooks: %u", vm->nr_snapshot_hooks);
	pio_out(vm, 0x3ff, 0x5a, 1);                  /* UART scratch */
	pio_out(vm, 0x3fc, 0x1a, 1);                  /* loopback */
	pio_out(vm, 0x3f8, 'a', 1);                   /* a byte in the RX FIFO */
	pio_out(vm, 0x70, 0x30, 1);                   /* CMOS index */
	pio_out(vm, 0x510, 0x0000, 2);                /* fw_cfg signature, one byte read */
	pio_in(vm, 0x511, 1);
	pio_out(vm, 0xcf8, 0x80001234, 4);            /* PCI address latch */
	size_t len;
	uint8_t *before = devices_save(vm, &len);

	pio_out(vm, 0x3ff, 0xa5, 1);
	pio_in(vm, 0x3f8, 1);                         /* the FIFO drained */
	pio_out(vm, 0x70, 0x0d, 1);
	pio_out(vm, 0x510, 0x0001, 2);
	pio_out(vm, 0xcf8, 0x80000000, 4);
	devices_restore(vm, before);

	size_t len2;
	uint8_t *after = devices_save(vm, &len2);
	CHECK(len == len2 && memcmp(before, after, len) == 0, "saved again after a restore");
	CHECK_EQ(pio_in(vm, 0x3ff, 1), 0x5a);
	CHECK_EQ(pio_in(vm, 0x3f8, 1), 'a');
	CHECK_EQ(pio_in(vm, 0xcf8, 4), 0x80001234);
	CHECK_EQ(pio_in(vm, 0x511, 1), 'E');         /* "QEMU": the cursor was past the Q */
	free(before);
	free(after);
	pio_out(vm, 0x3fc, 0x08, 1);
	fake_vm_free(vm);
}

static void test_misc_devices(void)
{
	struct vm *vm = fake_vm(2);
	struct err e = { 0 };
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);

	exit_status = -1;
	pio_out(vm, 0xf4, 0x10, 1);
	CHECK(exit_status == 0x21, "debug exit status %d", exit_status);
	pio_out(vm, 0xf4, 0x1234, 4);
	CHECK(exit_status == 0x2469, "debug exit 4-byte status 0x%x", exit_status);

	char sig[5] = { 0 };
	pio_out(vm, 0x510, 0x0000, 2);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)pio_in(vm, 0x511, 1);
	CHECK(!strcmp(sig, "QEMU"), "fw_cfg signature %s", sig);
	CHECK(pio_in(vm, 0x511, 1) == 0, "fw_cfg past the end");
	pio_out(vm, 0x510, 0x05, 2);
	CHECK(pio_in(vm, 0x511, 1) == 2 && pio_in(vm, 0x511, 1) == 0, "fw_cfg nr cpus");
	pio_out(vm, 0x510, 0x01, 2);
	CHECK(pio_in(vm, 0x511, 1) == 1, "fw_cfg id");
	pio_out(vm, 0x510, 0x03, 2);
	uint64_t ram = 0;
	for (int i = 0; i < 8; i++)
		ram |= (uint64_t)pio_in(vm, 0x511, 1) << (8 * i);
	CHECK(ram == TEST_RAM, "fw_cfg ram size 0x%llx", (unsigned long long)ram);
	pio_out(vm, 0x510, 0x1234, 2);
	CHECK(pio_in(vm, 0x511, 1) == 0, "fw_cfg unknown item");
	pio_out(vm, 0x510, 0x8003, 2);
	CHECK(pio_in(vm, 0x511, 1) == 4, "fw_cfg e820 count");

	pio_out(vm, 0x70, 0x0d, 1);
	CHECK(pio_in(vm, 0x71, 1) == 0x80, "CMOS register D");
	pio_out(vm, 0x70, 0x0a, 1);
	CHECK((pio_in(vm, 0x71, 1) & 0x7f) == 0x26, "RTC register A (UIP aside)");
	pio_out(vm, 0x70, 0x09, 1);
	CHECK((pio_in(vm, 0x71, 1) & 0x0f) <= 9, "RTC year is BCD");
	pio_out(vm, 0x70, 0x40, 1);
	pio_out(vm, 0x71, 0x77, 1);
	CHECK(pio_in(vm, 0x71, 1) == 0x77, "CMOS RAM");

	CHECK(pio_in(vm, 0x92, 1) == 0x02, "A20");
	pio_out(vm, 0x80, 0x55, 1);
	pio_out(vm, 0xcf8, 0x80000000u, 4);
	CHECK(pio_in(vm, 0xcf8, 4) == 0x80000000u, "PCI address readback");
	CHECK(pio_in(vm, 0xcfc, 4) == 0xffffffffu, "PCI no device");

	/* ACPI fixed hardware, reset paths, i8042 */
	fake_guest_ns = 1000000000ull;                    /* 1 s: 3579545 ticks */
	CHECK(pio_in(vm, 0x608, 4) == 3579545u, "PM timer at 1 s: %u", pio_in(vm, 0x608, 4));
	CHECK(pio_in(vm, 0x60a, 2) == (3579545u >> 16), "PM timer upper half");
	CHECK(pio_in(vm, 0x604, 2) & 1, "PM1_CNT SCI_EN");
	pio_out(vm, 0x602, 0x0120, 2);                    /* PWRBTN_EN | GBL_EN */
	CHECK(pio_in(vm, 0x600, 4) == 0x01200000u, "PM1 event block dword");
	exit_status = -1;
	pio_out(vm, 0x604, 5 << 10, 2);
	CHECK(exit_status == -1, "SLP_TYP alone does nothing");
	pio_out(vm, 0x605, (5 << 10 | 1 << 13) >> 8, 1);
	CHECK(exit_status == 0, "S5 by a byte write of SLP_EN: %d", exit_status);
	exit_status = -1;
	pio_out(vm, 0x604, 1 << 10 | 1 << 13, 2);
	CHECK(exit_status == -1, "S1 is not offered");
	reset_requests = 0;
	pio_out(vm, 0xcf9, 0x02, 1);
	CHECK(reset_requests == 0 && pio_in(vm, 0xcf9, 1) == 0x02, "0xcf9 SYS_RST alone");
	pio_out(vm, 0xcf9, 0x06, 1);
	CHECK(reset_requests == 1, "0xcf9 RST_CPU resets");
	pio_out(vm, 0x92, 0x02, 1);
	CHECK(reset_requests == 1, "0x92 without bit 0");
	pio_out(vm, 0x92, 0x03, 1);
	CHECK(reset_requests == 2, "0x92 fast reset");
	pio_out(vm, 0x64, 0xaa, 1);
	CHECK((pio_in(vm, 0x64, 1) & 1) && pio_in(vm, 0x60, 1) == 0x55, "i8042 self-test");
	CHECK(!(pio_in(vm, 0x64, 1) & 1), "i8042 output buffer empty after the read");
	pio_out(vm, 0x60, 0xff, 1);
	CHECK(!(pio_in(vm, 0x64, 1) & 1), "no keyboard answers");
	pio_out(vm, 0x64, 0xfe, 1);
	CHECK(reset_requests == 3, "i8042 reset pulse");
	for (unsigned i = 0; i < vm->nr_resets; i++)
		vm->resets[i].fn(vm->resets[i].opaque);
	CHECK(pio_in(vm, 0x600, 4) == 0, "PM1 event block after reset");

	/* ACPI */
	const uint8_t *rsdp = vm->ram + vm->rsdp_gpa;
	CHECK(vm->rsdp_gpa == VM_ACPI_BASE && !memcmp(rsdp, "RSD PTR ", 8), "RSDP at 0x%llx",
	      (unsigned long long)vm->rsdp_gpa);
	CHECK(acpi_checksum(rsdp, 20) == 0 && acpi_checksum(rsdp, 36) == 0, "RSDP checksums");
	uint32_t rsdt, xsdt_lo;
	memcpy(&rsdt, rsdp + 16, 4);
	memcpy(&xsdt_lo, rsdp + 24, 4);
	const uint8_t *t = vm->ram + rsdt;
	uint32_t len;
	memcpy(&len, t + 4, 4);
	CHECK(!memcmp(t, "RSDT", 4) && len == 44 && acpi_checksum(t, len) == 0, "RSDT");
	CHECK(!memcmp(vm->ram + xsdt_lo, "XSDT", 4), "XSDT");
	for (int i = 0; i < 2; i++) {
		uint32_t addr;
		memcpy(&addr, t + 36 + 4 * i, 4);
		const uint8_t *s = vm->ram + addr;
		uint32_t slen;
		memcpy(&slen, s + 4, 4);
		CHECK(acpi_checksum(s, slen) == 0, "table %.4s checksum", (const char *)s);
		if (!memcmp(s, "APIC", 4)) {
			CHECK(slen == 44 + 2 * 8 + 12 + 2 * 10, "MADT length %u", slen);
			CHECK(s[44] == 0 && s[52] == 0 && s[55] == 1 && s[60] == 1 && s[72] == 2,
			      "MADT entries");
		}
	}
	fake_vm_free(vm);
}

/* --- images --------------------------------------------------------------- */

#define KERNEL_AT 0x200000u
#define CODE_LEN  16

struct image {
	uint8_t buf[4096];
	size_t size;
};

static void make_elf64(struct image *im)
{
	memset(im, 0, sizeof(*im));
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = KERNEL_AT + 4, .e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1,
	};
	Elf64_Phdr ph = {
		.p_type = PT_LOAD, .p_offset = 0x100, .p_vaddr = KERNEL_AT, .p_paddr = KERNEL_AT,
		.p_filesz = CODE_LEN, .p_memsz = 0x2000, .p_flags = PF_R | PF_X,
	};
	memcpy(im->buf, &eh, sizeof(eh));
	memcpy(im->buf + eh.e_phoff, &ph, sizeof(ph));
	memset(im->buf + 0x100, 0x90, CODE_LEN);
	im->size = 0x100 + CODE_LEN;
}

static Elf64_Ehdr *eh64(struct image *im) { return (Elf64_Ehdr *)im->buf; }
static Elf64_Phdr *ph64(struct image *im) { return (Elf64_Phdr *)(im->buf + sizeof(Elf64_Ehdr)); }

static void test_elf64_good(void)
{
	struct image im;
	make_elf64(&im);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_ELF64, "detect ELF64");

	struct vm *vm = fake_vm(2);
	struct err e = { 0 };
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	memset(vm->ram + KERNEL_AT, 0xcc, 0x2000);
	CHECK(load_elf64(vm, im.buf, im.size, &e) == 0, "load: %s", e.msg);
	CHECK(vm->ram[KERNEL_AT] == 0x90 && vm->ram[KERNEL_AT + CODE_LEN] == 0 &&
	      vm->ram[KERNEL_AT + 0x1fff] == 0, "segment copied, bss zeroed");
	CHECK(fake_regs.rip == KERNEL_AT + 4 && fake_regs.rdi == VMDB_BOOT_INFO &&
	      fake_regs.rax == VMDB_BOOT_MAGIC && fake_regs.rsp == VMDB_BOOT_STACK_TOP &&
	      fake_regs.rflags == RFLAGS_FIXED1, "entry registers");
	CHECK(fake_sregs.cr0 & CR0_PG && fake_sregs.efer == (EFER_LME | EFER_LMA) &&
	      fake_sregs.cr3 == VMDB_BOOT_PML4 && fake_sregs.cs.l && fake_sregs.cs.selector == 8,
	      "long mode sregs");
	struct vmdb_boot_info bi;
	memcpy(&bi, vm->ram + VMDB_BOOT_INFO, sizeof(bi));
	CHECK(bi.magic == VMDB_BOOT_MAGIC && bi.nr_cpus == 2 && bi.mem_size == TEST_RAM &&
	      bi.rsdp == VM_ACPI_BASE, "boot info");
	CHECK(bi.cmdline_len == strlen("console=ttyS0 test") &&
	      !strcmp((char *)vm->ram + bi.cmdline, "console=ttyS0 test"), "cmdline");
	CHECK(bi.mmap_entries == 4, "mmap entries %u", bi.mmap_entries);
	struct vmdb_mmap_entry last;
	memcpy(&last, vm->ram + bi.mmap + 3 * sizeof(last), sizeof(last));
	CHECK(last.base == 0x100000 && last.len == TEST_RAM - 0x100000 && last.type == VMDB_MEM_RAM,
	      "mmap high entry");
	uint64_t pde;
	memcpy(&pde, vm->ram + VMDB_BOOT_PML4 + 2 * 0x1000 + 8 * 2047, 8);
	CHECK(pde == (0xffe00000ull | 0x83), "last PD entry 0x%llx", (unsigned long long)pde);
	fake_vm_free(vm);
}

struct bad_elf {
	const char *name;
	void (*mutate)(struct image *im);
	const char *expect;     /* substring of the message */
};

static void m_trunc_hdr(struct image *im) { im->size = 20; }
static void m_phoff(struct image *im) { eh64(im)->e_phoff = 0x10000; }
static void m_phoff_wrap(struct image *im) { eh64(im)->e_phoff = ~0ull - 8; }
static void m_phnum(struct image *im) { eh64(im)->e_phnum = 0xfff0; }
static void m_phnum0(struct image *im) { eh64(im)->e_phnum = 0; }
static void m_phentsize(struct image *im) { eh64(im)->e_phentsize = 8; }
static void m_seg_past(struct image *im) { ph64(im)->p_offset = 0x1000; }
static void m_seg_wrap(struct image *im) { ph64(im)->p_offset = ~0ull - 4; }
static void m_filesz(struct image *im) { ph64(im)->p_memsz = 0x8; }
static void m_low(struct image *im) { ph64(im)->p_paddr = 0x1000; eh64(im)->e_entry = 0x1004; }
static void m_big(struct image *im) { ph64(im)->p_memsz = TEST_RAM; }
static void m_addr_wrap(struct image *im) { ph64(im)->p_paddr = ~0ull - 0x10; }
static void m_entry(struct image *im) { eh64(im)->e_entry = 0x100; }
static void m_type(struct image *im) { eh64(im)->e_type = ET_REL; }
static void m_noload(struct image *im) { ph64(im)->p_type = PT_NOTE; }

static const struct bad_elf bad_elfs[] = {
	{ "truncated header", m_trunc_hdr, "truncated" },
	{ "phoff past end", m_phoff, "past the end" },
	{ "phoff wraps", m_phoff_wrap, "past the end" },
	{ "phnum too big", m_phnum, "past the end" },
	{ "no phdrs", m_phnum0, "no program headers" },
	{ "phentsize", m_phentsize, "program header size" },
	{ "segment past end", m_seg_past, "past the end" },
	{ "segment offset wraps", m_seg_wrap, "past the end" },
	{ "filesz > memsz", m_filesz, "more file bytes" },
	{ "below 1 MiB", m_low, "below" },
	{ "too big", m_big, "does not fit in --mem 16M" },
	{ "address wraps", m_addr_wrap, "does not fit" },
	{ "entry outside", m_entry, "entry point" },
	{ "not executable", m_type, "not an executable" },
	{ "no PT_LOAD", m_noload, "no loadable segment" },
};

static void test_elf64_bad(void)
{
	for (size_t i = 0; i < sizeof(bad_elfs) / sizeof(bad_elfs[0]); i++) {
		struct image im;
		make_elf64(&im);
		bad_elfs[i].mutate(&im);
		struct vm *vm = fake_vm(1);
		struct err e = { 0 };
		int r = load_elf64(vm, im.buf, im.size, &e);
		CHECK(r < 0 && strstr(e.msg, bad_elfs[i].expect), "%s: got %d \"%s\", expected \"%s\"",
		      bad_elfs[i].name, r, e.msg, bad_elfs[i].expect);
		fake_vm_free(vm);
	}
}

/* Random byte flips of a valid image: any result is fine, a crash is not. */
static void test_elf64_fuzz(void)
{
	struct vm *vm = fake_vm(1);
	unsigned seed = 12345;
	int refused = 0;
	for (int round = 0; round < 3000; round++) {
		struct image im;
		make_elf64(&im);
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			im.buf[(seed >> 8) % 0x110] = (uint8_t)(seed >> 20);
		}
		struct err e = { 0 };
		if (load_elf64(vm, im.buf, im.size, &e) < 0) {
			refused++;
			if (!e.msg[0])
				CHECK(0, "refusal without a message at round %d", round);
		}
		if (load_multiboot(vm, im.buf, im.size, &e) < 0 && !e.msg[0])
			CHECK(0, "multiboot refusal without a message");
	}
	CHECK(refused > 0, "fuzz refused nothing");
	fake_vm_free(vm);
}

/* --- multiboot -------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* a.out kludge image: header at file offset 16, loaded at 1 MiB */
static void make_aout(struct image *im)
{
	memset(im, 0, sizeof(*im));
	uint8_t *h = im->buf + 16;
	uint32_t flags = 0x00010003u;
	put32(h, 0x1badb002u);
	put32(h + 4, flags);
	put32(h + 8, (uint32_t)-(0x1badb002u + flags));
	put32(h + 12, 0x100010);        /* header_addr */
	put32(h + 16, 0x100000);        /* load_addr */
	put32(h + 20, 0x100200);        /* load_end_addr */
	put32(h + 24, 0x101000);        /* bss_end_addr */
	put32(h + 28, 0x100100);        /* entry */
	memset(im->buf + 0x100, 0xf4, 0x100);
	im->size = 0x200;
}

static void test_multiboot(void)
{
	struct image im;
	make_aout(&im);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_MULTIBOOT, "detect multiboot");

	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	vm->cfg.kernel_path = "/boot/k.elf";
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	memset(vm->ram + 0x100000, 0xcc, 0x1000);
	CHECK(load_multiboot(vm, im.buf, im.size, &e) == 0, "a.out load: %s", e.msg);
	CHECK(vm->ram[0x100100] == 0xf4 && vm->ram[0x100200] == 0 && vm->ram[0x100fff] == 0,
	      "a.out image and bss");
	CHECK(fake_regs.rip == 0x100100 && fake_regs.rax == 0x2badb002u && fake_regs.rbx == 0x9000,
	      "multiboot registers");
	CHECK(fake_sregs.cr0 == (CR0_PE | CR0_ET) && fake_sregs.cs.db && !fake_sregs.cs.l &&
	      fake_sregs.cs.selector == 8 && fake_sregs.ss.selector == 0x10, "protected mode");
	uint32_t flags, upper, cmd, mmap_len, mods_count;
	memcpy(&flags, vm->ram + 0x9000, 4);
	memcpy(&upper, vm->ram + 0x9008, 4);
	memcpy(&cmd, vm->ram + 0x9010, 4);
	memcpy(&mods_count, vm->ram + 0x9014, 4);
	memcpy(&mmap_len, vm->ram + 0x902c, 4);
	CHECK(flags == 0x24f, "info flags 0x%x", flags);
	CHECK(upper == (TEST_RAM - 0x100000) / 1024, "mem_upper %u", upper);
	CHECK(!strcmp((char *)vm->ram + cmd, "/boot/k.elf console=ttyS0 test"), "multiboot cmdline "
	      "\"%s\"", (char *)vm->ram + cmd);
	CHECK(mods_count == 0 && mmap_len == 4 * 24, "mods %u mmap %u", mods_count, mmap_len);
	fake_vm_free(vm);

	/* malformed a.out headers */
	static const struct { uint32_t off, val; const char *expect; } bad[] = {
		{ 12, 0x0ff000, "header_addr" },      /* header_addr < load_addr */
		{ 20, 0x200000, "past the end" },     /* load_end beyond the file */
		{ 20, 0x0f0000, "load_end_addr" },    /* load_end < load_addr */
		{ 24, 0x100100, "bss_end_addr" },
		{ 16, 0x000000, "header_addr" },      /* header_addr - load_addr > offset */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_aout(&im);
		put32(im.buf + 16 + bad[i].off, bad[i].val);
		vm = fake_vm(1);
		int r = load_multiboot(vm, im.buf, im.size, &e);
		CHECK(r < 0 && strstr(e.msg, bad[i].expect), "a.out case %zu: %d \"%s\"", i, r, e.msg);
		fake_vm_free(vm);
	}
	make_aout(&im);
	im.size = 40;                           /* header cut short */
	vm = fake_vm(1);
	CHECK(load_multiboot(vm, im.buf, im.size, &e) < 0 && strstr(e.msg, "truncated"),
	      "truncated a.out header: %s", e.msg);
	fake_vm_free(vm);
}

static void test_multiboot_elf32(void)
{
	struct image im;
	memset(&im, 0, sizeof(im));
	Elf32_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
		.e_entry = 0x100000, .e_phoff = sizeof(Elf32_Ehdr), .e_ehsize = sizeof(Elf32_Ehdr),
		.e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 1,
	};
	Elf32_Phdr ph = { .p_type = PT_LOAD, .p_offset = 0x100, .p_vaddr = 0xc0100000,
			  .p_paddr = 0x100000, .p_filesz = 0x20, .p_memsz = 0x40 };
	memcpy(im.buf, &eh, sizeof(eh));
	memcpy(im.buf + eh.e_phoff, &ph, sizeof(ph));
	uint8_t *h = im.buf + 0x100;        /* header inside the segment */
	put32(h, 0x1badb002u);
	put32(h + 4, 0);
	put32(h + 8, (uint32_t)-0x1badb002u);
	im.size = 0x120;
	CHECK(loader_detect(im.buf, im.size) == KERNEL_MULTIBOOT, "detect ELF32 multiboot");

	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	vm->cfg.initrd_path = "/proc/self/exe";   /* any readable regular file */
	CHECK(load_multiboot(vm, im.buf, im.size, &e) == 0, "ELF32 load: %s", e.msg);
	CHECK(!memcmp(vm->ram + 0x100000, h, 12), "ELF32 segment by paddr");
	CHECK(fake_regs.rip == 0x100000, "ELF32 entry");
	uint32_t mods_count, mod_start, mod_name;
	memcpy(&mods_count, vm->ram + 0x9014, 4);
	memcpy(&mod_start, vm->ram + 0x9200, 4);
	memcpy(&mod_name, vm->ram + 0x9208, 4);
	CHECK(mods_count == 1 && mod_start == 0x101000 && vm->initrd_gpa == 0x101000 &&
	      vm->initrd_size > 0 && !strcmp((char *)vm->ram + mod_name, "initrd"),
	      "initrd module at 0x%x", mod_start);
	CHECK(!memcmp(vm->ram + 0x101000, "\x7f" "ELF", 4), "initrd contents");
	fake_vm_free(vm);

	((Elf32_Phdr *)(im.buf + sizeof(Elf32_Ehdr)))->p_filesz = 0x1000;
	vm = fake_vm(1);
	CHECK(load_multiboot(vm, im.buf, im.size, &e) < 0 && strstr(e.msg, "past the end"),
	      "ELF32 segment past end: %s", e.msg);
	fake_vm_free(vm);
}

/* --- Linux: bzImage and PVH --------------------------------------------------- */

#define BZ_SETUP   0x400u      /* setup_sects = 1 */
#define BZ_INIT    0x10000u

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A 2.15 bzImage: relocatable, 2 MiB aligned, wants 8 MiB, payload 0x90s. */
static void make_bzimage(struct image *im)
{
	memset(im, 0, sizeof(*im));
	uint8_t *b = im->buf;
	b[LB_SETUP_SECTS] = 1;
	put16(b + LB_BOOT_FLAG, LB_BOOT_FLAG_MAGIC);
	b[LB_JUMP] = 0xeb;
	b[LB_JUMP + 1] = 0x6a;
	put32(b + LB_HEADER, LB_HEADER_MAGIC);
	put16(b + LB_VERSION, 0x020f);
	put32(b + LB_INITRD_ADDR_MAX, 0x7fffffff);
	put32(b + LB_KERNEL_ALIGNMENT, 0x200000);
	b[LB_RELOCATABLE] = 1;
	put16(b + LB_XLOADFLAGS, LB_XLF_KERNEL_64);
	put32(b + LB_CMDLINE_SIZE, 255);
	put64(b + LB_PREF_ADDRESS, 0x800000);
	put32(b + LB_INIT_SIZE, BZ_INIT);
	im->size = sizeof(im->buf);                 /* the payload: the rest of the buffer */
	memset(b + BZ_SETUP, 0x90, im->size - BZ_SETUP);
	put32(b + LB_SYSSIZE, (uint32_t)(im->size - BZ_SETUP) / 16);
}

static void test_bzimage(void)
{
	struct image im;
	make_bzimage(&im);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_BZIMAGE, "detect bzImage");
	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	CHECK(load_bzimage(vm, im.buf, im.size, &e) == 0, "load: %s", e.msg);
	const uint8_t *bp = vm->ram + VMDB_BOOT_INFO;
	CHECK(fake_regs.rip == 0x800200 && fake_regs.rsi == VMDB_BOOT_INFO &&
	      vm->ram[0x800000] == 0x90, "at pref_address, entry + 0x200, RSI = boot_params");
	CHECK(fake_sregs.cs.selector == LB_BOOT_CS && fake_sregs.cs.l &&
	      fake_sregs.ds.selector == LB_BOOT_DS && fake_sregs.ss.selector == LB_BOOT_DS &&
	      fake_sregs.cr0 & CR0_PG && fake_sregs.efer & EFER_LMA, "64-bit entry state");
	CHECK(get64(vm->ram + VMDB_BOOT_GDT + LB_BOOT_CS) == LOADER_DESC_CODE64 &&
	      get64(vm->ram + VMDB_BOOT_GDT + LB_BOOT_DS) == LOADER_DESC_DATA, "GDT 0x10 / 0x18");
	CHECK(bp[LB_TYPE_OF_LOADER] == 0xff && bp[LB_LOADFLAGS] == (LB_LOADED_HIGH | LB_CAN_USE_HEAP) &&
	      get32(bp + LB_HEADER) == LB_HEADER_MAGIC, "boot_params header");
	CHECK(!strcmp((const char *)vm->ram + get32(bp + LB_CMD_LINE_PTR), "console=ttyS0 test"),
	      "cmdline");
	CHECK(bp[LB_E820_ENTRIES] == 4 && get64(bp + LB_ACPI_RSDP_ADDR) == VM_ACPI_BASE &&
	      get64(bp + LB_E820_TABLE + 3 * LB_E820_ENTRY_SIZE + 8) == TEST_RAM - 0x100000,
	      "e820 and RSDP");

	put64(im.buf + LB_PREF_ADDRESS, 0x4000000);     /* beyond the 16 MiB: relocated */
	CHECK(load_bzimage(vm, im.buf, im.size, &e) == 0 && fake_regs.rip == 0x200200,
	      "relocated to 2 MiB: %s", e.msg);
	im.buf[LB_RELOCATABLE] = 0;
	CHECK(load_bzimage(vm, im.buf, im.size, &e) < 0 && strstr(e.msg, "not relocatable"),
	      "fixed address outside RAM: %s", e.msg);
	put64(im.buf + LB_PREF_ADDRESS, 0x300000);
	CHECK(load_bzimage(vm, im.buf, im.size, &e) == 0 && fake_regs.rip == 0x300200,
	      "fixed address honoured: %s", e.msg);
	put32(im.buf + LB_INIT_SIZE, 32u << 20);
	CHECK(load_bzimage(vm, im.buf, im.size, &e) < 0 && strstr(e.msg, "0x300000-0x2300000"),
	      "init_size counts: %s", e.msg);
	fake_vm_free(vm);
}

/* make_elf64 plus a PT_NOTE with the PVH entry (desc of 4 or 8 bytes). */
static void make_pvh(struct image *im, unsigned desc_size)
{
	make_elf64(im);
	eh64(im)->e_phnum = 2;
	Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 12 + 4 + desc_size };
	memcpy(ph64(im) + 1, &note, sizeof(note));
	uint8_t *n = im->buf + 0x200;
	put32(n, 4);
	put32(n + 4, desc_size);
	put32(n + 8, PVH_NOTE_PHYS32_ENTRY);
	memcpy(n + 12, "Xen", 4);
	put32(n + 16, KERNEL_AT + 8);
	im->size = 0x200 + note.p_filesz;
}

static void test_pvh(void)
{
	struct image im;
	make_pvh(&im, 8);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_PVH, "detect PVH (the note wins over ELF64)");
	make_pvh(&im, 4);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_PVH, "detect PVH, 4-byte entry");
	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	CHECK(load_pvh(vm, im.buf, im.size, &e) == 0, "load: %s", e.msg);
	CHECK(fake_regs.rip == KERNEL_AT + 8 && fake_regs.rbx == VMDB_BOOT_INFO, "entry, EBX");
	CHECK(!(fake_sregs.cr0 & CR0_PG) && fake_sregs.cr0 & CR0_PE && !fake_sregs.cs.l &&
	      fake_sregs.cs.db && !fake_sregs.efer, "32-bit protected mode, paging off");
	struct hvm_start_info si;
	memcpy(&si, vm->ram + VMDB_BOOT_INFO, sizeof(si));
	CHECK(si.magic == PVH_START_MAGIC && si.version == 1 && si.nr_modules == 0 &&
	      si.rsdp_paddr == VM_ACPI_BASE && si.memmap_entries == 4 &&
	      !strcmp((const char *)vm->ram + si.cmdline_paddr, "console=ttyS0 test"), "start_info");
	put32(im.buf + 0x200, 5);       /* namesz no longer "Xen\0": a plain ELF64 */
	CHECK(loader_detect(im.buf, im.size) == KERNEL_ELF64, "other note: ELF64");
	put32(im.buf + 0x200, 0xfffffffe);
	CHECK(loader_detect(im.buf, im.size) == KERNEL_ELF64, "huge namesz: ELF64");
	fake_vm_free(vm);
}

static void check_compose(const char *user, const char *params, size_t max, int want_added,
			  const char *want)
{
	char out[64];
	int added = linux_cmdline_compose(user, params, out, max);
	CHECK(added == want_added && !strcmp(out, want), "compose(\"%s\", \"%s\", %zu): %d \"%s\", "
	      "expected %d \"%s\"", user, params, max, added, out, want_added, want);
}

static void test_linux_cmdline(void)
{
	check_compose("console=ttyS0", "noxsave", 63, 1, "console=ttyS0 noxsave");
	check_compose("", "noxsave", 63, 1, "noxsave");
	check_compose("a", "", 63, 0, "a");
	check_compose("noxsave quiet", "noxsave", 63, 0, "noxsave quiet");
	check_compose("clearcpuid=154 x", "clearcpuid=1 noxsave", 63, 1, "clearcpuid=154 x noxsave");
	check_compose("noxsaveopt", "noxsave", 63, 1, "noxsaveopt noxsave");
	check_compose("ro -- noxsave", "noxsave", 63, 1, "ro noxsave -- noxsave");
	check_compose("a  b", "x  y", 63, 2, "a  b x y");
	check_compose("console=ttyS0", "noxsave", 20, -1, "console=ttyS0");
	check_compose("console=ttyS0", "noxsave", 21, 1, "console=ttyS0 noxsave");
	check_compose("ro -- init", "noxsave", 18, 1, "ro noxsave -- init");
	check_compose("ro -- init", "noxsave", 17, -1, "ro -- init");

	/* both Linux loaders, with an engine that asks */
	struct image im;
	struct err e = { 0 };
	struct vm *vm = fake_vm(1);
	vm->engine = &fake_linux_engine;
	CHECK(machine_devices_init(vm, &e) == 0, "devices: %s", e.msg);
	make_bzimage(&im);
	CHECK(load_bzimage(vm, im.buf, im.size, &e) == 0, "load: %s", e.msg);
	const uint8_t *bp = vm->ram + VMDB_BOOT_INFO;
	CHECK(!strcmp((const char *)vm->ram + get32(bp + LB_CMD_LINE_PTR),
		      "console=ttyS0 test noxsave"), "bzImage: the engine's parameter added");
	make_pvh(&im, 8);
	CHECK(load_pvh(vm, im.buf, im.size, &e) == 0, "load: %s", e.msg);
	struct hvm_start_info si;
	memcpy(&si, vm->ram + VMDB_BOOT_INFO, sizeof(si));
	CHECK(!strcmp((const char *)vm->ram + si.cmdline_paddr, "console=ttyS0 test noxsave"),
	      "PVH: the engine's parameter added");
	CHECK_EQ(fake_linux_params_calls, 2);
	fake_vm_free(vm);
}

/* Mutated headers: refused with a message or loaded, never a crash. */
static void test_linux_fuzz(void)
{
	struct vm *vm = fake_vm(1);
	unsigned seed = 777;
	int refused = 0;
	for (int round = 0; round < 3000; round++) {
		struct image im;
		bool bz = round & 1;
		if (bz)
			make_bzimage(&im);
		else
			make_pvh(&im, 8);
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245u + 12345u;
			unsigned off = bz ? 0x1f0 + (seed >> 8) % 0x80 : (seed >> 8) % 0x220;
			im.buf[off] = (uint8_t)(seed >> 20);
		}
		struct err e = { 0 };
		int r = bz ? load_bzimage(vm, im.buf, im.size, &e) : load_pvh(vm, im.buf, im.size, &e);
		if (r < 0) {
			refused++;
			if (!e.msg[0])
				CHECK(0, "refusal without a message at round %d", round);
		}
		(void)loader_detect(im.buf, im.size);
	}
	CHECK(refused > 0, "fuzz refused nothing");
	fake_vm_free(vm);
}

/* --- detection and loader_load ----------------------------------------------- */

static void test_detect(void)
{
	uint8_t buf[9000] = { 0 };
	CHECK(loader_detect(buf, 0) == KERNEL_UNKNOWN, "empty");
	CHECK(loader_detect(NULL, 10) == KERNEL_UNKNOWN, "NULL");
	CHECK(loader_detect(buf, sizeof(buf)) == KERNEL_UNKNOWN, "zeros");
	put32(buf + 8188, 0x1badb002u);     /* header would end past 8192 */
	put32(buf + 8192, (uint32_t)-0x1badb002u);
	CHECK(loader_detect(buf, sizeof(buf)) == KERNEL_UNKNOWN, "header beyond 8192 bytes");
	put32(buf + 40, 0x1badb002u);
	put32(buf + 48, 1);                 /* bad checksum */
	CHECK(loader_detect(buf, sizeof(buf)) == KERNEL_UNKNOWN, "bad checksum");
	put32(buf + 42, 0x1badb002u);       /* misaligned */
	put32(buf + 50, (uint32_t)-0x1badb002u);
	CHECK(loader_detect(buf, sizeof(buf)) == KERNEL_UNKNOWN, "misaligned header");
	memcpy(buf, "\x7f" "ELF\x01\x01\x01", 7); /* ELF32 without a multiboot header */
	CHECK(loader_detect(buf, 64) == KERNEL_UNKNOWN, "ELF32 alone");
}

/* loader_open on a file, then loader_load when it opened. */
static int open_and_load(struct vm *vm, struct err *e)
{
	struct kernel_image image;
	int r = loader_open(vm->cfg.kernel_path, &image, e);
	if (r < 0)
		return r;
	r = loader_load(vm, &image, e);
	loader_close(&image);
	return r;
}

static void test_loader_load(const char *dir)
{
	struct vm *vm = fake_vm(1);
	struct err e = { 0 };
	char path[512];

	vm->cfg.kernel_path = "/nonexistent/kernel.elf";
	CHECK(open_and_load(vm, &e) == -ENOENT && strstr(e.msg, "does not exist"), "missing: %s", e.msg);
	snprintf(path, sizeof(path), "%s/empty", dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	vm->cfg.kernel_path = path;
	CHECK(open_and_load(vm, &e) < 0 && strstr(e.msg, "is empty"), "empty: %s", e.msg);
	f = fopen(path, "w");
	fputs("#!/bin/sh\necho not a kernel\n", f);
	fclose(f);
	CHECK(open_and_load(vm, &e) < 0 && strstr(e.msg, "not an ELF64, multiboot, Linux bzImage or PVH"),
	      "garbage: %s", e.msg);
	vm->cfg.kernel_path = dir;
	CHECK(open_and_load(vm, &e) < 0 && strstr(e.msg, "not a regular file"), "directory: %s", e.msg);

	struct image im;
	make_elf64(&im);
	snprintf(path, sizeof(path), "%s/k.elf", dir);
	f = fopen(path, "w");
	fwrite(im.buf, 1, im.size, f);
	fclose(f);
	vm->cfg.kernel_path = path;
	CHECK(open_and_load(vm, &e) == 0 && fake_regs.rip == KERNEL_AT + 4, "load file: %s", e.msg);
	vm->cfg.initrd_path = "/nonexistent/initrd";
	CHECK(open_and_load(vm, &e) < 0 && strstr(e.msg, "initrd"), "missing initrd: %s", e.msg);
	fake_vm_free(vm);
	unlink(path);
	snprintf(path, sizeof(path), "%s/empty", dir);
	unlink(path);
}

static void send_text(struct output_watch *w, const char *text)
{
	for (const char *p = text; *p; p++)
		output_watch_byte(w, (uint8_t)*p);
}

/* machine/output_watch.c: a match at the byte that completes it, once per
 * line; a pattern set mid-line sees the whole line; CR is not part of a
 * line; a line longer than the buffer is matched on its start; off and bad
 * patterns. */
static void test_output_watch(void)
{
	struct output_watch w;
	char line[OUTPUT_WATCH_LINE], pattern[64];
	struct err e = { 0 };
	output_watch_init(&w);
	CHECK(!output_watch_pattern(&w, pattern, sizeof(pattern)), "nothing watched at first");
	send_text(&w, "Kernel pan");
	CHECK(output_watch_set(&w, "^Kernel panic - [a-z]+", &e) == 0, "set: %s", e.msg);
	CHECK(output_watch_pattern(&w, pattern, sizeof(pattern)) &&
	      !strcmp(pattern, "^Kernel panic - [a-z]+"), "the pattern is listed: %s", pattern);
	send_text(&w, "ic - ");
	CHECK(!output_watch_take(&w, line, sizeof(line)), "no match before the first letter");
	send_text(&w, "n");
	CHECK(output_watch_take(&w, line, sizeof(line)) && !strcmp(line, "Kernel panic - n"),
	      "a match with the byte that completes it, the line from before the pattern: %s",
	      line);
	CHECK(!output_watch_take(&w, line, sizeof(line)), "taken once");
	send_text(&w, "ot syncing");
	CHECK(!output_watch_take(&w, line, sizeof(line)), "once per line");
	send_text(&w, "\r\nKernel panic - again");
	CHECK(output_watch_take(&w, line, sizeof(line)) && !strcmp(line, "Kernel panic - a"),
	      "the next line matches again, without its CR: %s", line);
	send_text(&w, "\n");
	for (int i = 0; i < OUTPUT_WATCH_LINE + 10; i++)
		output_watch_byte(&w, 'x');
	send_text(&w, "Kernel panic - late\n");
	CHECK(!output_watch_take(&w, line, sizeof(line)), "a long line's end is not matched");
	CHECK(output_watch_set(&w, "(", &e) == -EINVAL && strstr(e.msg, "regular expression"),
	      "a bad pattern is refused in words: %s", e.msg);
	CHECK(output_watch_pattern(&w, pattern, sizeof(pattern)), "the old pattern stays");
	output_watch_clear(&w);
	send_text(&w, "Kernel panic - off\n");
	CHECK(!output_watch_take(&w, line, sizeof(line)) &&
	      !output_watch_pattern(&w, pattern, sizeof(pattern)), "cleared: no match");
	output_watch_destroy(&w);
}

int main(void)
{
	char dir[] = "/tmp/vmdb-machine-test-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	char serial[600];
	snprintf(serial, sizeof(serial), "%s/serial.txt", dir);

	test_bus();
	test_output_watch();
	test_uart(serial);
	test_misc_devices();
	test_device_snapshots();
	test_detect();
	test_elf64_good();
	test_elf64_bad();
	test_elf64_fuzz();
	test_multiboot();
	test_multiboot_elf32();
	test_bzimage();
	test_pvh();
	test_linux_fuzz();
	test_linux_cmdline();
	test_loader_load(dir);

	unlink(serial);
	rmdir(dir);
	return check_summary("machine");
}
