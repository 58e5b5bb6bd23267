/* machine/dev_pci.c — the chipset's ports at 0xcf8-0xcff: PCI
 * configuration mechanism #1 with no devices, and the reset control
 * register. The address register at 0xcf8 (32-bit accesses) keeps what is
 * written (OS probes read it back to detect the mechanism); the data
 * window 0xcfc-0xcff reads all ones ("no device") and ignores writes.
 * A byte access at 0xcf9 is the reset control register, which the FADT
 * also names as the ACPI reset register (value 6): bit 1 (SYS_RST)
 * chooses a hard reset, bit 2 (RST_CPU) going from 0 to 1 does it; vmdb
 * makes no difference between hard and soft, either is a full reset of
 * the machine (vm_request_reset). Other byte accesses are ignored. */
#include "machine/acpi.h"
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>

#define PCI_CONFIG_PORT 0xcf8
#define PCI_CONFIG_LEN  8
#define PCI_DATA_OFF    4
#define PCI_RESET_OFF   (ACPI_RESET_PORT - PCI_CONFIG_PORT)

#define RCR_SYS_RST  0x02
#define RCR_RST_CPU  0x04
#define RCR_WRITABLE 0x0e

struct pci_host {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t address;
	uint8_t reset_control;
};

static void pci_reset_control_io(struct pci_host *p, uint8_t *data, bool is_write)
{
	bool reset = false;
	pthread_mutex_lock(&p->lock);
	if (!is_write) {
		data[0] = p->reset_control & RCR_SYS_RST;
	} else {
		uint8_t v = data[0] & RCR_WRITABLE;
		reset = (v & RCR_RST_CPU) && !(p->reset_control & RCR_RST_CPU);
		p->reset_control = reset ? 0 : v;
	}
	pthread_mutex_unlock(&p->lock);
	if (reset)
		vm_request_reset(p->vm, "reset control register 0xcf9");
}

static int pci_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *p = opaque;

	if (offset == PCI_RESET_OFF && len == 1) {
		pci_reset_control_io(p, data, is_write);
		return 0;
	}
	if (offset >= PCI_DATA_OFF) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	if (offset != 0 || len != 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	if (is_write)
		memcpy(&p->address, data, 4);
	else
		memcpy(data, &p->address, 4);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pci_reset(void *opaque)
{
	struct pci_host *p = opaque;
	pthread_mutex_lock(&p->lock);
	p->address = 0;
	p->reset_control = 0;
	pthread_mutex_unlock(&p->lock);
}

/* Snapshots: the CONFIG_ADDRESS latch and the reset control register. */
struct pci_image {
	uint32_t address;
	uint8_t reset_control;
};

static void pci_save(void *opaque, void *buf)
{
	struct pci_host *p = opaque;
	struct pci_image img;
	memset(&img, 0, sizeof(img));     /* the padding too: snapshots are compared */
	pthread_mutex_lock(&p->lock);
	img.address = p->address;
	img.reset_control = p->reset_control;
	pthread_mutex_unlock(&p->lock);
	memcpy(buf, &img, sizeof(img));
}

static void pci_restore(void *opaque, const void *buf)
{
	struct pci_host *p = opaque;
	struct pci_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&p->lock);
	p->address = img.address;
	p->reset_control = img.reset_control;
	pthread_mutex_unlock(&p->lock);
}

static void pci_destroy(void *opaque)
{
	struct pci_host *p = opaque;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int pci_init(struct vm *vm, struct err *e)
{
	struct pci_host *p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, ENOMEM, "out of memory");
	p->vm = vm;
	pthread_mutex_init(&p->lock, NULL);
	int ret = vm_on_destroy(vm, pci_destroy, p, e);
	if (ret < 0) {
		pci_destroy(p);
		return ret;
	}
	if ((ret = vm_on_reset(vm, pci_reset, p, e)) < 0 ||
	    (ret = vm_on_snapshot(vm, "pci", sizeof(struct pci_image), pci_save, pci_restore, p,
				  e)) < 0)
		return ret;
	return bus_register(&vm->pio, PCI_CONFIG_PORT, PCI_CONFIG_LEN, pci_io, p, "pci-config", e);
}

MACHINE_DEVICE(pci, pci_init);
