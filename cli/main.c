/* cli/main.c — vmdb's entry point: parse the command line, build the
 * machine, start the gdb server when asked, run, and turn every error into
 * one line and an exit status (2 usage, 1 runtime, else the guest's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/options.h"
#include "cli/term.h"
#include "engine/engine.h"
#include "gdbserver/gdbserver.h"
#include "machine/vm.h"

#define VMDB_VERSION "0.1.0"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static int run_probe(const char *engine_name)
{
	const struct engine_ops *engine = engine_find(engine_name);
	struct engine_caps caps;
	struct engine_report report;
	struct err e = { 0 };

	if (!engine || !engine->vm->probe) {
		fprintf(stderr, "vmdb: engine %s cannot be probed\n", engine_name);
		return EXIT_RUNTIME;
	}
	memset(&report, 0, sizeof(report));
	if (engine->vm->probe(engine_assist(), &caps, &report, &e) < 0) {
		fprintf(stderr, "vmdb: probe failed: %s\n", e.msg);
		return EXIT_RUNTIME;
	}
	printf("engine: %s\n", engine->name);
	for (unsigned i = 0; i < report.nr; i++)
		printf("%s: %s (%s)\n", report.features[i].name,
		       report.features[i].present ? "yes" : "no", report.features[i].how);
	return 0;
}

/* --engine auto: pick the engine now and say which and why, on stderr.
 * Returns 0, or EXIT_USAGE when --cpu does not fit the engine picked. */
static int resolve_engine(struct options *o)
{
	if (strcmp(o->vm.engine, OPTIONS_ENGINE_AUTO)) {
		const struct engine_ops *chosen = engine_find(o->vm.engine);
		if (o->vm.record && chosen && !chosen->rr) {
			fprintf(stderr, "vmdb: --record: reverse execution needs the emu engine "
				"(engine %s is not deterministic; --engine emu)\n", chosen->name);
			return EXIT_USAGE;
		}
		return 0;
	}
	char why[320];
	const struct engine_ops *engine = engine_auto(why, sizeof(why));
	o->vm.engine = engine->name;
	fprintf(stderr, "vmdb: %s\n", why);
	if (o->vm.record && !engine->rr) {
		fprintf(stderr, "vmdb: --record: reverse execution needs the emu engine (engine %s "
			"is not deterministic; --engine emu)\n", engine->name);
		return EXIT_USAGE;
	}
	if (o->cpu_given && strcmp(engine->name, "emu")) {
		fprintf(stderr, "vmdb: --cpu chooses the software engine's CPU model; engine %s "
			"runs the host's CPU (--engine emu to use --cpu) (try 'vmdb --help')\n",
			engine->name);
		return EXIT_USAGE;
	}
	return 0;
}

/* With the serial console on stdio, stdin is its input: a terminal in
 * the foreground (raw mode, Ctrl-A escapes) or a pipe or file (read as
 * is). A terminal in the background is left alone. */
static void setup_serial_input(struct vm_config *cfg)
{
	if (cfg->serial != SERIAL_STDIO)
		return;
	if (!isatty(STDIN_FILENO)) {
		cfg->serial_stdin = true;
		return;
	}
	if (!term_stdin_usable())
		return;
	int r = term_raw_begin();
	if (r < 0) {
		fprintf(stderr, "vmdb: cannot put the terminal in raw mode (%s); serial input "
			"is off\n", strerror(-r));
		return;
	}
	cfg->serial_stdin = true;
	cfg->serial_escape = true;
}

static int run_vm(struct vm_config *cfg)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct err e = { 0 };
	int status;

	if (!vm) {
		fprintf(stderr, "vmdb: out of memory\n");
		return EXIT_RUNTIME;
	}
	setup_serial_input(cfg);
	if (vm_create(vm, cfg, &e) < 0) {
		fprintf(stderr, "vmdb: %s\n", e.msg);
		vm_destroy(vm);
		free(vm);
		return EXIT_RUNTIME;
	}
	if (cfg->gdb_addr && gdbserver_start(vm, cfg->gdb_addr, cfg->wait_gdb, &e) < 0) {
		fprintf(stderr, "vmdb: %s\n", e.msg);
		vm_destroy(vm);
		free(vm);
		return EXIT_RUNTIME;
	}
	status = vm_run(vm);
	term_restore();
	char why[sizeof(vm->exit_message)];
	snprintf(why, sizeof(why), "%s", vm->exit_message);
	if (cfg->gdb_addr)
		gdbserver_stop(vm);
	vm_destroy(vm);      /* the guest's last serial output goes out here */
	free(vm);
	term_restore();
	if (why[0])
		fprintf(stderr, "vmdb: %s\n", why);
	return status;
}

int main(int argc, char **argv)
{
	struct options opts;
	struct err e = { 0 };

	if (options_parse(argc, argv, &opts, &e) < 0) {
		fprintf(stderr, "vmdb: %s (try 'vmdb --help')\n", e.msg);
		return EXIT_USAGE;
	}
	if (opts.help) {
		fputs(options_usage, stdout);
		return 0;
	}
	if (opts.version) {
		printf("vmdb " VMDB_VERSION "\n");
		return 0;
	}
	int r = resolve_engine(&opts);
	if (r)
		return r;
	if (opts.probe)
		return run_probe(opts.vm.engine);
	return run_vm(&opts.vm);
}
