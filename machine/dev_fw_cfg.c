/* machine/dev_fw_cfg.c — QEMU's fw_cfg, traditional I/O interface only:
 * a 16-bit selector at port 0x510, a byte-wide data port at 0x511 that
 * reads the selected item from offset 0 upwards and gives 0 past its end.
 * The DMA interface (port 0x514) is not offered: ID bit 1 is clear.
 *
 * Items: signature "QEMU", ID, RAM size, CPU counts, the command line
 * (size/data), initrd address/size (what the loader placed), an empty
 * file directory and the legacy E820 table (0x8003). An item's bytes
 * are built when it is selected, so it shows the machine as it is then
 * (the loader runs after this device's init). Unknown items read as
 * zeros. The command-line address (0x13) is not offered: vmdb's loaders
 * place the command line themselves and report it in their boot info. */
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>

#include "machine/acpi.h"

#define FW_CFG_PORT       0x510
#define FW_CFG_PORT_LEN   2       /* selector at +0, data at +1 */
#define FW_CFG_DATA_OFF   1

#define FW_CFG_SIGNATURE    0x00
#define FW_CFG_ID           0x01
#define FW_CFG_RAM_SIZE     0x03
#define FW_CFG_NB_CPUS      0x05
#define FW_CFG_MAX_CPUS     0x0f
#define FW_CFG_INITRD_ADDR  0x0a
#define FW_CFG_INITRD_SIZE  0x0b
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_FILE_DIR     0x19
#define FW_CFG_E820_TABLE   0x8003

#define FW_CFG_ID_TRADITIONAL 1u   /* bit 1 (DMA) clear */
#define FW_CFG_E820_ENTRY_LEN 20   /* u64 address, u64 length, u32 type */

struct fw_cfg {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t selector;
	uint32_t offset;
	uint8_t *item;      /* the selected item's bytes (malloc'ed), or NULL */
	uint32_t item_len;
};

/* --- items ------------------------------------------------------------ */

static void fw_cfg_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A fixed-width little-endian integer item. */
static uint32_t fw_cfg_int_item(uint8_t *buf, uint64_t v, unsigned bytes)
{
	fw_cfg_le(buf, v, bytes);
	return bytes;
}

static uint32_t fw_cfg_e820_item(const struct vm *vm, uint8_t *buf)
{
	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	unsigned n = acpi_memory_map(vm, map);
	fw_cfg_le(buf, n, 4);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = buf + 4 + i * FW_CFG_E820_ENTRY_LEN;
		fw_cfg_le(p, map[i].base, 8);
		fw_cfg_le(p + 8, map[i].len, 8);
		fw_cfg_le(p + 16, map[i].type, 4);
	}
	return 4 + n * FW_CFG_E820_ENTRY_LEN;
}

/* Build item `key` into a fresh buffer; *len = 0 for an unknown key. */
static uint8_t *fw_cfg_build(const struct vm *vm, uint16_t key, uint32_t *len)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t cmd_len = strlen(cmdline) + 1;            /* QEMU counts the NUL */
	size_t cap = 4 + ACPI_MAX_MEMORY_MAP * FW_CFG_E820_ENTRY_LEN;
	if (cmd_len > cap)
		cap = cmd_len;
	uint8_t *buf = calloc(1, cap);
	if (!buf) {
		*len = 0;
		return NULL;
	}

	switch (key) {
	case FW_CFG_SIGNATURE:    memcpy(buf, "QEMU", 4); *len = 4; break;
	case FW_CFG_ID:           *len = fw_cfg_int_item(buf, FW_CFG_ID_TRADITIONAL, 4); break;
	case FW_CFG_RAM_SIZE:     *len = fw_cfg_int_item(buf, vm->ram_size, 8); break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS:     *len = fw_cfg_int_item(buf, vm->nr_vcpus, 2); break;
	case FW_CFG_INITRD_ADDR:  *len = fw_cfg_int_item(buf, vm->initrd_gpa, 4); break;
	case FW_CFG_INITRD_SIZE:  *len = fw_cfg_int_item(buf, vm->initrd_size, 4); break;
	case FW_CFG_CMDLINE_SIZE: *len = fw_cfg_int_item(buf, cmd_len, 4); break;
	case FW_CFG_CMDLINE_DATA: memcpy(buf, cmdline, cmd_len); *len = (uint32_t)cmd_len; break;
	case FW_CFG_FILE_DIR:     *len = 4; break;        /* count 0 (big-endian) */
	case FW_CFG_E820_TABLE:   *len = fw_cfg_e820_item(vm, buf); break;
	default:                  *len = 0; break;
	}
	return buf;
}

/* --- port handler ------------------------------------------------------ */

static void fw_cfg_select_locked(struct fw_cfg *f, uint16_t key)
{
	free(f->item);
	f->selector = key;
	f->offset = 0;
	f->item = fw_cfg_build(f->vm, key, &f->item_len);
}

static uint8_t fw_cfg_read_byte_locked(struct fw_cfg *f)
{
	if (!f->item || f->offset >= f->item_len)
		return 0;
	return f->item[f->offset++];
}

static int fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	if (offset == 0 && is_write) {
		uint16_t key = data[0] | (len > 1 ? (uint16_t)(data[1] << 8) : 0);
		fw_cfg_select_locked(f, key);
	} else if (offset == FW_CFG_DATA_OFF && !is_write) {
		/* the data port is byte-wide: a wider read sees one byte */
		memset(data, 0, len);
		data[0] = fw_cfg_read_byte_locked(f);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* --- snapshots ---------------------------------------------------------- */

/* The selected item and the read cursor; the item's bytes are built again
 * from the machine's configuration, which does not change. */
struct fw_cfg_image {
	uint16_t selector;
	uint32_t offset;
};

static void fw_cfg_save(void *opaque, void *buf)
{
	struct fw_cfg *f = opaque;
	struct fw_cfg_image img;
	memset(&img, 0, sizeof(img));     /* the padding too: snapshots are compared */
	pthread_mutex_lock(&f->lock);
	img.selector = f->selector;
	img.offset = f->offset;
	pthread_mutex_unlock(&f->lock);
	memcpy(buf, &img, sizeof(img));
}

static void fw_cfg_restore(void *opaque, const void *buf)
{
	struct fw_cfg *f = opaque;
	struct fw_cfg_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&f->lock);
	fw_cfg_select_locked(f, img.selector);
	f->offset = img.offset;
	pthread_mutex_unlock(&f->lock);
}

/* --- life cycle -------------------------------------------------------- */

static void fw_cfg_destroy(void *opaque)
{
	struct fw_cfg *f = opaque;
	free(f->item);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* A system reset selects the signature again, as QEMU's fw_cfg does. */
static void fw_cfg_reset(void *opaque)
{
	struct fw_cfg *f = opaque;
	pthread_mutex_lock(&f->lock);
	fw_cfg_select_locked(f, FW_CFG_SIGNATURE);
	pthread_mutex_unlock(&f->lock);
}

static int fw_cfg_init(struct vm *vm, struct err *e)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, ENOMEM, "out of memory");
	f->vm = vm;
	pthread_mutex_init(&f->lock, NULL);
	fw_cfg_select_locked(f, FW_CFG_SIGNATURE);   /* the reset state, as on QEMU */
	int ret = vm_on_destroy(vm, fw_cfg_destroy, f, e);
	if (ret < 0) {
		fw_cfg_destroy(f);
		return ret;
	}
	ret = vm_on_snapshot(vm, "fw_cfg", sizeof(struct fw_cfg_image), fw_cfg_save,
			     fw_cfg_restore, f, e);
	if (ret < 0)
		return ret;
	if ((ret = vm_on_reset(vm, fw_cfg_reset, f, e)) < 0)
		return ret;
	return bus_register(&vm->pio, FW_CFG_PORT, FW_CFG_PORT_LEN, fw_cfg_io, f, "fw_cfg", e);
}

MACHINE_DEVICE(fw_cfg, fw_cfg_init);
