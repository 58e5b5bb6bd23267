/* cli/term.c — raw mode for the serial console (see cli/term.h); called
 * once per process.
 *
 * The saved settings live in this file's statics: a signal handler has no
 * other way to find them, and a process has one controlling terminal. The
 * handler restores them, then dies of the same signal with the default
 * action, so the exit status still says which signal it was. */
#include "cli/term.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios term_saved;
static volatile sig_atomic_t term_is_raw;

static const int term_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT };

bool term_stdin_usable(void)
{
	if (!isatty(STDIN_FILENO))
		return false;
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	return fg >= 0 && fg == getpgrp();
}

void term_restore(void)
{
	if (!term_is_raw)
		return;
	term_is_raw = 0;
	tcsetattr(STDIN_FILENO, TCSADRAIN, &term_saved);
}

static void term_on_signal(int sig)
{
	int saved_errno = errno;
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
	errno = saved_errno;
}

static void term_at_exit(void)
{
	term_restore();
}

int term_raw_begin(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &term_saved) < 0)
		return -errno;
	raw = term_saved;
	/* as QEMU's -nographic: bytes as typed, no echo, keys make no
	 * signals; output keeps its newline translation */
	raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL |
				   IXON);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = term_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		sigaddset(&sa.sa_mask, term_signals[i]);
	if (atexit(term_at_exit) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		sigaction(term_signals[i], &sa, NULL);

	/* raw before the call: a signal right after it must restore */
	term_is_raw = 1;
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0) {
		int r = -errno;
		term_is_raw = 0;
		return r;
	}
	return 0;
}
