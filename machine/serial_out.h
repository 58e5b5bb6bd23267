/* machine/serial_out.h — the serial console's output queue. Owns: a
 * bounded buffer between the UART (vCPU threads) and the output descriptor,
 * and the thread that drains it, so a reader that stops reading (a paused
 * pager, a stuck log reader, a pipe nobody reads) never blocks a vCPU and
 * through it the debugger. When the buffer is full new bytes are dropped
 * and counted; the count is reported on stderr once the reader catches up
 * or at exit. */
#ifndef VMDB_SERIAL_OUT_H
#define VMDB_SERIAL_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct serial_out;

/* Start draining into fd (closed at the end when close_fd). */
int serial_out_start(struct serial_out **out, int fd, bool close_fd, struct err *e) must_check;
/* Queue one byte; never blocks on the reader. */
void serial_out_put(struct serial_out *o, uint8_t byte);
/* Write what is queued while the reader takes it (giving up once it takes
 * nothing for a while), report any loss, and free everything. */
void serial_out_stop(struct serial_out *o);

#endif
