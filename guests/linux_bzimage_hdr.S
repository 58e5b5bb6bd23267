/* guests/linux_bzimage_hdr.S — what makes linux_bzimage.bin a bzImage:
 * the boot sector's setup header (x86 boot protocol 2.15: relocatable,
 * 2 MiB alignment, pref_address = RT_LOAD_ADDR, XLF_KERNEL_64) and the
 * 64-bit entry at load address + 0x200. The entry keeps RSI (boot_params)
 * and a copy of the loader's GDT, then joins the runtime's ELF64 entry
 * (rt/entry64.S records the rest of the machine state). The payload is
 * not position-independent: the tests always leave room at pref_address. */
#include "guests/linux_guest.h"

	.section .linux_setup, "a"
setup_start:
	.org	0x1f1
	.byte	1			/* setup_sects: 0x400 bytes of setup */
	.word	0			/* root_flags */
	.long	linux_syssize		/* syssize, 16-byte units */
	.word	0			/* ram_size */
	.word	0			/* vid_mode */
	.word	0			/* root_dev */
	.word	0xaa55			/* boot_flag */
	.byte	0xeb, hdr_end - setup_start - 0x202	/* jump: its offset = header length */
	.ascii	"HdrS"
	.word	0x020f			/* version 2.15 */
	.long	0			/* realmode_swtch */
	.word	0			/* start_sys_seg */
	.word	0			/* kernel_version */
	.byte	0			/* type_of_loader */
	.byte	0x01			/* loadflags: LOADED_HIGH */
	.word	0			/* setup_move_size */
	.long	0x100000		/* code32_start */
	.long	0, 0			/* ramdisk_image, ramdisk_size */
	.long	0			/* bootsect_kludge */
	.word	0			/* heap_end_ptr */
	.byte	0, 0			/* ext_loader_ver, ext_loader_type */
	.long	0			/* cmd_line_ptr */
	.long	LINUX_GUEST_INITRD_MAX	/* initrd_addr_max */
	.long	0x200000		/* kernel_alignment */
	.byte	1			/* relocatable_kernel */
	.byte	21			/* min_alignment: 2 MiB */
	.word	1			/* xloadflags: XLF_KERNEL_64 */
	.long	LINUX_GUEST_CMDLINE_SIZE	/* cmdline_size */
	.long	0			/* hardware_subarch */
	.quad	0			/* hardware_subarch_data */
	.long	0, 0			/* payload_offset, payload_length */
	.quad	0			/* setup_data */
	.quad	RT_LOAD_ADDR		/* pref_address */
	.long	linux_init_size		/* init_size */
	.long	0			/* handover_offset */
	.long	0			/* kernel_info_offset */
hdr_end:
	.org	0x400

	.section .text.linux_entry, "ax"
	.code32
	/* The 32-bit entry at the load address: vmdb never uses it. */
	ud2
	.org	0x200
	.code64
	.globl	linux_entry64
linux_entry64:
	movq	%rsi, linux_entry_rsi
	sgdt	linux_entry_gdtr
	movzwl	linux_entry_gdtr, %ecx		/* copy min(limit + 1, 64) bytes */
	incl	%ecx
	cmpl	$LINUX_GDT_COPY_LEN, %ecx
	jbe	1f
	movl	$LINUX_GDT_COPY_LEN, %ecx
1:	movq	linux_entry_gdtr + 2, %rsi
	movq	$linux_entry_gdt, %rdi
	cld
	rep movsb
	movq	linux_entry_rsi, %rsi
	jmp	_start

	.section .data
	.balign 8
	.globl	linux_entry_rsi, linux_entry_gdtr, linux_entry_gdt
linux_entry_rsi:	.quad 0
linux_entry_gdtr:	.skip 16
linux_entry_gdt:	.skip LINUX_GDT_COPY_LEN
