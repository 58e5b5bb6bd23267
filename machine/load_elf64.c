/* machine/load_elf64.c — loads an x86-64 ELF executable and enters it in
 * long mode as machine/bootinfo.h describes.
 *
 * Every header field is checked against the file size before it is used
 * (a lying header is an error that names the field, never an out-of-bounds
 * read). PT_LOAD segments go to p_paddr (p_vaddr when p_paddr is 0), must
 * lie in RAM at or above VMDB_KERNEL_MIN_ADDR, and their bss is zeroed.
 * The boot area (GDT, boot info + memory map + command line, page tables)
 * is rebuilt from scratch between VMDB_BOOT_GDT and VMDB_BOOT_AREA_END. */
#include "machine/loader.h"

#include <elf.h>
#include <string.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/vm.h"

#define GDT_CODE64 0x08
#define GDT_DATA   0x10
#define GDT_CODE32 0x18
#define GDT_TSS    0x20      /* 16-byte system descriptor: 0x20 and 0x28 */
#define GDT_ENTRIES 6

/* descriptor = flags/access in the high dword plus limit 0xfffff, base 0 */
#define DESC_CODE64 0x00af9a000000ffffull
#define DESC_DATA   0x00cf92000000ffffull
#define DESC_CODE32 0x00cf9a000000ffffull
#define SEG_TYPE_CODE  0xb   /* execute/read, accessed */
#define SEG_TYPE_DATA  0x3   /* read/write, accessed */
#define SEG_TYPE_TSS64_BUSY 0xb
#define SEG_TYPE_LDT   0x2
#define TSS_LIMIT      0x67

#define PTE_P  0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull
#define PAGE_SIZE   0x1000ull
#define HUGE_2M     0x200000ull
#define IDENTITY_GIB 4
#define FOUR_GIB    0x100000000ull

/* --- header validation ------------------------------------------------- */

static int elf64_check_ehdr(const Elf64_Ehdr *eh, size_t size, struct err *e)
{
	if (size < sizeof(*eh))
		return err_set(e, ENOEXEC, "ELF header truncated (file is %zu bytes, header %zu)",
			       size, sizeof(*eh));
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return err_set(e, ENOEXEC, "unknown ELF version %u", eh->e_version);
	if (eh->e_type != ET_EXEC)
		return err_set(e, ENOEXEC, "ELF type %u is not an executable (ET_EXEC)",
			       eh->e_type);
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return err_set(e, ENOEXEC, "ELF file has no program headers");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return err_set(e, ENOEXEC, "ELF program header size %u (expected %zu)",
			       eh->e_phentsize, sizeof(Elf64_Phdr));
	uint64_t table = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > size || table > size - eh->e_phoff)
		return err_set(e, ENOEXEC, "ELF program headers (offset 0x%llx, %u entries) lie "
			       "past the end of the %zu-byte file",
			       (unsigned long long)eh->e_phoff, eh->e_phnum, size);
	return 0;
}

static uint64_t elf64_load_addr(const Elf64_Phdr *ph)
{
	return ph->p_paddr ? ph->p_paddr : ph->p_vaddr;
}

static int elf64_check_phdr(struct vm *vm, const Elf64_Phdr *ph, unsigned i, size_t size,
			    struct err *e)
{
	uint64_t addr = elf64_load_addr(ph);
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return err_set(e, ENOEXEC, "segment %u (file offset 0x%llx, 0x%llx bytes) lies "
			       "past the end of the %zu-byte file", i,
			       (unsigned long long)ph->p_offset,
			       (unsigned long long)ph->p_filesz, size);
	if (ph->p_filesz > ph->p_memsz)
		return err_set(e, ENOEXEC, "segment %u has more file bytes (0x%llx) than memory "
			       "bytes (0x%llx)", i, (unsigned long long)ph->p_filesz,
			       (unsigned long long)ph->p_memsz);
	if (addr < VMDB_KERNEL_MIN_ADDR)
		return err_set(e, ENOEXEC, "segment %u at 0x%llx lies below 0x%x, where the "
			       "machine keeps its boot structures", i,
			       (unsigned long long)addr, VMDB_KERNEL_MIN_ADDR);
	if (addr + ph->p_memsz < addr || !vm_gpa_to_host(vm, addr, ph->p_memsz ? ph->p_memsz : 1))
		return err_set(e, ENOSPC, "kernel does not fit in --mem %lluM: segment at 0x%llx "
			       "needs 0x%llx bytes", (unsigned long long)(vm->ram_size >> 20),
			       (unsigned long long)addr, (unsigned long long)ph->p_memsz);
	return 0;
}

static Elf64_Phdr elf64_phdr(const uint8_t *image, const Elf64_Ehdr *eh, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, image + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

/* Check every PT_LOAD before anything is copied, then the entry point: it
 * must be reachable through the identity map, i.e. inside a segment's
 * load (physical) address range. */
static int elf64_check_segments(struct vm *vm, const uint8_t *image, size_t size,
				const Elf64_Ehdr *eh, struct err *e)
{
	bool entry_ok = false, any = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = elf64_phdr(image, eh, i);
		if (ph.p_type != PT_LOAD)
			continue;
		int ret = elf64_check_phdr(vm, &ph, i, size, e);
		if (ret < 0)
			return ret;
		uint64_t addr = elf64_load_addr(&ph);
		any |= ph.p_memsz != 0;
		if (eh->e_entry >= addr && eh->e_entry - addr < ph.p_memsz)
			entry_ok = true;
	}
	if (!any)
		return err_set(e, ENOEXEC, "ELF file has no loadable segment");
	if (!entry_ok)
		return err_set(e, ENOEXEC, "entry point 0x%llx is not inside any loaded segment "
			       "(vmdb enters the kernel at its physical address)",
			       (unsigned long long)eh->e_entry);
	if (eh->e_entry >= FOUR_GIB)
		return err_set(e, ENOEXEC, "entry point 0x%llx is above 4 GiB, outside the boot "
			       "identity map", (unsigned long long)eh->e_entry);
	return 0;
}

/* Copy every (already checked) PT_LOAD; returns the highest address + 1. */
static uint64_t elf64_load_segments(struct vm *vm, const uint8_t *image, const Elf64_Ehdr *eh)
{
	uint64_t end = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = elf64_phdr(image, eh, i);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		uint64_t addr = elf64_load_addr(&ph);
		uint8_t *host = vm_gpa_to_host(vm, addr, ph.p_memsz);
		memcpy(host, image + ph.p_offset, ph.p_filesz);
		memset(host + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (addr + ph.p_memsz > end)
			end = addr + ph.p_memsz;
	}
	return end;
}

/* --- boot area ----------------------------------------------------------- */

static void elf64_build_gdt(uint8_t *area)
{
	uint64_t gdt[GDT_ENTRIES] = {
		0, DESC_CODE64, DESC_DATA, DESC_CODE32,
		/* busy 64-bit TSS, base 0, limit 0x67: only so TR is valid */
		((uint64_t)SEG_TYPE_TSS64_BUSY << 40) | (1ull << 47) | TSS_LIMIT, 0,
	};
	memcpy(area + (VMDB_BOOT_GDT - VMDB_BOOT_GDT), gdt, sizeof(gdt));
}

static void elf64_build_page_tables(uint8_t *area)
{
	uint64_t *pml4 = (uint64_t *)(area + (VMDB_BOOT_PML4 - VMDB_BOOT_GDT));
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512;
	uint64_t pdpt_gpa = VMDB_BOOT_PML4 + PAGE_SIZE;
	uint64_t pd_gpa = pdpt_gpa + PAGE_SIZE;

	pml4[0] = pdpt_gpa | PTE_P | PTE_RW;
	for (unsigned g = 0; g < IDENTITY_GIB; g++)
		pdpt[g] = (pd_gpa + g * PAGE_SIZE) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < IDENTITY_GIB * 512ull; i++)
		pd[i] = i * HUGE_2M | PTE_P | PTE_RW | PTE_PS;
}

static int elf64_build_boot_info(struct vm *vm, uint8_t *area, struct err *e)
{
	struct vmdb_boot_info info = {
		.magic = VMDB_BOOT_MAGIC, .version = 1, .mem_size = vm->ram_size,
		.nr_cpus = vm->nr_vcpus, .initrd = vm->initrd_gpa,
		.initrd_size = vm->initrd_size, .rsdp = vm->rsdp_gpa,
	};
	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	uint64_t map_gpa = VMDB_BOOT_INFO + sizeof(info);
	info.mmap_entries = acpi_memory_map(vm, map);
	info.mmap = map_gpa;

	uint64_t cmd_gpa = map_gpa + info.mmap_entries * sizeof(map[0]);
	size_t cmd_len = strlen(vm->cfg.cmdline ? vm->cfg.cmdline : "");
	size_t room = VMDB_BOOT_PML4 - cmd_gpa - 1;
	if (cmd_len > room)
		return err_set(e, E2BIG, "--cmdline is %zu bytes; at most %zu fit", cmd_len, room);
	info.cmdline = cmd_gpa;
	info.cmdline_len = (uint32_t)cmd_len;

	memcpy(area + (VMDB_BOOT_INFO - VMDB_BOOT_GDT), &info, sizeof(info));
	memcpy(area + (map_gpa - VMDB_BOOT_GDT), map, info.mmap_entries * sizeof(map[0]));
	if (cmd_len)
		memcpy(area + (cmd_gpa - VMDB_BOOT_GDT), vm->cfg.cmdline, cmd_len);
	return 0;   /* the NUL is there: the area was zeroed */
}

/* --- vCPU 0 -------------------------------------------------------------- */

static struct x86_segment elf64_segment(uint16_t sel, uint8_t type, bool code64)
{
	return (struct x86_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.s = 1, .l = code64, .db = !code64, .g = 1,
	};
}

static int elf64_set_vcpu(struct vm *vm, uint64_t entry, struct err *e)
{
	const struct engine_ops *ops = vm->engine;
	struct vcpu *bsp = &vm->vcpus[0];
	struct x86_sregs s;

	int ret = engine_get_sregs(ops, bsp, &s);
	if (ret < 0)
		return err_set(e, -ret, "cannot read vCPU 0 system registers");
	s.cs = elf64_segment(GDT_CODE64, SEG_TYPE_CODE, true);
	s.ds = s.es = s.fs = s.gs = s.ss = elf64_segment(GDT_DATA, SEG_TYPE_DATA, false);
	s.tr = (struct x86_segment){ .selector = GDT_TSS, .limit = TSS_LIMIT,
				     .type = SEG_TYPE_TSS64_BUSY, .present = 1 };
	s.ldt = (struct x86_segment){ .type = SEG_TYPE_LDT, .unusable = 1 };
	s.gdt = (struct x86_dtable){ .base = VMDB_BOOT_GDT, .limit = GDT_ENTRIES * 8 - 1 };
	s.idt = (struct x86_dtable){ .base = 0, .limit = 0 };
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s.cr3 = VMDB_BOOT_PML4;
	s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	s.efer = EFER_LME | EFER_LMA;
	ret = engine_set_sregs(ops, bsp, &s);
	if (ret < 0)
		return err_set(e, -ret, "vCPU 0 refused the long-mode system registers");

	struct x86_regs r = {
		.rip = entry, .rflags = RFLAGS_FIXED1, .rsp = VMDB_BOOT_STACK_TOP,
		.rdi = VMDB_BOOT_INFO, .rax = VMDB_BOOT_MAGIC,
	};
	ret = engine_set_regs(ops, bsp, &r);
	if (ret < 0)
		return err_set(e, -ret, "vCPU 0 refused the entry registers");
	return 0;
}

int load_elf64(struct vm *vm, const uint8_t *image, size_t size, struct err *e)
{
	Elf64_Ehdr eh;
	if (size < sizeof(eh))
		return err_set(e, ENOEXEC, "ELF header truncated (file is %zu bytes, header %zu)",
			       size, sizeof(eh));
	memcpy(&eh, image, sizeof(eh));
	int ret = elf64_check_ehdr(&eh, size, e);
	if (ret < 0)
		return ret;
	ret = elf64_check_segments(vm, image, size, &eh, e);
	if (ret < 0)
		return ret;

	uint8_t *area = vm_gpa_to_host(vm, VMDB_BOOT_GDT, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	if (!area || !vm_gpa_to_host(vm, VMDB_BOOT_STACK_TOP - PAGE_SIZE, PAGE_SIZE))
		return err_set(e, ENOSPC, "no RAM for the boot area at 0x%x", VMDB_BOOT_GDT);

	uint64_t end = elf64_load_segments(vm, image, &eh);
	ret = loader_load_initrd(vm, end, vm->low_ram_size, e);
	if (ret < 0)
		return ret;

	memset(area, 0, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	elf64_build_gdt(area);
	elf64_build_page_tables(area);
	ret = elf64_build_boot_info(vm, area, e);
	if (ret < 0)
		return ret;
	return elf64_set_vcpu(vm, eh.e_entry, e);
}
