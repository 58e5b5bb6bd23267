/* cli/term.h — the controlling terminal while the guest owns it: raw mode
 * on stdin (no echo, no line editing, no signals from keys: Ctrl-C goes
 * to the guest), output post-processing kept, and the saved settings put
 * back on every way out of the process (return from main, exit(),
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGABRT). */
#ifndef VMDB_TERM_H
#define VMDB_TERM_H

#include <stdbool.h>

/* True when stdin is a terminal vmdb may read: a tty in whose foreground
 * process group we are (reading it from the background would stop us). */
bool term_stdin_usable(void);

/* Put stdin in raw mode and arrange for term_restore() on every exit
 * path. Returns 0, or -errno (then nothing changed). */
int term_raw_begin(void);

/* Put the saved settings back (idempotent; async-signal-safe). */
void term_restore(void);

#endif
