/* x86/decode.h — instruction decoding helpers on top of Zydis. */
#ifndef VMDB_DECODE_H
#define VMDB_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <Zydis/Zydis.h>

#include "x86/x86.h"

/* A Zydis decoder for code running in `mode` (the one place that maps
 * vmdb's modes to Zydis's machine mode and stack width). */
bool x86_zydis_decoder_init(ZydisDecoder *dec, enum x86_mode mode);

/* Format the instruction at bytes[0..len) in Intel syntax into out.
 * Returns its length, or 0 when it does not decode ("(bad)" in out). */
unsigned x86_format_insn(enum x86_mode mode, uint64_t pc, const uint8_t *bytes, size_t len,
			 char *out, size_t out_size);

#endif
