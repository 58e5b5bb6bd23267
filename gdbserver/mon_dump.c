/* gdbserver/mon_dump.c — `monitor dump-guest-memory [-p] FILE [BEGIN
 * LENGTH]`, QEMU's command of that name: the words become a request to
 * debug/coredump.c, whose progress reaches the client as console lines
 * (one a second keeps gdb from timing out on a big machine). */
#include "gdbserver/monitor.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/coredump.h"

/* "12 KiB", "512 MiB": whole units, the larger that fits. */
static const char *size_words(char *buf, size_t n, uint64_t bytes)
{
	if (bytes >= (1u << 20))
		snprintf(buf, n, "%llu MiB", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, n, "%llu KiB", (unsigned long long)(bytes >> 10));
	return buf;
}

static void dump_progress(void *opaque, uint64_t done, uint64_t total)
{
	mon_print(opaque, "dump-guest-memory: %llu of %llu MiB written\n",
		  (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
}

/* Splits arg (a copy) into the request; -EINVAL for a bad word, 1 when
 * the answer is already printed. */
static int dump_parse(struct gdb_server *s, char *arg, struct debug_dump_request *rq)
{
	const char *num[2];
	unsigned nums = 0;
	for (char *save, *w = strtok_r(arg, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (strcmp(w, "-p") == 0) {
			rq->paging = true;
		} else if (w[0] == '-' && w[1] && strchr("zlswR", w[1]) && !w[2]) {
			mon_print(s, "monitor dump-guest-memory: %s asks for a kdump-compressed "
				  "file; vmdb writes ELF, which crash reads too\n", w);
			return 1;
		} else if (w[0] == '-' || (rq->path && nums == 2)) {
			return -EINVAL;
		} else if (!rq->path) {
			rq->path = w;
		} else {
			num[nums++] = w;
		}
	}
	if (!rq->path || nums == 1)
		return -EINVAL;
	if (nums == 2) {
		rq->have_range = true;
		if (mon_number(num[0], UINT64_MAX, &rq->begin) < 0 ||
		    mon_number(num[1], UINT64_MAX, &rq->length) < 0)
			return -EINVAL;
	}
	return 0;
}

int mon_dump_guest_memory(struct gdb_server *s, const char *arg)
{
	char *words = strdup(arg);
	if (!words)
		return -ENOMEM;
	struct debug_dump_request rq = { .vcpu = mon_vcpu(s), .progress = dump_progress,
					 .opaque = s };
	int r = dump_parse(s, words, &rq);
	if (r == 0) {
		struct debug_dump_result res;
		struct err e = { 0 };
		char where[PATH_MAX], size[32];
		if (debug_dump_core(s->dbg, &rq, &res, &e) < 0)
			mon_print(s, "monitor dump-guest-memory: %s\n", e.msg);
		else
			mon_print(s, "wrote %s: %s of guest memory in %u segment%s%s, %u vCPU%s\n",
				  realpath(rq.path, where) ? where : rq.path,
				  size_words(size, sizeof(size), res.ram_bytes), res.segments,
				  res.segments == 1 ? "" : "s",
				  res.physical ? " (paging is off: by physical address)" : "",
				  res.vcpus, res.vcpus == 1 ? "" : "s");
	}
	free(words);
	return r < 0 ? r : 0;
}
