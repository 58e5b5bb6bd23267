/* debug/mem.c — guest memory as the debugger sees it: guest-virtual
 * addresses go through the chosen vCPU's own page tables (x86/paging.h),
 * page by page, so a range may cross pages that are far apart physically;
 * every physical access goes through vm_gpa_to_host(), which bounds-checks.
 * Our int3 bytes are invisible: reads show the saved original, writes over
 * a breakpoint update the saved original and keep the int3 in place. */
#include "debug/debug_int.h"
#include "debug/reverse.h"

#include <string.h>

#include "x86/desc.h"
#include "x86/paging.h"

static int translate_with(struct debug *d, const struct x86_sregs *sregs, uint64_t gva,
			  uint64_t *gpa)
{
	int r = x86_translate(sregs, vm_read_phys, d->vm, gva, gpa);
	return r < 0 ? -EFAULT : 0;
}

/* The system registers a page walk reads; between two steps the step
 * engine's copy (no read of the vCPU's, which its step made the cache
 * forget). */
static int paging_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs)
{
	if (debug_step_paging_sregs(d, vcpu, sregs))
		return 0;
	return debug_vcpu_sregs(d, vcpu, sregs);
}

int debug_translate(struct debug *d, unsigned vcpu, uint64_t gva, uint64_t *gpa)
{
	struct x86_sregs sregs;
	if (paging_sregs(d, vcpu, &sregs) < 0)
		return -EFAULT;
	return translate_with(d, &sregs, gva, gpa);
}

/* Show original bytes under our int3s in [gpa, gpa+len) copied to buf. */
static void unpatch_locked(struct debug *d, uint64_t gpa, uint8_t *buf, size_t len)
{
	for (unsigned i = 0; i < d->nr_sw; i++) {
		const struct debug_sw_bp *bp = &d->sw[i];
		/* an int3 the guest has overwritten shows what it wrote */
		if (bp->gpa >= gpa && bp->gpa - gpa < len && !bp->lifted &&
		    buf[bp->gpa - gpa] == 0xcc)
			buf[bp->gpa - gpa] = bp->orig;
	}
}

/* Write [gpa, gpa+len) from buf, but keep our int3s and record the new
 * original bytes under them. */
static void write_patched_locked(struct debug *d, uint64_t gpa, uint8_t *host,
				 const uint8_t *buf, size_t len)
{
	vm_ram_dirty(d->vm, host, len);
	memcpy(host, buf, len);
	for (unsigned i = 0; i < d->nr_sw; i++) {
		struct debug_sw_bp *bp = &d->sw[i];
		if (bp->gpa >= gpa && bp->gpa - gpa < len && !bp->lifted) {
			bp->orig = buf[bp->gpa - gpa];
			host[bp->gpa - gpa] = 0xcc;
		}
	}
}

/* One physically contiguous piece: [gpa, gpa+len). */
static int access_phys(struct debug *d, uint64_t gpa, uint8_t *buf, size_t len, bool write)
{
	uint8_t *host = vm_gpa_to_host(d->vm, gpa, len);
	if (!host)
		return -EFAULT;
	pthread_mutex_lock(&d->lock);
	if (write) {
		write_patched_locked(d, gpa, host, buf, len);
		d->mem_gen++;     /* may be page tables: the step engine re-walks */
	} else {
		memcpy(buf, host, len);
		unpatch_locked(d, gpa, buf, len);
	}
	pthread_mutex_unlock(&d->lock);
	if (write)
		debug_reverse_mem_written(d, gpa, buf, len);
	return 0;
}

static int access_mem(struct debug *d, unsigned vcpu, uint64_t addr, uint8_t *buf, size_t len,
		      bool phys, bool write)
{
	struct x86_sregs sregs;

	if (len == 0)
		return 0;
	if (addr + len - 1 < addr)
		return -EFAULT;   /* wraps around the address space */
	if (!phys && paging_sregs(d, vcpu, &sregs) < 0)
		return -EFAULT;
	while (len > 0) {
		/* pages are at least 4 KiB: no piece crosses a 4 KiB boundary */
		size_t chunk = X86_PAGE_SIZE - (addr & (X86_PAGE_SIZE - 1));
		if (chunk > len)
			chunk = len;
		uint64_t gpa = addr;
		if (!phys && translate_with(d, &sregs, addr, &gpa) < 0)
			return -EFAULT;
		int r = access_phys(d, gpa, buf, chunk, write);
		if (r < 0)
			return r;
		addr += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

int debug_mem_read(struct debug *d, unsigned vcpu, uint64_t addr, void *buf, size_t len,
		   bool phys)
{
	return access_mem(d, vcpu, addr, buf, len, phys, false);
}

int debug_mem_write(struct debug *d, unsigned vcpu, uint64_t addr, const void *buf,
		    size_t len, bool phys)
{
	return access_mem(d, vcpu, addr, (uint8_t *)buf, len, phys, true);
}
