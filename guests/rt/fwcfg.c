/* guests/rt/fwcfg.c */
#include "guests/rt/fwcfg.h"

#include "guests/rt/io.h"
#include "guests/rt/string.h"

void fwcfg_read(uint16_t key, void *buf, size_t n)
{
	uint8_t *p = buf;

	outw(FW_CFG_PORT_SEL, key);
	for (size_t i = 0; i < n; i++)
		p[i] = inb(FW_CFG_PORT_DATA);
}

uint64_t fwcfg_read_u64(uint16_t key, size_t bytes)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;

	fwcfg_read(key, b, bytes > 8 ? 8 : bytes);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

bool fwcfg_present(void)
{
	char sig[4];

	fwcfg_read(FW_CFG_SIGNATURE, sig, sizeof(sig));
	return memcmp(sig, "QEMU", 4) == 0;
}
