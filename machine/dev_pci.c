/* machine/dev_pci.c — PCI configuration mechanism #1 with no devices:
 * the address register at 0xcf8 keeps what is written (OS probes read it
 * back to detect the mechanism), the data window 0xcfc-0xcff reads all
 * ones ("no device") and ignores writes. Byte accesses to 0xcf8-0xcfb
 * (0xcf9 is the reset control register on real chipsets) are ignored. */
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>

#define PCI_CONFIG_PORT 0xcf8
#define PCI_CONFIG_LEN  8
#define PCI_DATA_OFF    4

struct pci_host {
	pthread_mutex_t lock;
	uint32_t address;
};

static int pci_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *p = opaque;

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
	pthread_mutex_init(&p->lock, NULL);
	int ret = vm_on_destroy(vm, pci_destroy, p, e);
	if (ret < 0) {
		pci_destroy(p);
		return ret;
	}
	return bus_register(&vm->pio, PCI_CONFIG_PORT, PCI_CONFIG_LEN, pci_io, p, "pci-config", e);
}

MACHINE_DEVICE(pci, pci_init);
