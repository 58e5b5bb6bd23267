/* gdbserver/target_xml.c — the target description (qXfer:features:read
 * target.xml), generated from gdb_regs[] so numbering, sizes and the g
 * packet can never disagree. gdb's own feature names for core, sse and
 * segments make `info registers` / `info all-registers` work as for any
 * amd64 target; control registers live in our own feature. A 32-bit
 * kernel with its vCPU in protected or real mode when gdb connects gets
 * gdb's i386 set instead (pkt_regs.c maps it onto the 64-bit state). */
#include "gdbserver/gdbserver_int.h"

#include <stdio.h>
#include <string.h>

/* Types each feature needs before its registers. */
static const char core_types[] =
	"<flags id=\"i386_eflags\" size=\"4\">"
	"<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
	"<field name=\"ID\" start=\"21\" end=\"21\"/></flags>\n";

static const char sse_types[] =
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
	"<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/>"
	"<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>"
	"<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>"
	"<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/>"
	"</union>\n"
	"<flags id=\"i386_mxcsr\" size=\"4\">"
	"<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>"
	"<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>"
	"<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>"
	"<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>"
	"<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>"
	"<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>"
	"<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>"
	"</flags>\n";

static const char sys_types[] =
	"<flags id=\"x86_cr0\" size=\"8\">"
	"<field name=\"PE\" start=\"0\" end=\"0\"/><field name=\"MP\" start=\"1\" end=\"1\"/>"
	"<field name=\"EM\" start=\"2\" end=\"2\"/><field name=\"TS\" start=\"3\" end=\"3\"/>"
	"<field name=\"ET\" start=\"4\" end=\"4\"/><field name=\"NE\" start=\"5\" end=\"5\"/>"
	"<field name=\"WP\" start=\"16\" end=\"16\"/><field name=\"AM\" start=\"18\" end=\"18\"/>"
	"<field name=\"NW\" start=\"29\" end=\"29\"/><field name=\"CD\" start=\"30\" end=\"30\"/>"
	"<field name=\"PG\" start=\"31\" end=\"31\"/></flags>\n"
	"<flags id=\"x86_cr4\" size=\"8\">"
	"<field name=\"VME\" start=\"0\" end=\"0\"/><field name=\"PVI\" start=\"1\" end=\"1\"/>"
	"<field name=\"TSD\" start=\"2\" end=\"2\"/><field name=\"DE\" start=\"3\" end=\"3\"/>"
	"<field name=\"PSE\" start=\"4\" end=\"4\"/><field name=\"PAE\" start=\"5\" end=\"5\"/>"
	"<field name=\"MCE\" start=\"6\" end=\"6\"/><field name=\"PGE\" start=\"7\" end=\"7\"/>"
	"<field name=\"PCE\" start=\"8\" end=\"8\"/><field name=\"OSFXSR\" start=\"9\" end=\"9\"/>"
	"<field name=\"OSXMMEXCPT\" start=\"10\" end=\"10\"/>"
	"<field name=\"UMIP\" start=\"11\" end=\"11\"/><field name=\"LA57\" start=\"12\" end=\"12\"/>"
	"<field name=\"VMXE\" start=\"13\" end=\"13\"/><field name=\"SMXE\" start=\"14\" end=\"14\"/>"
	"<field name=\"FSGSBASE\" start=\"16\" end=\"16\"/>"
	"<field name=\"PCIDE\" start=\"17\" end=\"17\"/>"
	"<field name=\"OSXSAVE\" start=\"18\" end=\"18\"/>"
	"<field name=\"SMEP\" start=\"20\" end=\"20\"/><field name=\"SMAP\" start=\"21\" end=\"21\"/>"
	"<field name=\"PKE\" start=\"22\" end=\"22\"/></flags>\n"
	"<flags id=\"x86_efer\" size=\"8\">"
	"<field name=\"SCE\" start=\"0\" end=\"0\"/><field name=\"LME\" start=\"8\" end=\"8\"/>"
	"<field name=\"LMA\" start=\"10\" end=\"10\"/><field name=\"NXE\" start=\"11\" end=\"11\"/>"
	"<field name=\"SVME\" start=\"12\" end=\"12\"/>"
	"<field name=\"FFXSR\" start=\"14\" end=\"14\"/></flags>\n"
	"<flags id=\"x86_seg_attr\" size=\"4\">"
	"<field name=\"type\" start=\"0\" end=\"3\"/><field name=\"S\" start=\"4\" end=\"4\"/>"
	"<field name=\"DPL\" start=\"5\" end=\"6\"/><field name=\"P\" start=\"7\" end=\"7\"/>"
	"<field name=\"AVL\" start=\"12\" end=\"12\"/><field name=\"L\" start=\"13\" end=\"13\"/>"
	"<field name=\"DB\" start=\"14\" end=\"14\"/><field name=\"G\" start=\"15\" end=\"15\"/>"
	"<field name=\"unusable\" start=\"16\" end=\"16\"/></flags>\n";

/* x87 registers belong to gdb's "float" group, xmm/mxcsr to "vector", the
 * state beyond the g packet to "system"; the rest stays general so plain
 * `info registers` shows it. */
static const char *reg_group(const struct gdb_reg_view *v, unsigned reg)
{
	const struct gdb_reg *r = &v->regs[reg];
	if (reg >= v->nr_g)
		return " group=\"system\"";
	if (strcmp(r->type, "i387_ext") == 0 || (r->bits == 32 && r->name[0] == 'f' &&
						  strcmp(r->name, "fs") != 0))
		return " group=\"float\"";
	if (strcmp(r->type, "vec128") == 0 || strcmp(r->name, "mxcsr") == 0)
		return " group=\"vector\"";
	return "";
}

/* An ELF64 kernel file: gdb loads it (qXfer:exec-file names it) and
 * refuses a description of another architecture than its file's. */
static bool kernel_is_elf64(const struct gdb_server *s)
{
	const char *path = s->vm->cfg.kernel_path;
	unsigned char ident[5];
	FILE *f = path ? fopen(path, "rb") : NULL;
	bool elf64 = f && fread(ident, 1, sizeof(ident), f) == sizeof(ident) &&
		     memcmp(ident, "\177ELF", 4) == 0 && ident[4] == 2;
	if (f)
		fclose(f);
	return elf64;
}

/* The register set the user named with --gdb-arch, or (auto) x86-64 for
 * an ELF64 kernel (a PVH vmlinux starts in 32-bit mode, but gdb holds
 * the 64-bit file), else the mode vCPU 0 is in now. gdb takes the
 * description once per connection: a guest that changes mode later
 * keeps it (see README). */
static const struct gdb_reg_view *choose_view(struct gdb_server *s)
{
	struct debug_cpu_state st;
	switch (s->vm->cfg.gdb_arch) {
	case GDB_ARCH_X86_64: return &gdb_view_amd64;
	case GDB_ARCH_I386:   return &gdb_view_i386;
	case GDB_ARCH_I8086:  return &gdb_view_i8086;
	case GDB_ARCH_AUTO:   break;
	}
	if (kernel_is_elf64(s) || debug_read_state(s->dbg, 0, &st) < 0)
		return &gdb_view_amd64;
	switch (x86_mode_of(&st.sregs)) {
	case X86_MODE_REAL:     return &gdb_view_i8086;
	case X86_MODE_PROT16:
	case X86_MODE_PROT32:   return &gdb_view_i386;
	default:                return &gdb_view_amd64;
	}
}

static void feature_regs(const struct gdb_reg_view *v, unsigned f, struct rsp_buf *out)
{
	for (unsigned reg = 0; reg < v->nr; reg++) {
		const struct gdb_reg *r = &v->regs[reg];
		if (r->feature == f)
			rsp_buf_printf(out, "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\" "
				       "regnum=\"%u\"%s/>\n", r->name, r->bits, r->type, reg,
				       reg_group(v, reg));
	}
}

int gdb_target_xml(struct gdb_server *s, struct rsp_buf *out)
{
	if (!s->view)
		s->view = choose_view(s);
	const struct gdb_reg_view *v = s->view;
	rsp_buf_printf(out, "<?xml version=\"1.0\"?>\n"
			    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
			    "<target version=\"1.0\">\n"
			    "<architecture>%s</architecture>\n", v->arch);
	for (unsigned f = 0; f < gdb_nr_features; f++) {
		bool any = false;
		for (unsigned reg = 0; reg < v->nr && !any; reg++)
			any = v->regs[reg].feature == f;
		if (!any)
			continue;     /* i386 has no fs_base/gs_base: no segments feature */
		rsp_buf_printf(out, "<feature name=\"%s\">\n", gdb_features[f]);
		if (f == 0)
			rsp_buf_append(out, core_types, strlen(core_types));
		if (f == 1)
			rsp_buf_append(out, sse_types, strlen(sse_types));
		if (f == 3)
			rsp_buf_append(out, sys_types, strlen(sys_types));
		feature_regs(v, f, out);
		rsp_buf_printf(out, "</feature>\n");
	}
	rsp_buf_printf(out, "</target>\n");
	return out->err;
}
