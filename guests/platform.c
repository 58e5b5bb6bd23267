/* guests/platform.c — platform.elf: the PC platform vmdb gives a kernel,
 * checked from the inside. test= on the command line picks one:
 *   acpi       RSDP/RSDT/XSDT checksums, FADT fields (PM1a blocks, PM
 *              timer, reset register, SCI 9, FACS), DSDT \_S5, MADT
 *              (one LAPIC per CPU, I/O APIC, IRQ0 and SCI overrides)
 *   poweroff   SLP_TYP(\_S5) | SLP_EN to PM1a_CNT: vmdb must end, status 0
 *   reset      via=cf9|kbd|port92|acpi; the boot count lives in CMOS NVRAM
 *              byte 0x40: boot 1 starts the APs and resets, boot 2 checks
 *              it is a fresh machine (kernel data reloaded, every AP starts
 *              again) and exits with 0x21 (status 0x43)
 *   i8042      controller self-test, configuration byte, interface tests,
 *              no keyboard answering
 *   serial_rx  irq=ioapic|pic: RX and THRE interrupts on IRQ 4; prints
 *              "ready for input", reads one line by interrupts and echoes it
 *              ("got line: ...", its first 79 bytes); line=WORD is what the
 *              test sends, bytes=N how long the line is with its newline
 *   rtc        the clock in BCD and binary, century byte; prints
 *              "rtc: YYYY-MM-DD HH:MM:SS" for the test to compare
 *   pmtimer    the ACPI PM timer advances at 3.579545 MHz against the PIT */
#include "guests/rt/apic.h"
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"
#include "guests/rt/time.h"

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* --- ACPI ------------------------------------------------------------------ */

struct acpi_view {
	const uint8_t *rsdp, *xsdt, *rsdt, *fadt, *madt, *dsdt, *facs;
	uint16_t pm1a_evt, pm1a_cnt, pm_tmr, reset_port;
	uint8_t reset_value, slp_typ_s5;
};

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static uint8_t sum(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* As an OS finds it: the BIOS area 0xe0000-0xfffff, 16-byte aligned. */
static const uint8_t *find_rsdp(void)
{
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp((const void *)a, "RSD PTR ", 8) && sum((const void *)a, 20) == 0)
			return (const void *)a;
	return NULL;
}

static bool table_ok(const uint8_t *t, const char *sig)
{
	return t && !memcmp(t, sig, 4) && rd32(t + 4) >= 36 && sum(t, rd32(t + 4)) == 0;
}

/* The first element of Name(_S5, Package(){...}) in the DSDT's AML. */
static int dsdt_slp_typ_s5(const uint8_t *dsdt)
{
	uint32_t len = rd32(dsdt + 4);
	for (uint32_t i = 36; i + 9 <= len; i++) {
		const uint8_t *p = dsdt + i;
		if (p[0] != 0x08 || memcmp(p + 1, "_S5_", 4) || p[5] != 0x12)
			continue;
		const uint8_t *el = p + 8;          /* PkgLength (1 byte), NumElements */
		if (el[0] == 0x0a)
			return el[1];                   /* BytePrefix */
		if (el[0] == 0x00 || el[0] == 0x01)
			return el[0];                   /* ZeroOp, OneOp */
		return -1;
	}
	return -1;
}

static void check_madt(const uint8_t *madt)
{
	uint32_t len = rd32(madt + 4);
	unsigned lapics = 0, ioapics = 0;
	bool irq0 = false, sci = false;
	for (uint32_t off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1]) {
		const uint8_t *e = madt + off;
		if (e[0] == 0 && (rd32(e + 4) & 1))
			lapics++;
		else if (e[0] == 1 && rd32(e + 4) == 0xfec00000u)
			ioapics++;
		else if (e[0] == 2 && e[3] == 0 && rd32(e + 4) == 2)
			irq0 = true;
		else if (e[0] == 2 && e[3] == 9 && rd32(e + 4) == 9 && (rd16(e + 8) & 0xf) == 0xd)
			sci = true;
	}
	expect_eq(lapics, smp_ncpus(), "MADT: one enabled LAPIC per CPU");
	expect_eq(ioapics, 1, "MADT: the I/O APIC at 0xfec00000");
	expect(irq0, "MADT: IRQ0 -> GSI 2 override");
	expect(sci, "MADT: SCI IRQ 9, level-triggered, active high");
}

/* The extended (GAS) block must say what the 32-bit one says. */
static bool gas_io_matches(const uint8_t *gas, uint32_t port, unsigned bits)
{
	return gas[0] == 1 && gas[1] == bits && rd64(gas + 4) == port;
}

static void check_fadt(struct acpi_view *v)
{
	const uint8_t *f = v->fadt;
	expect(f[8] >= 3 && rd32(f + 4) >= 244, "FADT: revision 3+, 244 bytes");
	expect_eq(rd16(f + 46), 9, "FADT: SCI_INT");
	v->pm1a_evt = (uint16_t)rd32(f + 56);
	v->pm1a_cnt = (uint16_t)rd32(f + 64);
	v->pm_tmr = (uint16_t)rd32(f + 76);
	expect(v->pm1a_evt && v->pm1a_cnt && v->pm_tmr, "FADT: PM1a event/control, PM timer");
	expect(f[88] == 4 && f[89] == 2 && f[91] == 4, "FADT: block lengths");
	expect(gas_io_matches(f + 148, v->pm1a_evt, 32) && gas_io_matches(f + 172, v->pm1a_cnt, 16)
	       && gas_io_matches(f + 208, v->pm_tmr, 32), "FADT: X_ blocks agree");
	uint32_t flags = rd32(f + 112);
	expect(flags & (1u << 10), "FADT: RESET_REG_SUP");
	expect(flags & (1u << 8), "FADT: TMR_VAL_EXT (32-bit PM timer)");
	expect(f[116] == 1 && f[117] == 8 && rd64(f + 120) != 0, "FADT: RESET_REG in I/O space");
	v->reset_port = (uint16_t)rd64(f + 120);
	v->reset_value = f[128];
	expect(rd16(f + 109) & 2, "FADT: IAPC_BOOT_ARCH says 8042");
	expect_eq(f[108], 0x32, "FADT: RTC century index");
	v->dsdt = (const void *)(uintptr_t)rd32(f + 40);
	expect_eq(rd64(f + 140), rd32(f + 40), "FADT: X_DSDT == DSDT");
	v->facs = (const void *)(uintptr_t)rd32(f + 36);
	expect(v->facs && !memcmp(v->facs, "FACS", 4) && rd32(v->facs + 4) >= 64 &&
	       ((uintptr_t)v->facs & 63) == 0, "FACS: signature, length, 64-byte aligned");
	expect(table_ok(v->dsdt, "DSDT"), "DSDT: signature and checksum");
	int typ = table_ok(v->dsdt, "DSDT") ? dsdt_slp_typ_s5(v->dsdt) : -1;
	expect(typ >= 0 && typ < 8, "DSDT: Name(_S5, Package(){...})");
	v->slp_typ_s5 = (uint8_t)(typ < 0 ? 0 : typ);
}

/* Find and check every table; true when the FADT could be read. */
static bool acpi_read(struct acpi_view *v, bool verbose)
{
	memset(v, 0, sizeof(*v));
	v->rsdp = find_rsdp();
	if (!expect(v->rsdp != NULL, "RSDP found in 0xe0000-0xfffff"))
		return false;
	expect(v->rsdp[15] >= 2 && sum(v->rsdp, rd32(v->rsdp + 20)) == 0, "RSDP 2.0 checksum");
	if (rt_boot.info)
		expect_eq(rt_boot.info->rsdp, (uintptr_t)v->rsdp, "boot info RSDP");
	v->rsdt = (const void *)(uintptr_t)rd32(v->rsdp + 16);
	v->xsdt = (const void *)(uintptr_t)rd64(v->rsdp + 24);
	expect(table_ok(v->rsdt, "RSDT"), "RSDT checksum");
	if (!expect(table_ok(v->xsdt, "XSDT"), "XSDT checksum"))
		return false;
	uint32_t n = (rd32(v->xsdt + 4) - 36) / 8;
	expect_eq((rd32(v->rsdt + 4) - 36) / 4, n, "RSDT and XSDT list as many tables");
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = (const void *)(uintptr_t)rd64(v->xsdt + 36 + 8 * i);
		expect_eq(rd32(v->rsdt + 36 + 4 * i), (uintptr_t)t, "RSDT entry == XSDT entry");
		if (table_ok(t, "FACP"))
			v->fadt = t;
		else if (table_ok(t, "APIC"))
			v->madt = t;
	}
	if (expect(v->madt != NULL, "MADT present, checksum"))
		check_madt(v->madt);
	if (!expect(v->fadt != NULL, "FADT present, checksum"))
		return false;
	check_fadt(v);
	if (verbose)
		printf("acpi: pm1a_evt=0x%x pm1a_cnt=0x%x pm_tmr=0x%x reset=0x%x:0x%x slp_typ_s5=%u\n",
		       v->pm1a_evt, v->pm1a_cnt, v->pm_tmr, v->reset_port, v->reset_value,
		       v->slp_typ_s5);
	return true;
}

static int test_acpi(void)
{
	struct acpi_view v;
	acpi_read(&v, true);
	return report_summary();
}

static int test_poweroff(void)
{
	struct acpi_view v;
	if (!acpi_read(&v, false))
		return report_summary();
	expect(inw(v.pm1a_cnt) & 1, "PM1_CNT: SCI_EN (ACPI mode)");
	printf("powering off\n");
	/* as ACPICA does: SLP_TYP first, then SLP_TYP | SLP_EN */
	outw(v.pm1a_cnt, (uint16_t)(v.slp_typ_s5 << 10));
	outw(v.pm1a_cnt, (uint16_t)(v.slp_typ_s5 << 10 | 1u << 13));
	rt_fail_now("still running after the S5 write to PM1a_CNT");
}

/* --- reset ----------------------------------------------------------------- */

#define CMOS_BOOT_COUNT 0x40
#define BOOT_MAGIC      0xb0
#define SECOND_BOOT_EXIT 0x21

static volatile uint32_t data_marker = 0x1234abcd;   /* .data: reloaded on reset */

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

static void reset_via(const char *via, const struct acpi_view *v)
{
	if (!strcmp(via, "cf9")) {
		outb(0xcf9, 0x02);
		outb(0xcf9, 0x06);
	} else if (!strcmp(via, "kbd")) {
		for (int i = 0; i < 1000 && (inb(0x64) & 2); i++)
			;
		outb(0x64, 0xfe);
	} else if (!strcmp(via, "port92")) {
		outb(0x92, inb(0x92) | 1);
	} else if (!strcmp(via, "acpi")) {
		outb(v->reset_port, v->reset_value);
	} else {
		rt_fail_now("via=%s: expected cf9, kbd, port92 or acpi", via);
	}
}

static int test_reset(void)
{
	const char *via = cmdline_get("via");
	unsigned cpus = smp_ncpus();
	uint8_t boots = cmos_read(CMOS_BOOT_COUNT);

	if (boots == BOOT_MAGIC + 1) {
		printf("boot 2\n");
		cmos_write(CMOS_BOOT_COUNT, 0);
		expect_eq(data_marker, 0x1234abcd, "kernel data reloaded");
		expect_eq(smp_start_aps(cpus, 2000), cpus, "every AP starts again after the reset");
		if (report_summary())
			return 1;
		rt_exit(SECOND_BOOT_EXIT);
	}
	printf("boot 1\n");
	struct acpi_view v;
	if (!acpi_read(&v, false) || !via)
		return report_summary() | 1;
	expect_eq(smp_start_aps(cpus, 2000), cpus, "APs up before the reset");
	cmos_write(CMOS_BOOT_COUNT, BOOT_MAGIC + 1);
	data_marker = 0;
	printf("resetting via %s\n", via);
	reset_via(via, &v);
	for (int i = 0; i < 100000; i++)
		cpu_relax();
	cmos_write(CMOS_BOOT_COUNT, 0);
	rt_fail_now("still running after the reset through %s", via);
}

/* --- i8042 ----------------------------------------------------------------- */

#define KBC_DATA 0x60
#define KBC_CMD  0x64
#define KBC_OBF  0x01
#define KBC_POLLS 2000

/* The next byte from the controller, or -1 if none comes. */
static int kbc_read(void)
{
	for (int i = 0; i < KBC_POLLS; i++)
		if (inb(KBC_CMD) & KBC_OBF)
			return inb(KBC_DATA);
	return -1;
}

static int kbc_cmd(uint8_t cmd)
{
	outb(KBC_CMD, cmd);
	return kbc_read();
}

static int test_i8042(void)
{
	while (inb(KBC_CMD) & KBC_OBF)
		inb(KBC_DATA);
	expect_eq(kbc_cmd(0xaa), 0x55, "controller self-test");
	int ccb = kbc_cmd(0x20);
	expect(ccb >= 0, "configuration byte reads");
	outb(KBC_CMD, 0x60);
	outb(KBC_DATA, (uint8_t)(ccb & ~3));       /* no interrupts */
	expect_eq(kbc_cmd(0x20), ccb & ~3, "configuration byte written");
	expect_eq(kbc_cmd(0xab), 0x00, "keyboard interface test");
	int aux = kbc_cmd(0xa9);
	expect(aux > 0 && aux != 0xfa && aux != 0xff, "mouse interface test: no device");
	outb(KBC_CMD, 0xd3);
	outb(KBC_DATA, 0x5a);
	int loop = kbc_read();
	expect(loop < 0 || !(inb(KBC_CMD) & 0x20), "no AUX loopback");
	outb(KBC_DATA, 0xff);                       /* keyboard reset */
	expect_eq(kbc_read(), -1, "no keyboard answers");
	outb(KBC_DATA, 0xf2);                       /* identify */
	expect_eq(kbc_read(), -1, "no keyboard identifies");
	outb(KBC_CMD, 0xd2);
	outb(KBC_DATA, 0x42);
	expect_eq(kbc_read(), 0x42, "write keyboard output buffer");
	return report_summary();
}

/* --- serial RX/THRE interrupts -------------------------------------------- */

#define COM1 0x3f8
#define SERIAL_VEC 0x34
#define PIC_BASE   0x20
#define IOAPIC     ((volatile uint32_t *)0xfec00000ul)
#define APIC_LVT0  0x350
#define LINE_MAX   80

struct serial_rx {
	volatile unsigned irqs, thre_irqs;
	volatile unsigned len, total;
	volatile bool line_done, use_pic;
	char line[LINE_MAX];
};

static struct serial_rx rx;

static void ioapic_write(uint32_t reg, uint32_t v)
{
	IOAPIC[0] = reg;
	IOAPIC[4] = v;
}

static void serial_isr(struct rt_frame *f)
{
	(void)f;
	rx.irqs++;
	for (;;) {
		uint8_t iir = inb(COM1 + 2) & 0x0f;
		if (iir & 1)
			break;
		if (iir == 0x02) {                       /* THR empty: once is enough */
			rx.thre_irqs++;
			outb(COM1 + 1, 0x01);
			continue;
		}
		while (inb(COM1 + 5) & 1) {
			char c = (char)inb(COM1);
			if (!rx.line_done)
				rx.total++;
			if (c == '\n' || c == '\r')
				rx.line_done = rx.len > 0;
			else if (!rx.line_done && rx.len < LINE_MAX - 1)
				rx.line[rx.len++] = c;
		}
	}
	if (rx.use_pic)
		outb(0x20, 0x20);
	else
		apic_eoi();
}

static void pic_route_irq4(void)
{
	outb(0x20, 0x11); outb(0xa0, 0x11);        /* ICW1: edge, cascade, ICW4 */
	outb(0x21, PIC_BASE); outb(0xa1, PIC_BASE + 8);
	outb(0x21, 0x04); outb(0xa1, 0x02);
	outb(0x21, 0x01); outb(0xa1, 0x01);
	outb(0x21, 0xef); outb(0xa1, 0xff);        /* only IRQ 4 */
	apic_write(APIC_LVT0, 7u << 8);            /* LINT0: ExtINT, unmasked */
}

static bool line_done(void *arg)
{
	(void)arg;
	return rx.line_done;
}

static int test_serial_rx(void)
{
	const char *irq = cmdline_get("irq");
	const char *want = cmdline_get("line");
	rx.use_pic = irq && !strcmp(irq, "pic");
	time_calibrate();
	if (rx.use_pic) {
		idt_set_handler(PIC_BASE + 4, serial_isr);
		pic_route_irq4();
	} else {
		idt_set_handler(SERIAL_VEC, serial_isr);
		ioapic_write(0x10 + 2 * 4 + 1, apic_id() << 24);
		ioapic_write(0x10 + 2 * 4, SERIAL_VEC);  /* fixed, edge, active high */
	}
	outb(COM1 + 1, 0x03);                      /* RX data and THR empty */
	sti();
	printf("ready for input (%s)\n", rx.use_pic ? "pic" : "ioapic");
	bool got = wait_until(line_done, NULL, 20000);
	cli();
	outb(COM1 + 1, 0);
	rx.line[rx.len] = 0;
	printf("got line: %s irqs=%u thre=%u bytes=%u\n", rx.line, rx.irqs, rx.thre_irqs,
	       rx.total);
	expect(got, "a whole line arrived by interrupts");
	if (cmdline_get("bytes"))
		expect_eq(rx.total, cmdline_u64("bytes", 0), "every byte of the line, newline too");
	expect(rx.thre_irqs > 0, "THR-empty interrupt");
	if (want)
		expect_str(rx.line, want, "the line sent");
	return report_summary();
}

/* --- RTC ------------------------------------------------------------------- */

struct rtc_time { unsigned sec, min, hour, mday, mon, year, century; };

static unsigned from_bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xf); }

static void rtc_read(struct rtc_time *t, bool bcd)
{
	for (int i = 0; i < 1000000 && (cmos_read(0x0a) & 0x80); i++)
		;
	uint8_t r[7] = { cmos_read(0), cmos_read(2), cmos_read(4), cmos_read(7), cmos_read(8),
			 cmos_read(9), cmos_read(0x32) };
	unsigned v[7];
	for (int i = 0; i < 7; i++)
		v[i] = bcd ? from_bcd(r[i]) : r[i];
	*t = (struct rtc_time){ v[0], v[1], v[2], v[3], v[4], v[5], v[6] };
}

static int test_rtc(void)
{
	struct rtc_time t, b;
	uint8_t reg_b = cmos_read(0x0b);
	expect(!(reg_b & 0x04) && (reg_b & 0x02), "register B: BCD, 24-hour");
	expect(cmos_read(0x0d) & 0x80, "register D: valid RAM and time");
	rtc_read(&t, true);
	expect(t.sec < 60 && t.min < 60 && t.hour < 24 && t.mday >= 1 && t.mday <= 31 &&
	       t.mon >= 1 && t.mon <= 12 && t.year < 100, "clock fields in range");
	expect_eq(t.century, 20, "century byte");
	cmos_write(0x0b, reg_b | 0x04);
	rtc_read(&b, false);
	cmos_write(0x0b, reg_b);
	expect(b.year == t.year && b.mon == t.mon && b.century == t.century,
	       "binary mode reads the same date");
	printf("rtc: %02u%02u-%02u-%02u %02u:%02u:%02u\n", t.century, t.year, t.mon, t.mday,
	       t.hour, t.min, t.sec);
	return report_summary();
}

/* --- PM timer -------------------------------------------------------------- */

static int test_pmtimer(void)
{
	struct acpi_view v;
	if (!acpi_read(&v, false))
		return report_summary();
	/* as Linux checks it: a change within 10000 reads (a tick is 279 ns) */
	uint32_t a = inl(v.pm_tmr);
	int reads = 0;
	while (reads < 10000 && inl(v.pm_tmr) == a)
		reads++;
	expect(reads < 10000, "PM timer advances");
	/* a PIT one-shot of 50 ms (59659 PIT ticks) is 178977 PM timer ticks;
	 * the least of three, as a preempted vCPU only ever adds */
	uint32_t ticks = UINT32_MAX;
	for (int round = 0; round < 3; round++) {
		uint32_t t0 = inl(v.pm_tmr);
		pit_start(59659);
		for (int polls = 0; !pit_done() && polls < 100000000; polls++)
			;
		uint32_t n = inl(v.pm_tmr) - t0;
		if (n < ticks)
			ticks = n;
	}
	expect(pit_done(), "PIT channel 2 counts");
	printf("pm timer: %u ticks in 50 ms of PIT\n", ticks);
	expect(ticks > 178977 * 19 / 20 && ticks < 178977 * 11 / 10, "PM timer rate vs the PIT");
	return report_summary();
}

int main(void)
{
	const char *test = cmdline_get("test");
	static const struct { const char *name; int (*fn)(void); } tests[] = {
		{ "acpi", test_acpi }, { "poweroff", test_poweroff }, { "reset", test_reset },
		{ "i8042", test_i8042 }, { "serial_rx", test_serial_rx }, { "rtc", test_rtc },
		{ "pmtimer", test_pmtimer },
	};
	for (unsigned i = 0; test && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!strcmp(test, tests[i].name))
			return tests[i].fn();
	rt_fail_now("test=%s: unknown", test ? test : "(none)");
}
