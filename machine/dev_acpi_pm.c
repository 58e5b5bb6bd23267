/* machine/dev_acpi_pm.c — the ACPI fixed hardware the FADT describes
 * (port numbers in machine/acpi.h): the PM1a event block (PM1_STS,
 * PM1_EN), the PM1a control block and the PM timer.
 *
 * Writing PM1_CNT with SLP_EN and the SLP_TYP of \_S5 is the guest's
 * soft-off: the machine stops with status 0. Other sleep types are not
 * offered by the DSDT and are ignored. No event ever raises the SCI: the
 * status bits are kept only so that write-1-to-clear behaves.
 *
 * The PM timer counts at 3.579545 MHz over 32 bits, from the engine's
 * guest time (vm_guest_ns), so it agrees with the PIT and the TSC the
 * guest calibrates against on either engine. */
#include "machine/acpi.h"
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>

#define PM1_STS_OFF 0
#define PM1_EN_OFF  2
#define PM1_STS_WRITE_CLEAR 0x8d31u   /* WAK, RTC, SLPBTN, PWRBTN, GBL, BM, TMR */
#define PM1_EN_MASK         0x0521u   /* RTC_EN, PWRBTN_EN, GBL_EN, TMR_EN */
#define PM1_CNT_WRITABLE    0x1c06u   /* SLP_TYP, GBL_RLS, BM_RLD */
#define NS_PER_S            1000000000ull

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
};

static void put_le(uint8_t *data, uint32_t len, uint64_t v)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = i < 8 ? (uint8_t)(v >> (8 * i)) : 0;
}

/* One byte of the event block: PM1_STS (write 1 to clear), then PM1_EN. */
static void pm_evt_byte(struct acpi_pm *pm, unsigned off, uint8_t *byte, bool is_write)
{
	uint16_t *reg = off < PM1_EN_OFF ? &pm->sts : &pm->en;
	unsigned shift = (off & 1) * 8;
	if (!is_write) {
		*byte = (uint8_t)(*reg >> shift);
		return;
	}
	uint16_t v = (uint16_t)(*byte << shift);
	if (off < PM1_EN_OFF) {
		*reg &= (uint16_t)~(v & PM1_STS_WRITE_CLEAR);
	} else {
		uint16_t mask = (uint16_t)(PM1_EN_MASK & (0xffu << shift));
		*reg = (uint16_t)((*reg & ~mask) | (v & mask));
	}
}

static int pm_evt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++)
		pm_evt_byte(pm, (unsigned)(offset + i), &data[i], is_write);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

/* PM1_CNT byte by byte; the write of the high byte carries SLP_EN. */
static int pm_cnt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	bool power_off = false;

	pthread_mutex_lock(&pm->lock);
	uint16_t cnt = pm->cnt | ACPI_PM1_CNT_SCI_EN;
	if (!is_write) {
		put_le(data, len, (uint64_t)cnt >> (8 * offset));
	} else {
		uint16_t v = cnt, mask = 0;
		for (uint32_t i = 0; i < len; i++) {
			unsigned shift = (unsigned)(offset + i) * 8;
			v = (uint16_t)((v & ~(0xffu << shift)) | (unsigned)data[i] << shift);
			mask |= (uint16_t)(0xffu << shift);
		}
		uint16_t writable = PM1_CNT_WRITABLE & mask;
		pm->cnt = (uint16_t)((pm->cnt & ~writable) | (v & writable));
		unsigned slp_typ = (v & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
		power_off = (v & mask & ACPI_PM1_CNT_SLP_EN) && slp_typ == ACPI_SLP_TYP_S5;
	}
	pthread_mutex_unlock(&pm->lock);
	if (power_off)
		vm_request_exit(pm->vm, 0, "the guest powered off (ACPI S5)");
	return 0;
}

static int pm_tmr_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	if (is_write)
		return 0;      /* read-only */
	uint64_t ns = vm_guest_ns(pm->vm);
	uint32_t ticks = (uint32_t)((unsigned __int128)ns * ACPI_PM_TMR_HZ / NS_PER_S);
	put_le(data, len, (uint64_t)ticks >> (8 * offset));
	return 0;
}

static void pm_reset(void *opaque)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	pm->sts = pm->en = pm->cnt = 0;
	pthread_mutex_unlock(&pm->lock);
}

/* Snapshots: PM1 status, enable and control (the timer is guest time). */
struct pm_image {
	uint16_t sts, en, cnt;
};

static void pm_save(void *opaque, void *buf)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	struct pm_image img = { .sts = pm->sts, .en = pm->en, .cnt = pm->cnt };
	pthread_mutex_unlock(&pm->lock);
	memcpy(buf, &img, sizeof(img));
}

static void pm_restore(void *opaque, const void *buf)
{
	struct acpi_pm *pm = opaque;
	struct pm_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&pm->lock);
	pm->sts = img.sts;
	pm->en = img.en;
	pm->cnt = img.cnt;
	pthread_mutex_unlock(&pm->lock);
}

static void pm_destroy(void *opaque)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static int pm_init(struct vm *vm, struct err *e)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return err_set(e, ENOMEM, "out of memory");
	pm->vm = vm;
	pthread_mutex_init(&pm->lock, NULL);
	int r = vm_on_destroy(vm, pm_destroy, pm, e);
	if (r < 0) {
		pm_destroy(pm);
		return r;
	}
	if ((r = vm_on_reset(vm, pm_reset, pm, e)) < 0 ||
	    (r = vm_on_snapshot(vm, "acpi-pm", sizeof(struct pm_image), pm_save, pm_restore,
				pm, e)) < 0 ||
	    (r = bus_register(&vm->pio, ACPI_PM1A_EVT_PORT, ACPI_PM1_EVT_LEN, pm_evt_io, pm,
			      "acpi-pm1-evt", e)) < 0 ||
	    (r = bus_register(&vm->pio, ACPI_PM1A_CNT_PORT, ACPI_PM1_CNT_LEN, pm_cnt_io, pm,
			      "acpi-pm1-cnt", e)) < 0)
		return r;
	return bus_register(&vm->pio, ACPI_PM_TMR_PORT, ACPI_PM_TMR_LEN, pm_tmr_io, pm,
			    "acpi-pm-tmr", e);
}

MACHINE_DEVICE(acpi_pm, pm_init);
