/* guests/rt/fwcfg.h — QEMU's fw_cfg interface as vmdb offers it: select an
 * item with a 16-bit write to port 0x510, read its bytes from port 0x511
 * (little-endian values). */
#ifndef RT_FWCFG_H
#define RT_FWCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_SIGNATURE  0x00
#define FW_CFG_RAM_SIZE   0x03
#define FW_CFG_NB_CPUS    0x05

void fwcfg_read(uint16_t key, void *buf, size_t n);
uint64_t fwcfg_read_u64(uint16_t key, size_t bytes);   /* bytes <= 8 */
bool fwcfg_present(void);                                /* signature "QEMU" */

#endif
