/* machine/dev_cmos.c — the MC146818 CMOS/RTC at 0x70 (index; bit 7 is
 * the NMI mask and is ignored) and 0x71 (data). The clock registers read
 * the host's UTC time in the format register B selects (BCD or binary,
 * 12 or 24 hour), the century at 0x32 (the FADT's CENTURY index). The
 * update-in-progress flag (register A bit 7) is set during the last 244 us
 * of each host second, as on the chip: a guest that reads the clock within
 * 244 us of seeing it clear reads one consistent time. There are no
 * alarms, periodic interrupts or update interrupts (register C reads 0). The memory-size
 * bytes are filled the way PC BIOSes (and SeaBIOS under QEMU) do; the
 * rest of the 128 bytes is RAM the guest may use. */
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMOS_PORT     0x70
#define CMOS_PORT_LEN 2
#define CMOS_SIZE     128
#define CMOS_INDEX_MASK 0x7f

#define RTC_SECONDS      0x00
#define RTC_MINUTES      0x02
#define RTC_HOURS        0x04
#define RTC_DAY_OF_WEEK  0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH        0x08
#define RTC_YEAR         0x09
#define RTC_REG_A        0x0a
#define RTC_REG_B        0x0b
#define RTC_REG_C        0x0c
#define RTC_REG_D        0x0d
#define RTC_CENTURY      0x32

#define RTC_A_DEFAULT    0x26   /* 32.768 kHz time base, 1024 Hz rate, UIP clear */
#define RTC_A_UIP        0x80
#define RTC_B_24H        0x02
#define RTC_B_BINARY     0x04
#define RTC_D_VRT        0x80   /* valid RAM and time */
#define RTC_HOUR_PM      0x80
#define RTC_UIP_WINDOW_NS 244000L   /* the update cycle follows this window */

#define CMOS_BASE_MEM_LO   0x15
#define CMOS_EXT_MEM_LO    0x17
#define CMOS_EXT_MEM2_LO   0x30
#define CMOS_MEM_16M_LO    0x34
#define CMOS_MEM_4G        0x5b   /* 3 bytes, 64 KiB units */
#define CMOS_NR_CPUS_M1    0x5f

#define KiB 1024ull
#define MiB (1024 * KiB)

struct cmos {
	struct vm *vm;             /* its wall clock (vm_realtime) */
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[CMOS_SIZE];
};

static uint8_t cmos_encode(const struct cmos *c, unsigned v)
{
	if (c->ram[RTC_REG_B] & RTC_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t cmos_hours(const struct cmos *c, unsigned h)
{
	if (c->ram[RTC_REG_B] & RTC_B_24H)
		return cmos_encode(c, h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return cmos_encode(c, h12) | (h >= 12 ? RTC_HOUR_PM : 0);
}

/* A clock register, or -1 when reg is plain CMOS RAM. */
static int cmos_clock(const struct cmos *c, uint8_t reg)
{
	struct timespec ts;
	struct tm tm;
	/* the clock register A's UIP window is computed from */
	vm_realtime(c->vm, &ts);
	if (!gmtime_r(&ts.tv_sec, &tm))
		return -1;
	switch (reg) {
	case RTC_SECONDS:      return cmos_encode(c, (unsigned)tm.tm_sec % 60);
	case RTC_MINUTES:      return cmos_encode(c, (unsigned)tm.tm_min);
	case RTC_HOURS:        return cmos_hours(c, (unsigned)tm.tm_hour);
	case RTC_DAY_OF_WEEK:  return cmos_encode(c, (unsigned)tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH: return cmos_encode(c, (unsigned)tm.tm_mday);
	case RTC_MONTH:        return cmos_encode(c, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR:         return cmos_encode(c, (unsigned)(tm.tm_year + 1900) % 100);
	case RTC_CENTURY:      return cmos_encode(c, (unsigned)(tm.tm_year + 1900) / 100);
	default:               return -1;
	}
}

/* Register A: UIP while the next second's update is under 244 us away. */
static uint8_t cmos_reg_a(const struct cmos *c)
{
	struct timespec ts;
	uint8_t a = c->ram[RTC_REG_A] & ~RTC_A_UIP;
	vm_realtime(c->vm, &ts);
	if (ts.tv_nsec >= 1000000000L - RTC_UIP_WINDOW_NS)
		a |= RTC_A_UIP;
	return a;
}

static uint8_t cmos_read_locked(struct cmos *c)
{
	int v = cmos_clock(c, c->index);
	if (v >= 0)
		return (uint8_t)v;
	if (c->index == RTC_REG_A)
		return cmos_reg_a(c);
	return c->ram[c->index];
}

static void cmos_write_locked(struct cmos *c, uint8_t v)
{
	switch (c->index) {
	case RTC_REG_C:
	case RTC_REG_D:
		break;               /* read-only */
	default:
		/* the clock registers cannot be set: they always show host time */
		c->ram[c->index] = v;
		break;
	}
}

static int cmos_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct cmos *c = opaque;

	pthread_mutex_lock(&c->lock);
	if (offset == 0) {
		if (is_write)
			c->index = data[0] & CMOS_INDEX_MASK;
		else
			data[0] = 0xff;      /* the index register is write-only */
	} else if (is_write) {
		cmos_write_locked(c, data[0]);
	} else {
		data[0] = cmos_read_locked(c);
	}
	for (uint32_t i = 1; !is_write && i < len; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void cmos_put16(struct cmos *c, uint8_t reg, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	c->ram[reg] = (uint8_t)v;
	c->ram[reg + 1] = (uint8_t)(v >> 8);
}

static void cmos_fill_memory(struct cmos *c, const struct vm *vm)
{
	uint64_t low = vm->low_ram_size;
	uint64_t high = vm->ram_size - low;
	cmos_put16(c, CMOS_BASE_MEM_LO, 640);
	cmos_put16(c, CMOS_EXT_MEM_LO, low > MiB ? (low - MiB) / KiB : 0);
	cmos_put16(c, CMOS_EXT_MEM2_LO, low > MiB ? (low - MiB) / KiB : 0);
	cmos_put16(c, CMOS_MEM_16M_LO, low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0);
	uint64_t high64k = high / (64 * KiB);
	c->ram[CMOS_MEM_4G] = (uint8_t)high64k;
	c->ram[CMOS_MEM_4G + 1] = (uint8_t)(high64k >> 8);
	c->ram[CMOS_MEM_4G + 2] = (uint8_t)(high64k >> 16);
	c->ram[CMOS_NR_CPUS_M1] = (uint8_t)(vm->nr_vcpus ? vm->nr_vcpus - 1 : 0);
}

static void cmos_destroy(void *opaque)
{
	struct cmos *c = opaque;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Snapshots: the index and the RAM (the clock registers read the host's
 * clock whenever they are read, so they hold nothing). */
struct cmos_image {
	uint8_t index;
	uint8_t ram[CMOS_SIZE];
};

static void cmos_save(void *opaque, void *buf)
{
	struct cmos *c = opaque;
	struct cmos_image img;
	pthread_mutex_lock(&c->lock);
	img.index = c->index;
	memcpy(img.ram, c->ram, sizeof(img.ram));
	pthread_mutex_unlock(&c->lock);
	memcpy(buf, &img, sizeof(img));
}

static void cmos_restore(void *opaque, const void *buf)
{
	struct cmos *c = opaque;
	struct cmos_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&c->lock);
	c->index = img.index;
	memcpy(c->ram, img.ram, sizeof(c->ram));
	pthread_mutex_unlock(&c->lock);
}

static int cmos_init(struct vm *vm, struct err *e)
{
	struct cmos *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	c->vm = vm;
	pthread_mutex_init(&c->lock, NULL);
	c->ram[RTC_REG_A] = RTC_A_DEFAULT;
	c->ram[RTC_REG_B] = RTC_B_24H;
	c->ram[RTC_REG_D] = RTC_D_VRT;
	cmos_fill_memory(c, vm);
	int ret = vm_on_destroy(vm, cmos_destroy, c, e);
	if (ret < 0) {
		cmos_destroy(c);
		return ret;
	}
	ret = vm_on_snapshot(vm, "cmos", sizeof(struct cmos_image), cmos_save, cmos_restore, c, e);
	if (ret < 0)
		return ret;
	return bus_register(&vm->pio, CMOS_PORT, CMOS_PORT_LEN, cmos_io, c, "cmos", e);
}

MACHINE_DEVICE(cmos, cmos_init);
