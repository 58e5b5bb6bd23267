/* gdbserver/pkt_xfer.c — qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH, the
 * documents the client reads in pieces: features (target.xml), threads
 * (each vCPU with its name and state), exec-file (the kernel vmdb
 * loaded) and memory-map (RAM, with the holes where no guest memory is, so
 * gdb refuses memory accesses and software breakpoints there). Each
 * document is made whole at every request and the piece asked for sent. */
#include "gdbserver/gdbserver_int.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/inspect.h"

/* "&amp;" and friends for text inside an XML element or attribute. */
static void xml_text(struct rsp_buf *b, const char *text)
{
	for (const char *p = text; *p; p++) {
		switch (*p) {
		case '&': rsp_buf_printf(b, "&amp;"); break;
		case '<': rsp_buf_printf(b, "&lt;"); break;
		case '>': rsp_buf_printf(b, "&gt;"); break;
		case '"': rsp_buf_printf(b, "&quot;"); break;
		default: rsp_buf_putc(b, *p); break;
		}
	}
}

static int threads_xml(struct gdb_server *s, struct rsp_buf *b)
{
	rsp_buf_printf(b, "<?xml version=\"1.0\"?>\n<threads>\n");
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++) {
		char text[128];
		debug_describe_vcpu(s->dbg, i, text, sizeof(text));
		rsp_buf_printf(b, "<thread id=\"%x\" core=\"%x\" name=\"vCPU %u\">", i + 1, i, i);
		xml_text(b, text);
		rsp_buf_printf(b, "</thread>\n");
	}
	rsp_buf_printf(b, "</threads>\n");
	return 0;
}

static int exec_file(struct gdb_server *s, struct rsp_buf *b)
{
	char path[PATH_MAX];
	const char *given = s->vm->cfg.kernel_path;
	if (!given)
		return -ENOENT;
	/* gdb opens it itself: a path relative to vmdb's directory would not do */
	rsp_buf_printf(b, "%s", realpath(given, path) ? path : given);
	return 0;
}

struct map_build {
	struct rsp_buf *b;
	uint64_t next;            /* first address not described yet */
	bool done;                /* the map reached the top of the space */
};

static void map_ram(struct map_build *m, uint64_t first, uint64_t last)
{
	if (first == 0 && last == UINT64_MAX) {     /* 2^64 bytes: no length says it */
		map_ram(m, 0, UINT64_MAX / 2);
		map_ram(m, UINT64_MAX / 2 + 1, UINT64_MAX);
		return;
	}
	rsp_buf_printf(m->b, "<memory type=\"ram\" start=\"0x%" PRIx64 "\" length=\"0x%" PRIx64
		       "\"/>\n", first, last - first + 1);
}

static void map_hole(void *opaque, uint64_t first, uint64_t last)
{
	struct map_build *m = opaque;
	if (first > m->next)
		map_ram(m, m->next, first - 1);
	m->next = last + 1;
	m->done = last == UINT64_MAX;
}

static int memory_map(struct gdb_server *s, struct rsp_buf *b)
{
	struct map_build m = { .b = b };
	rsp_buf_printf(b, "<?xml version=\"1.0\"?>\n<!DOCTYPE memory-map PUBLIC "
		       "\"+//IDN gnu.org//DTD GDB Memory Map V1.0//EN\" "
		       "\"http://sourceware.org/gdb/gdb-memory-map.dtd\">\n<memory-map>\n");
	int r = debug_memory_holes(s->dbg, s->cur_g, s->phys, map_hole, &m);
	if (r < 0)
		return r;
	if (!m.done)
		map_ram(&m, m.next, UINT64_MAX);
	rsp_buf_printf(b, "</memory-map>\n");
	return 0;
}

/* Send [off, off+len) of the document: 'm' and more to come, or 'l'. */
static void send_piece(struct gdb_server *s, const struct rsp_buf *doc, uint64_t off,
		       uint64_t len)
{
	if (len > GDB_PACKET_SIZE / 2)
		len = GDB_PACKET_SIZE / 2;   /* room for escapes */
	if (off >= doc->len) {
		rsp_buf_putc(&s->reply, 'l');
		return;
	}
	size_t n = doc->len - off < len ? doc->len - off : len;
	rsp_buf_putc(&s->reply, off + n >= doc->len ? 'l' : 'm');
	rsp_buf_append(&s->reply, doc->data + off, n);
}

int gdb_pkt_qxfer(struct gdb_server *s, struct rsp_cur *args)
{
	char object[32], annex[64];
	uint64_t off, len;

	if (!rsp_skip_char(args, ':') || rsp_take_str(args, ':', object, sizeof(object)) < 0)
		return -EINVAL;
	if (!rsp_skip_str(args, "read:"))
		return 0;      /* writes: unsupported */
	if (rsp_take_str(args, ':', annex, sizeof(annex)) < 0 || rsp_take_hex(args, ',', &off) < 0 ||
	    rsp_take_hex(args, '\0', &len) < 0)
		return -EINVAL;
	bool stopped = s->state == GDB_STOPPED;
	struct rsp_buf doc;
	int r;
	rsp_buf_init(&doc);
	if (strcmp(object, "features") == 0 && strcmp(annex, "target.xml") == 0)
		r = gdb_target_xml(s, &doc);
	else if (strcmp(object, "features") == 0)
		r = -ENOENT;
	else if (strcmp(object, "threads") == 0 && !annex[0])
		r = stopped ? threads_xml(s, &doc) : -EAGAIN;
	else if (strcmp(object, "exec-file") == 0)
		r = exec_file(s, &doc);            /* annex: a process id, there is one */
	else if (strcmp(object, "memory-map") == 0 && !annex[0])
		r = stopped ? memory_map(s, &doc) : -EAGAIN;
	else
		r = 1;      /* an object we do not serve: the empty reply */
	if (r == 0)
		send_piece(s, &doc, off, len);
	else if (r < 0 && r != -EAGAIN)
		rsp_buf_printf(&s->reply, "E00");   /* what the protocol says for a bad annex */
	rsp_buf_free(&doc);
	return r == -EAGAIN ? r : 0;
}
