"""Instruction sequences for the differential tests (tests/test_differential.py)
and the blob guests/diff_runner.c runs them from.

A sequence is a list of Insn (AT&T assembly for binutils `as`, plus what the
comparison must know about it: which flags it leaves undefined), an initial
register/flags image and the initial contents of the scratch area. The
generator is seeded (random.Random(seed)): the same seed gives the same
sequences, so a failure message that names the seed is reproducible with

    python3 tests/diffgen.py --seed SEED --out blob.bin    (then vmdb --initrd blob.bin
                                                            build/guests/diff_runner.elf)

Memory layout (must match guests/diff_runner.c):
  CODE_ADDR      the code of the running sequence, then the runner's `jmp`
  SCRATCH_ADDR   SCRATCH_SIZE bytes of data: RBP points at BOUNDARY (a 4 KiB
                 and 2 MiB page boundary) and stays there; data operands are
                 RBP-relative within +-DATA_REACH; RSP starts at STACK_TOP in
                 the upper page and PUSH/POP stay within STACK_REACH of it.
Generated code never writes RBP, and RSP only through PUSH/POP.

Undefined flags: the Intel SDM (vol. 2, each instruction's "Flags Affected",
and vol. 1 appendix A, "EFLAGS cross-reference") leaves some flags undefined
after some instructions; real CPUs, KVM's emulator and emu may each leave a
different value there. Every Insn says which flags it writes and which of
those are undefined (see flags_* below); the generator tracks the set of
currently undefined flags along every path (Jcc targets merge both paths),
never lets an instruction read an undefined flag (it first emits a CMP,
which defines all six), and the test masks the undefined set after each
step. BSF/BSR with a zero source leave the destination undefined (SDM: "If
the content of the source operand is 0, the content of the destination
operand is undefined"); such a step masks that register and the generator
overwrites it at once.
"""
import argparse
import math
import os
import random
import re
import struct
import subprocess
import tempfile

CODE_ADDR = 0x800000
CODE_MAX = 0x10000
SCRATCH_ADDR = 0x9ff000
SCRATCH_SIZE = 0x2000
BOUNDARY = 0xa00000
STACK_TOP = SCRATCH_ADDR + 0x1c00
DATA_REACH = 0x3f8
STACK_REACH = 0xf0
BLOB_MAGIC = 0x31464944424d4456     # "VMDBDIF1"
BLOB_VERSION = 1
BLOB_VERSION_RING3 = 2              # sequences run in ring 3, with an FXSAVE image each
FX_SIZE = 512
MXCSR_DEFAULT = 0x1f80              # all exceptions masked, round to nearest
TRAILER_LEN = 5                     # the runner's jmp after the code

# RFLAGS bits (x86/x86.h names)
CF, PF, AF, ZF, SF, OF = 1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 7, 1 << 11
TF, IF, DF, RF = 1 << 8, 1 << 9, 1 << 10, 1 << 16
FIXED1 = 1 << 1
STATUS = CF | PF | AF | ZF | SF | OF
FLAG_NAMES = [(CF, "CF"), (PF, "PF"), (AF, "AF"), (ZF, "ZF"), (SF, "SF"), (TF, "TF"),
              (IF, "IF"), (DF, "DF"), (OF, "OF"), (RF, "RF")]

# gdb's register order (gdbserver/pkt_regs.c): the g packet and the blob image
REGS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
RBP, RSP = REGS.index("rbp"), REGS.index("rsp")

# registers the generator may write (RBP and RSP are the frame of reference)
FREE = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
LEGACY = ["rax", "rbx", "rcx", "rdx"]           # have high-byte halves
NAMES = {}
for _r in ["rax", "rbx", "rcx", "rdx"]:
    _x = _r[1]
    NAMES[_r] = {64: _r, 32: "e" + _x + "x", 16: _x + "x", 8: _x + "l", 'h': _x + "h"}
for _r, _b in (("rsi", "si"), ("rdi", "di")):
    NAMES[_r] = {64: _r, 32: "e" + _b, 16: _b, 8: _b + "l"}
for _n in range(8, 16):
    _r = f"r{_n}"
    NAMES[_r] = {64: _r, 32: _r + "d", 16: _r + "w", 8: _r + "b"}
SUFFIX = {8: "b", 16: "w", 32: "l", 64: "q"}
MASK = {8: 0xff, 16: 0xffff, 32: 0xffffffff, 64: (1 << 64) - 1}

# condition codes and the flags each reads
CC_READS = {"o": OF, "no": OF, "b": CF, "ae": CF, "e": ZF, "ne": ZF, "be": CF | ZF,
            "a": CF | ZF, "s": SF, "ns": SF, "p": PF, "np": PF, "l": SF | OF,
            "ge": SF | OF, "le": ZF | SF | OF, "g": ZF | SF | OF}

EDGE = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
        0x80000000, 0xffffffff, 0x100000000, 0x7fffffffffffffff, 0x8000000000000000,
        0xffffffffffffffff, 0xfffffffffffffffe, 0x8000000000000001, 0x00000000ffff0000,
        0xffffffff00000000, 0x0101010101010101, 0x8080808080808080, 0x5555555555555555,
        0xaaaaaaaaaaaaaaaa]


class Insn:
    """One instruction: its assembly and what it does to the flags.
    writes: flags it changes; undef: those of them left undefined; reads: flags
    whose values it uses. rep: a REP-prefixed string instruction (one step per
    iteration). undef_regs: registers (REGS indexes) undefined after it."""

    def __init__(self, text, writes=0, undef=0, reads=0, rep=False, undef_regs=(), note=""):
        self.text = text
        self.writes = writes
        self.undef = undef
        self.reads = reads
        self.rep = rep
        self.undef_regs = tuple(undef_regs)
        self.note = note
        # filled by the generator / assembler
        self.undef_after = 0       # flags undefined after this instruction ran
        self.offset = None
        self.length = None

    def __repr__(self):
        return f"Insn({self.text!r})"


# ---- flag effects (SDM vol. 2 "Flags Affected"; cited per group) ----

def flags_arith(reads=0):
    """ADD ADC SUB SBB CMP NEG XADD CMPXCHG: OF SF ZF AF CF PF set by the result."""
    return dict(writes=STATUS, undef=0, reads=reads)


def flags_logic():
    """AND OR XOR TEST: OF and CF cleared, SF ZF PF by the result, AF undefined."""
    return dict(writes=STATUS, undef=AF)


def flags_incdec():
    """INC DEC: CF not affected, the others set by the result."""
    return dict(writes=STATUS & ~CF, undef=0)


def count_mask(width):
    return 0x3f if width == 64 else 0x1f


def flags_shift(op, width, count):
    """SAL/SHL/SAR/SHR: masked count 0 affects no flag; otherwise CF is the last
    bit shifted out (undefined for SHL/SHR when the count >= the operand size),
    OF is defined only for 1-bit shifts, AF is undefined, SF ZF PF by the result."""
    mc = count & count_mask(width)
    if mc == 0:
        return dict(writes=0, undef=0)
    undef = AF
    if mc != 1:
        undef |= OF
    if op in ("shl", "sal", "shr") and mc >= width:
        undef |= CF
    return dict(writes=STATUS, undef=undef)


def flags_rotate(op, width, count):
    """ROL/ROR/RCL/RCR: only CF and OF; masked count 0 affects no flag; OF is
    defined only for 1-bit rotates. RCL/RCR read CF."""
    mc = count & count_mask(width)
    reads = CF if op in ("rcl", "rcr") else 0
    if mc == 0:
        return dict(writes=0, undef=0, reads=reads)
    return dict(writes=CF | OF, undef=0 if mc == 1 else OF, reads=reads)


def flags_double_shift(width, count):
    """SHLD/SHRD: masked count 0 affects no flag; CF last bit out, SF ZF PF by
    the result, OF defined only for 1-bit shifts, AF undefined. (A count above
    the operand size, possible for 16 bits, leaves result and flags undefined:
    the generator never emits it.)"""
    mc = count & count_mask(width)
    if mc == 0:
        return dict(writes=0, undef=0)
    return dict(writes=STATUS, undef=AF | (0 if mc == 1 else OF))


def flags_mul():
    """MUL IMUL: CF and OF defined; SF ZF AF PF undefined."""
    return dict(writes=STATUS, undef=SF | ZF | AF | PF)


def flags_div():
    """DIV IDIV: CF OF SF ZF AF PF undefined."""
    return dict(writes=STATUS, undef=STATUS)


def flags_bt():
    """BT BTS BTR BTC: CF is the selected bit, ZF unaffected, OF SF AF PF undefined."""
    return dict(writes=STATUS & ~ZF, undef=OF | SF | AF | PF)


def flags_bsf():
    """BSF BSR: ZF set for a zero source; CF OF SF AF PF undefined."""
    return dict(writes=STATUS, undef=CF | OF | SF | AF | PF)


def flags_tzcnt():
    """TZCNT LZCNT: ZF (zero result) and CF (zero source) defined; OF SF PF AF undefined."""
    return dict(writes=STATUS, undef=OF | SF | PF | AF)


def flag_text(mask):
    return ",".join(n for b, n in FLAG_NAMES if mask & b) or "-"


# ---- the generator ----

class Gen:
    """Emits one sequence. State: the undefined-flag set, the stack depth."""

    def __init__(self, rng, name):
        self.rng = rng
        self.name = name
        self.insns = []
        self.undef = 0
        self.depth = 0              # bytes pushed below STACK_TOP
        self.labels = 0

    # -- emission and flag tracking --
    def emit(self, text, **kw):
        ins = Insn(text, **kw)
        if ins.reads & self.undef:
            self.define_flags()
        self.undef = (self.undef & ~ins.writes) | ins.undef
        ins.undef_after = self.undef
        self.insns.append(ins)
        return ins

    def define_flags(self):
        """CMP defines all six status flags: a reader of undefined flags follows it."""
        a, b = self.rng.sample(FREE, 2)
        w = self.rng.choice([8, 16, 32, 64])
        self.undef = 0
        ins = Insn(f"cmp{SUFFIX[w]} %{NAMES[a][w]}, %{NAMES[b][w]}", **flags_arith())
        self.insns.append(ins)

    def label(self):
        self.labels += 1
        return f".L{self.name}_{self.labels}"

    # -- operand choices --
    def width(self, allow8=True):
        return self.rng.choice([8, 16, 32, 64] if allow8 else [16, 32, 64])

    def reg(self, w, avoid=(), high_ok=False):
        """A register name of width w (maybe a high-byte one when high_ok)."""
        choices = [r for r in FREE if r not in avoid]
        r = self.rng.choice(choices)
        if w == 8 and high_ok and r in LEGACY and self.rng.random() < 0.35:
            return "%" + NAMES[r]['h'], r
        return "%" + NAMES[r][w], r

    @staticmethod
    def is_high(name):
        return name[1:] in ("ah", "bh", "ch", "dh")

    @staticmethod
    def needs_rex(name):
        """An 8-bit register that only exists with a REX prefix (no AH-DH then)."""
        return name[1:] in ("sil", "dil") or re.match(r"%r\d+b$", name) is not None

    def pair8(self, a, b):
        """Make two 8-bit operands encodable together: a high-byte register and
        a REX-only one cannot share an instruction; the high one becomes its
        low byte."""
        if self.is_high(a) and self.needs_rex(b):
            a = a[:2] + "l"
        if self.is_high(b) and self.needs_rex(a):
            b = b[:2] + "l"
        return a, b

    def imm(self, w):
        """An immediate that fits the instruction's imm field (sign-extended for 64)."""
        rng = self.rng
        if rng.random() < 0.6:
            v = rng.choice(EDGE)
        else:
            v = rng.getrandbits(w)
        if w == 64:
            v &= 0xffffffff
            return v - (1 << 32) if v & 0x80000000 else v
        v &= MASK[w]
        return v - (1 << w) if v >> (w - 1) else v

    def value(self):
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            return rng.choice(EDGE)
        if r < 0.7:
            return rng.getrandbits(8)
        return rng.getrandbits(64)

    def disp(self, size=8):
        """A displacement from RBP: often straddling the page boundary."""
        rng = self.rng
        if rng.random() < 0.35:
            return rng.randint(-size - 2, 3)
        return rng.randint(-DATA_REACH, DATA_REACH - size)

    def mem(self, size=8, legacy_only=False, avoid=()):
        """A data operand; may first emit the setup of an index or base register
        (never one in avoid: the caller's own setup lives there)."""
        rng = self.rng
        d = self.disp(size)
        form = rng.random()
        if form < 0.55 or legacy_only and form < 0.8:
            return f"{d}(%rbp)"
        if legacy_only:
            if not [r for r in LEGACY if r not in avoid]:
                return f"{d}(%rbp)"
            idx = rng.choice([r for r in LEGACY if r not in avoid])
            scale = rng.choice([1, 2, 4, 8])
            n = rng.randint(0, 15)
            self.emit(f"movl ${n}, %{NAMES[idx][32]}")
            return f"{d - n * scale}(%rbp,%{idx},{scale})"
        free = [r for r in FREE if r not in avoid]
        if form < 0.8:
            idx = rng.choice(free)
            scale = rng.choice([1, 2, 4, 8])
            n = rng.randint(-16, 15)
            self.emit(f"movq ${n}, %{idx}")
            return f"{d}(%rbp,%{idx},{scale})" if abs(d) < DATA_REACH - 128 else f"(%rbp,%{idx},{scale})"
        base = rng.choice(free)
        self.emit(f"leaq {d}(%rbp), %{base}")
        return f"(%{base})"

    # -- templates: each emits a few instructions --
    def t_mov(self):
        rng = self.rng
        w = self.width()
        r, _ = self.reg(w, high_ok=True)
        k = rng.random()
        if k < 0.4:
            v = self.value() & MASK[w]
            op = "movabsq" if w == 64 and v > 0x7fffffff else "mov" + SUFFIX[w]
            self.emit(f"{op} ${v:#x}, {r}")
        elif k < 0.7:
            self.emit(f"mov{SUFFIX[w]} {r}, {self.mem(w // 8, legacy_only=self.is_high(r))}")
        else:
            m = self.mem(w // 8, legacy_only=self.is_high(r))
            self.emit(f"mov{SUFFIX[w]} {m}, {r}")

    def t_alu(self):
        rng = self.rng
        op = rng.choice(["add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"])
        fl = flags_logic() if op in ("and", "or", "xor", "test") else \
            flags_arith(CF if op in ("adc", "sbb") else 0)
        w = self.width()
        s = SUFFIX[w]
        form = rng.choice(["rr", "ir", "im", "rm", "mr"])
        if op == "test" and form == "mr":
            form = "rm"
        lock = "lock " if form in ("rm", "im") and op not in ("cmp", "test") and rng.random() < 0.3 else ""
        if form == "rr":
            a, b = self.pair8(self.reg(w, high_ok=True)[0], self.reg(w, high_ok=True)[0])
            self.emit(f"{op}{s} {a}, {b}", **fl)
        elif form == "ir":
            a, _ = self.reg(w, high_ok=True)
            self.emit(f"{op}{s} ${self.imm(w)}, {a}", **fl)
        elif form == "im":
            self.emit(f"{lock}{op}{s} ${self.imm(w)}, {self.mem(w // 8)}", **fl)
        else:
            a, _ = self.reg(w, high_ok=True)
            m = self.mem(w // 8, legacy_only=self.is_high(a))
            text = f"{lock}{op}{s} {a}, {m}" if form == "rm" else f"{op}{s} {m}, {a}"
            self.emit(text, **fl)

    def t_unary(self):
        rng = self.rng
        op = rng.choice(["inc", "dec", "neg", "not"])
        fl = {"inc": flags_incdec(), "dec": flags_incdec(), "neg": flags_arith(),
              "not": dict()}[op]
        w = self.width()
        if rng.random() < 0.6:
            a, _ = self.reg(w, high_ok=True)
            self.emit(f"{op}{SUFFIX[w]} {a}", **fl)
        else:
            lock = "lock " if rng.random() < 0.3 else ""
            self.emit(f"{lock}{op}{SUFFIX[w]} {self.mem(w // 8)}", **fl)

    def shift_count(self, w):
        rng = self.rng
        return rng.choice([0, 1, 1, 2, rng.randint(2, w - 1), w - 1, w, w + 1,
                           rng.randint(0, 31 if w < 64 else 63), 31, 32, 33, 63, 64, 255])

    def t_shift(self):
        rng = self.rng
        op = rng.choice(["shl", "shr", "sar", "sal", "rol", "ror", "rcl", "rcr"])
        w = self.width()
        count = self.shift_count(w)
        fl = flags_rotate(op, w, count) if op in ("rol", "ror", "rcl", "rcr") else \
            flags_shift(op, w, count)
        use_cl = rng.random() < 0.4
        if use_cl:
            self.emit(f"movb ${count & 0xff}, %cl")
            src = "%cl"
        elif count == 1 and rng.random() < 0.5:
            src = None          # the one-operand form (D0/D1)
        else:
            src = f"${count & 0xff}"
        if rng.random() < 0.6:
            dst, _ = self.reg(w, high_ok=not use_cl)
            if use_cl and dst in ("%cl", "%ch"):
                dst = "%" + NAMES["rdx"][w]
        else:
            dst = self.mem(w // 8, avoid=["rcx"])
        self.emit(f"{op}{SUFFIX[w]} {src + ', ' if src else ''}{dst}", **fl)

    def t_double_shift(self):
        rng = self.rng
        op = rng.choice(["shld", "shrd"])
        w = rng.choice([16, 32, 64])
        count = self.shift_count(w) & count_mask(w)
        if w == 16 and count > 16:
            count = rng.randint(0, 16)
        fl = flags_double_shift(w, count)
        src, _ = self.reg(w, avoid=["rcx"])
        if rng.random() < 0.4:
            self.emit(f"movb ${count}, %cl")
            c = "%cl"
        else:
            c = f"${count}"
        dst = self.reg(w, avoid=["rcx"])[0] if rng.random() < 0.6 else self.mem(w // 8, avoid=["rcx"])
        self.emit(f"{op}{SUFFIX[w]} {c}, {src}, {dst}", **fl)

    def t_mul(self):
        rng = self.rng
        w = self.width()
        k = rng.random()
        if k < 0.45:
            op = rng.choice(["mul", "imul"])
            src = self.reg(w, high_ok=True)[0] if rng.random() < 0.6 else self.mem(w // 8)
            self.emit(f"{op}{SUFFIX[w]} {src}", **flags_mul())
            return
        w = max(w, 16)
        dst, _ = self.reg(w)
        src = self.reg(w)[0] if rng.random() < 0.6 else self.mem(w // 8)
        if k < 0.75:
            self.emit(f"imul{SUFFIX[w]} {src}, {dst}", **flags_mul())
        else:
            self.emit(f"imul{SUFFIX[w]} ${self.imm(min(w, 32))}, {src}, {dst}", **flags_mul())

    def t_div(self):
        """DIV/IDIV with operands chosen so the quotient fits (no #DE)."""
        rng = self.rng
        w = self.width()
        signed = rng.random() < 0.5
        op = "idiv" if signed else "div"
        m = MASK[w]
        divisor = rng.choice([1, 2, 3, 7, 0x10, 0x7f, m, m >> 1, (m >> 1) + 1,
                              rng.getrandbits(w) | 1]) & m
        divisor = divisor or 1
        low = self.value() & m
        acc = {8: "ax", 16: "ax", 32: "eax", 64: "rax"}[w]
        if w == 8:
            self.emit(f"movw ${low & 0xffff:#x}, %ax")
        elif w == 64 and low > 0x7fffffff:
            self.emit(f"movabsq ${low:#x}, %rax")
        else:
            self.emit(f"mov{SUFFIX[w]} ${low:#x}, %{acc}")
        if signed:
            sdiv = divisor - (1 << w) if divisor >> (w - 1) else divisor
            sext = {8: "cbtw", 16: "cwtd", 32: "cltd", 64: "cqto"}[w]
            self.emit(sext)
            # dividend sign-extended from the low half: only MIN / -1 overflows
            if sdiv == -1:
                divisor = 1
        else:
            if w == 8:
                self.emit("movb $0, %ah")
            else:
                self.emit(f"mov{SUFFIX[w]} $0, %{NAMES['rdx'][w]}")
        if rng.random() < 0.6:
            r = rng.choice([x for x in FREE if x not in ("rax", "rdx")])
            vtext = f"movabsq ${divisor:#x}, %{r}" if w == 64 and divisor > 0x7fffffff else \
                f"mov{SUFFIX[w]} ${divisor:#x}, %{NAMES[r][w]}"
            self.emit(vtext)
            self.emit(f"{op}{SUFFIX[w]} %{NAMES[r][w]}", **flags_div())
        else:
            r = rng.choice([x for x in FREE if x not in ("rax", "rdx")])
            m_ = self.mem(w // 8, avoid=["rax", "rdx", r])
            v = divisor if w < 64 else (divisor if divisor <= 0x7fffffff else None)
            if v is None:
                self.emit(f"movabsq ${divisor:#x}, %{r}")
                self.emit(f"movq %{r}, {m_}")
            else:
                self.emit(f"mov{SUFFIX[w]} ${v:#x}, {m_}")
            self.emit(f"{op}{SUFFIX[w]} {m_}", **flags_div())

    def t_bt(self):
        rng = self.rng
        op = rng.choice(["bt", "bts", "btr", "btc"])
        w = rng.choice([16, 32, 64])
        lock = "lock " if op != "bt" and rng.random() < 0.3 else ""
        k = rng.random()
        if k < 0.3:
            dst, _ = self.reg(w)
            if rng.random() < 0.5:
                self.emit(f"{op}{SUFFIX[w]} ${rng.randint(0, 255)}, {dst}", **flags_bt())
            else:
                off, _ = self.reg(w)
                self.emit(f"{op}{SUFFIX[w]} {off}, {dst}", **flags_bt())
        elif k < 0.5:
            d = rng.randint(-0x80, 0x80)
            self.emit(f"{lock}{op}{SUFFIX[w]} ${rng.randint(0, 255)}, {d}(%rbp)", **flags_bt())
        else:
            # register bit offset: signed, reaching far beyond the operand
            reach = 0x200 * 8 if w > 16 else 0x200 * 8
            off = rng.choice([0, 1, w - 1, w, -1, -w, rng.randint(-reach, reach)])
            r = rng.choice(FREE)
            self.emit(f"movq ${off}, %{r}")
            d = rng.randint(-0x80, 0x80)
            self.emit(f"{lock}{op}{SUFFIX[w]} %{NAMES[r][w]}, {d}(%rbp)", **flags_bt())

    def t_bitscan(self):
        rng = self.rng
        # TZCNT/LZCNT are left out: this host's KVM emulator drops their F3
        # prefix and runs BSF/BSR (a KVM deviation; see test_differential.py)
        op = rng.choice(["bsf", "bsr"])
        w = rng.choice([16, 32, 64])
        v = rng.choice([0, 0, 1, 0x80, 0x8000, 1 << (w - 1), rng.getrandbits(w),
                        1 << rng.randint(0, w - 1)]) & MASK[w]
        dst, dreg = self.reg(w)
        if rng.random() < 0.6:
            src, sreg = self.reg(w, avoid=[dreg])
            if w == 64 and v > 0x7fffffff:
                self.emit(f"movabsq ${v:#x}, %{sreg}")
            else:
                self.emit(f"mov{SUFFIX[w]} ${v:#x}, {src}")
        else:
            tmp = rng.choice([x for x in FREE if x != dreg])
            src = self.mem(w // 8, avoid=[tmp])
            if w == 64 and v > 0x7fffffff:
                self.emit(f"movabsq ${v:#x}, %{tmp}")
                self.emit(f"movq %{tmp}, {src}")
            else:
                self.emit(f"mov{SUFFIX[w]} ${v:#x}, {src}")
        fl = flags_tzcnt() if op in ("tzcnt", "lzcnt") else flags_bsf()
        zero_undef = op in ("bsf", "bsr") and v == 0
        self.emit(f"{op}{SUFFIX[w]} {src}, {dst}", undef_regs=[REGS.index(dreg)] if zero_undef else (),
                  **fl)
        if zero_undef:
            self.emit(f"movq ${self.imm(64)}, %{dreg}")

    def t_setcc(self):
        rng = self.rng
        cc = rng.choice(list(CC_READS))
        dst = self.reg(8, high_ok=True)[0] if rng.random() < 0.7 else self.mem(1)
        self.emit(f"set{cc} {dst}", reads=CC_READS[cc])

    def t_cmov(self):
        rng = self.rng
        cc = rng.choice(list(CC_READS))
        w = rng.choice([16, 32, 64])
        dst, _ = self.reg(w)
        src = self.reg(w)[0] if rng.random() < 0.6 else self.mem(w // 8)
        self.emit(f"cmov{cc}{SUFFIX[w]} {src}, {dst}", reads=CC_READS[cc])

    def t_jcc(self):
        rng = self.rng
        cc = rng.choice(list(CC_READS))
        target = self.label()
        self.emit(f"j{cc} {target}", reads=CC_READS[cc])
        at_jump = self.undef
        for _ in range(rng.randint(1, 3)):
            rng.choice([self.t_alu, self.t_unary, self.t_mov, self.t_shift, self.t_movx])()
        self.insns.append(target + ":")
        self.undef |= at_jump

    def t_indirect(self):
        """JMP and CALL through a register or memory (a CALL to the next
        instruction, whose POP takes the return address back)."""
        rng = self.rng
        target = self.label()
        r = rng.choice(FREE)
        self.emit(f"leaq {target}(%rip), %{r}")
        where = f"*%{r}"
        if rng.random() < 0.5:
            d = self.disp(8)
            self.emit(f"movq %{r}, {d}(%rbp)")
            where = f"*{d}(%rbp)"
        if rng.random() < 0.5:
            self.emit(f"jmp {where}")
            self.emit(f"movl ${self.imm(32)}, {self.reg(32)[0]}")    # jumped over
            self.insns.append(target + ":")
        else:
            self.emit(f"call {where}")
            self.insns.append(target + ":")
            self.emit(f"popq %{rng.choice(FREE)}")

    def t_xchg(self):
        rng = self.rng
        op = rng.choice(["xchg", "xadd", "cmpxchg"])
        w = self.width()
        s = SUFFIX[w]
        fl = flags_arith() if op != "xchg" else {}
        src, sreg = self.reg(w, avoid=["rax"] if op == "cmpxchg" else (), high_ok=True)
        if rng.random() < 0.5:
            dst, dreg = self.reg(w, avoid=["rax"] if op == "cmpxchg" else (), high_ok=True)
            src, dst = self.pair8(src, dst)
            if op == "cmpxchg" and rng.random() < 0.5:
                self.emit(f"movq %{dreg}, %rax")        # the compare succeeds
            self.emit(f"{op}{s} {src}, {dst}", **fl)
        else:
            m = self.mem(w // 8, avoid=["rax"], legacy_only=self.is_high(src))
            if op == "cmpxchg" and rng.random() < 0.5:
                self.emit(f"mov{s} {m}, %{NAMES['rax'][w]}")
            lock = "lock " if op != "xchg" and rng.random() < 0.5 else ""
            self.emit(f"{lock}{op}{s} {src}, {m}", **fl)

    def t_movx(self):
        rng = self.rng
        op, sw, dw = rng.choice([("movsbw", 8, 16), ("movsbl", 8, 32), ("movsbq", 8, 64),
                                 ("movswl", 16, 32), ("movswq", 16, 64), ("movslq", 32, 64),
                                 ("movzbw", 8, 16), ("movzbl", 8, 32), ("movzbq", 8, 64),
                                 ("movzwl", 16, 32), ("movzwq", 16, 64)])
        dst, dreg = self.reg(dw)
        if rng.random() < 0.6:
            src, _ = self.reg(sw, high_ok=sw == 8)
            if self.is_high(src) and (dw == 64 or dreg not in LEGACY):
                src = src[:2] + "l"         # AH-DH cannot take a REX prefix
        else:
            src = self.mem(sw // 8)
        self.emit(f"{op} {src}, {dst}")

    def t_bswap(self):
        w = self.rng.choice([32, 64])
        self.emit(f"bswap {self.reg(w)[0]}")

    def t_lea(self):
        rng = self.rng
        w = rng.choice([16, 32, 64, 64])
        dst, _ = self.reg(w)
        bases = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r12", "r13",
                 "r15", None, "rip"]
        base = rng.choice(bases)
        index = rng.choice(["rax", "rcx", "rdi", "rbp", "r9", "r12", "r13", "r15", None])
        scale = rng.choice([1, 2, 4, 8])
        disp = rng.choice([0, 1, -1, 0x7f, -0x80, 0x80, 0x12345678, -0x80000000,
                           rng.randint(-0x1000, 0x1000)])
        a32 = base not in ("rip",) and rng.random() < 0.25
        def n(r):
            if not a32:
                return "%" + r
            return "%" + {"rbp": "ebp", "rsp": "esp"}.get(r) if r in ("rbp", "rsp") else "%" + NAMES[r][32]
        if base == "rip":
            self.emit(f"lea{SUFFIX[w]} {disp & 0xffff}(%rip), {dst}")
            return
        if base is None and index is None:
            self.emit(f"lea{SUFFIX[w]} {disp:#x}, {dst}" if disp >= 0 else f"lea{SUFFIX[w]} {disp}, {dst}")
            return
        inner = (n(base) if base else "") + (f",{n(index)},{scale}" if index else "")
        self.emit(f"lea{SUFFIX[w]} {disp}({inner}), {dst}")

    def t_stack(self):
        rng = self.rng
        push = self.depth < STACK_REACH - 16 and (self.depth <= -STACK_REACH + 16 or rng.random() < 0.55)
        k = rng.random()
        if push:
            if k < 0.35:
                self.emit(f"pushq {self.reg(64)[0]}")
                self.depth += 8
            elif k < 0.5:
                self.emit(f"pushw {self.reg(16)[0]}")
                self.depth += 2
            elif k < 0.7:
                self.emit(f"pushq ${self.imm(32)}")
                self.depth += 8
            elif k < 0.85:
                self.emit(f"pushq {self.mem(8)}")
                self.depth += 8
            else:
                self.emit("pushfq", reads=STATUS)
                self.depth += 8
        else:
            if k < 0.45:
                self.emit(f"popq {self.reg(64)[0]}")
                self.depth -= 8
            elif k < 0.55:
                self.emit(f"popw {self.reg(16)[0]}")
                self.depth -= 2
            elif k < 0.75:
                m = self.mem(8)
                self.emit(f"popq {m}")
                self.depth -= 8
            else:
                # POPF of an image without TF/IF/IOPL: status flags and DF
                v = rng.getrandbits(12) & (STATUS | DF) | FIXED1
                self.emit(f"pushq ${v:#x}")
                self.emit("popfq", writes=STATUS)
                self.depth += 0

    def t_misc(self):
        rng = self.rng
        k = rng.choice(["cbtw", "cwtl", "cltq", "cwtd", "cltd", "cqto", "lahf", "sahf",
                        "clc", "stc", "cmc", "cld", "std"])
        if k == "lahf":
            self.emit(k, reads=SF | ZF | AF | PF | CF)
        elif k == "sahf":
            self.emit(k, writes=SF | ZF | AF | PF | CF)
        elif k in ("clc", "stc"):
            self.emit(k, writes=CF)
        elif k == "cmc":
            self.emit(k, writes=CF, reads=CF)
        else:
            self.emit(k)

    def t_string(self):
        rng = self.rng
        op = rng.choice(["movs", "stos", "lods", "cmps", "scas"])
        w = self.width()
        n = rng.choice([0, 1, 1, 2, 3, 5, 40])   # 40: emu's fast REP a page at a time
        self.emit(f"leaq {rng.randint(-0x300, 0x300)}(%rbp), %rsi")
        self.emit(f"leaq {rng.randint(-0x300, 0x300)}(%rbp), %rdi")
        self.emit(f"movl ${n}, %ecx")
        if rng.random() < 0.5:
            self.emit(rng.choice(["cld", "std"]))
        if op in ("cmps", "scas"):
            prefix = rng.choice(["", "repe ", "repne "])
        else:
            prefix = rng.choice(["", "rep "])
        runs = prefix == "" or n > 0
        fl = flags_arith() if op in ("cmps", "scas") and runs else {}
        self.emit(f"{prefix}{op}{SUFFIX[w]}", rep=bool(prefix), **fl)

    def xmm_mem(self, aligned):
        d = self.rng.randint(-DATA_REACH // 16, DATA_REACH // 16 - 1) * 16
        if not aligned:
            d += self.rng.choice([0, 1, 4, 8, 15])
            if self.rng.random() < 0.3:
                d = self.rng.randint(-17, 1)        # across the page boundary
        return f"{d}(%rbp)"

    def t_sse(self):
        """The SSE moves this host's KVM emulator runs itself (measured: the
        rest - MOVD/MOVQ, MOVSS/MOVSD, PXOR, LDMXCSR, ... - stop it, and vmdb
        hands them to emu's core, which compares emu with emu)."""
        rng = self.rng
        aligned_ops = ["movdqa", "movaps", "movapd"]
        unaligned_ops = ["movdqu", "movups", "movupd"]
        a, b = rng.sample(range(16), 2)
        k = rng.random()
        if k < 0.4:
            op = rng.choice(aligned_ops + unaligned_ops)
            self.emit(f"{op} {self.xmm_mem(op in aligned_ops)}, %xmm{a}")
        elif k < 0.75:
            # MOVNTDQ/MOVNTPS: aligned stores KVM's emulator runs too
            op = rng.choice(aligned_ops + unaligned_ops + ["movntdq", "movntps"])
            self.emit(f"{op} %xmm{a}, {self.xmm_mem(op not in unaligned_ops)}")
        else:
            op = rng.choice(aligned_ops + unaligned_ops)
            self.emit(f"{op} %xmm{a}, %xmm{b}")

    TEMPLATES = [("t_alu", 16), ("t_unary", 5), ("t_mov", 6), ("t_shift", 10),
                 ("t_double_shift", 4), ("t_mul", 5), ("t_div", 3), ("t_bt", 5),
                 ("t_bitscan", 4), ("t_setcc", 3), ("t_cmov", 3), ("t_jcc", 4),
                 ("t_xchg", 5), ("t_movx", 4), ("t_bswap", 1), ("t_lea", 4),
                 ("t_stack", 5), ("t_misc", 4), ("t_string", 4), ("t_sse", 3),
                 ("t_indirect", 2)]

    def t_fault(self):
        """A last instruction that raises an exception: the runner's handler
        ends the sequence, and the frame the CPU pushed is compared (RFLAGS
        in it too: the flags are made defined first)."""
        rng = self.rng
        if self.undef:
            self.define_flags()
        k = rng.choice(["de0", "de_ovf", "ud2", "lock", "pf_read", "pf_write", "pf_cross",
                        "gp_noncanon", "gp_noncanon_write", "gp_align"])
        r = rng.choice([x for x in FREE if x not in ("rax", "rdx", "rcx")])
        if k == "de0":
            self.emit(f"movl $0, %{NAMES[r][32]}")
            self.emit(f"div{SUFFIX[32]} %{NAMES[r][32]}", **flags_div())
        elif k == "de_ovf":
            self.emit("movabsq $0x8000000000000000, %rax")
            self.emit("cqto")
            self.emit(f"movq $-1, %{r}")
            self.emit(f"idivq %{r}", **flags_div())
        elif k == "gp_align":
            self.emit(f"movdqa {16 * rng.randint(-8, 8) + rng.choice([1, 8, 12])}(%rbp), "
                      f"%xmm{rng.randint(0, 15)}")
        elif k == "ud2":
            self.emit("ud2")
        elif k == "lock":
            self.emit(".byte 0xf0, 0x90")       # LOCK NOP: #UD
        elif k in ("pf_read", "pf_write", "pf_cross"):
            # guest-physical 0..4 GiB is mapped, the next page is not
            addr = (1 << 32) + rng.choice([0, 8, 0xff8]) if k != "pf_cross" else (1 << 32) - 4
            self.emit(f"movabsq ${addr:#x}, %{r}")
            w = self.width()
            if k == "pf_write":
                self.emit(f"mov{SUFFIX[w]} %{NAMES['rax'][w]}, (%{r})")
            else:
                self.emit(f"mov{SUFFIX[w] if k != 'pf_cross' else 'q'} (%{r}), "
                          f"%{NAMES['rax'][w] if k != 'pf_cross' else 'rax'}")
        else:
            self.emit(f"movabsq $0x8000000000000000, %{r}")
            if k == "gp_noncanon":
                self.emit(f"movq (%{r}), %rax")
            else:
                self.emit(f"addq $1, 8(%{r})", **flags_arith())

    def generate(self, n, fault=False):
        names = [t for t, _ in self.TEMPLATES]
        weights = [w for _, w in self.TEMPLATES]
        while self.count() < n:
            getattr(self, self.rng.choices(names, weights)[0])()
        if fault:
            self.t_fault()
        return self.insns

    def count(self):
        return sum(1 for i in self.insns if isinstance(i, Insn))


class Sequence:
    """Instructions, the initial register/flags image, the initial scratch area;
    after assemble(): the code bytes and each instruction's offset."""

    def __init__(self, name, items, regs, rflags, scratch, final_undef=None, fx=None):
        self.name = name
        self.fx = fx                # initial FXSAVE image (ring-3 sequences)
        self.items = items          # Insn and label strings, in order
        self.regs = regs
        self.rflags = rflags
        self.scratch = scratch
        self.code = b""
        # flags undefined at the end (after the merge at a last Jcc target)
        insns = self.insns
        self.final_undef = final_undef if final_undef is not None else \
            (insns[-1].undef_after if insns else 0)

    @property
    def insns(self):
        return [i for i in self.items if isinstance(i, Insn)]

    def at(self, addr):
        """The Insn at a code address (None when none starts there)."""
        return self._by_off.get(addr - CODE_ADDR)

    def end_addr(self):
        return CODE_ADDR + len(self.code)


def initial_state(rng):
    regs = [0] * 16
    g = Gen(rng, "init")
    for i, r in enumerate(REGS):
        regs[i] = g.value()
    regs[RBP] = BOUNDARY
    regs[RSP] = STACK_TOP
    rflags = (rng.getrandbits(12) & (STATUS | DF)) | FIXED1
    scratch = bytearray(rng.getrandbits(8) for _ in range(SCRATCH_SIZE))
    # some recognisable words around the boundary
    for off in range(BOUNDARY - SCRATCH_ADDR - 64, BOUNDARY - SCRATCH_ADDR + 64, 8):
        scratch[off:off + 8] = struct.pack("<Q", rng.choice(EDGE))
    return regs, rflags, bytes(scratch)


def generate(seed, nseq, length):
    """nseq generated sequences of about `length` instructions each."""
    rng = random.Random(seed)
    seqs = []
    for k in range(nseq):
        name = f"g{k}"
        regs, rflags, scratch = initial_state(rng)
        gen = Gen(rng, name)
        items = gen.generate(length, fault=rng.random() < 0.3)
        seqs.append(Sequence(f"seed {seed} seq {k}", items, regs, rflags, scratch, gen.undef))
    return seqs


# ---- SSE (ring-3 sequences: this host's KVM runs them on the real CPU) ----

F32_EDGE = [0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x7f800000,
            0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00000, 0x7fc12345, 0xff812345,
            0x00000001, 0x807fffff, 0x00400000, 0x00800000, 0x7f7fffff, 0xff7fffff,
            0x4b000000, 0x4effffff, 0x4f000000, 0xcf000000, 0x5f000000, 0xdf000001,
            0x3eaaaaab, 0x40490fdb, 0x33800000, 0x0c000000, 0x72000000]
F64_EDGE = [0x0, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
            0x3ff8000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
            0xfff8000000000000, 0x7ff4000000000000, 0x7ff8000012345678, 0xfff0000000000001,
            0x0000000000000001, 0x800fffffffffffff, 0x0008000000000000, 0x0010000000000000,
            0x7fefffffffffffff, 0x41dfffffffc00000, 0x41e0000000000000, 0xc1e0000000200000,
            0x43e0000000000000, 0xc3e0000000000000, 0x3fd5555555555555, 0x400921fb54442d18,
            0x3ca0000000000000, 0x36a0000000000000, 0x47e0000000000000, 0x3810000000000000]


def fp_qword(rng):
    """Eight bytes of FP-interesting data: two singles, one double or integers."""
    k = rng.random()
    if k < 0.4:
        return rng.choice(F32_EDGE) | rng.choice(F32_EDGE) << 32
    if k < 0.75:
        return rng.choice(F64_EDGE)
    if k < 0.85:
        return rng.choice(EDGE)
    return rng.getrandbits(64)


def fx_image(xmm_qwords, mxcsr, x87=None):
    """An FXSAVE image: MXCSR, xmm0-15 (32 qwords), and the x87 state
    (fcw, fsw, abridged tags, ST0-ST7 as 10-byte values), FNINIT's by default."""
    img = bytearray(FX_SIZE)
    fcw, fsw, ftw, st = x87 if x87 else (0x37f, 0, 0, [bytes(10)] * 8)
    struct.pack_into("<HHB", img, 0, fcw, fsw, ftw)
    for i, v in enumerate(st):
        img[32 + 16 * i:32 + 16 * i + 10] = v
    struct.pack_into("<II", img, 24, mxcsr, 0xffff)
    for i, q in enumerate(xmm_qwords):
        struct.pack_into("<Q", img, 160 + 8 * i, q)
    return bytes(img)


def random_mxcsr(rng):
    """Exceptions masked; any rounding, FTZ, DAZ and sticky flags."""
    v = MXCSR_DEFAULT | rng.getrandbits(6) if rng.random() < 0.3 else MXCSR_DEFAULT
    if rng.random() < 0.5:
        v |= rng.getrandbits(2) << 13             # RC
    if rng.random() < 0.25:
        v |= 1 << 15                              # FTZ
    if rng.random() < 0.25:
        v |= 1 << 6                               # DAZ
    return v


class SseGen(Gen):
    """Sequences for ring 3: the general templates plus SSE/SSE2 ones over
    NaNs, infinities, denormals, +-0 and rounding-mode changes (LDMXCSR,
    exceptions masked). No SSE instruction changes an undefined flag state
    except the (U)COMIS* family, which writes all six status flags."""

    def xr(self):
        return f"%xmm{self.rng.randint(0, 15)}"

    def smem(self, size):
        """A memory operand of size bytes (16: aligned, as legacy SSE wants)."""
        return self.xmm_mem(True) if size == 16 else f"{self.disp(size)}(%rbp)"

    def src(self, size, mem_ok=True):
        return self.smem(size) if mem_ok and self.rng.random() < 0.35 else self.xr()

    def t_sse_move(self):
        rng = self.rng
        x, y = self.xr(), self.xr()
        k = rng.randint(0, 13)
        if k == 0:
            op = rng.choice(["movss", "movsd"])
            sz = 4 if op == "movss" else 8
            form = rng.randint(0, 2)
            self.emit(f"{op} {y}, {x}" if form == 0 else f"{op} {self.smem(sz)}, {x}"
                      if form == 1 else f"{op} {x}, {self.smem(sz)}")
        elif k == 1:
            op = rng.choice(["movhps", "movlps", "movhpd", "movlpd"])
            self.emit(f"{op} {self.smem(8)}, {x}" if rng.random() < 0.5 else f"{op} {x}, {self.smem(8)}")
        elif k == 2:
            self.emit(f"{rng.choice(['movhlps', 'movlhps'])} {y}, {x}")
        elif k == 3:
            self.emit(f"{rng.choice(['movntdq', 'movntps', 'movntpd'])} {x}, {self.xmm_mem(True)}")
        elif k == 4:
            w = rng.choice([32, 64])
            self.emit(f"movnti {self.reg(w)[0]}, {self.smem(w // 8)}")
        elif k == 5:
            self.emit(f"lddqu {self.xmm_mem(False)}, {x}")
        elif k == 6:
            r = self.reg(64)[0]
            self.emit(rng.choice([f"movq {r}, {x}", f"movq {x}, {r}", f"movq {y}, {x}",
                                  f"movq {self.smem(8)}, {x}", f"movq {x}, {self.smem(8)}"]))
        elif k == 7:
            r = self.reg(32)[0]
            self.emit(rng.choice([f"movd {r}, {x}", f"movd {x}, {r}", f"movd {self.smem(4)}, {x}",
                                  f"movd {x}, {self.smem(4)}"]))
        elif k == 8:
            op = rng.choice(["movmskps", "movmskpd", "pmovmskb"])
            self.emit(f"{op} {x}, {self.reg(rng.choice([32, 64]))[0]}")
        elif k == 9:
            self.emit(f"pextrw ${rng.randint(0, 255)}, {x}, {self.reg(rng.choice([32, 64]))[0]}")
        elif k == 10:
            s = self.reg(32)[0] if rng.random() < 0.5 else self.smem(2)
            self.emit(f"pinsrw ${rng.randint(0, 255)}, {s}, {x}")
        elif k == 11:
            op = rng.choice(["movdqa", "movaps", "movapd", "movdqu", "movups", "movupd"])
            aligned = op in ("movdqa", "movaps", "movapd")
            self.emit(rng.choice([f"{op} {y}, {x}", f"{op} {self.xmm_mem(aligned)}, {x}",
                                  f"{op} {x}, {self.xmm_mem(aligned)}"]))
        elif k == 12:
            # an FP-interesting constant through a GPR
            r = rng.choice(FREE)
            self.emit(f"movabsq ${fp_qword(rng):#x}, %{r}")
            self.emit(f"movq %{r}, {x}")
        else:
            op = rng.choice(["movddup", "movsldup", "movshdup"])
            self.emit(f"{op} {self.src(8 if op == 'movddup' else 16)}, {x}")

    SSE_INT = ["paddb", "paddw", "paddd", "paddq", "paddsb", "paddsw", "paddusb", "paddusw",
               "psubb", "psubw", "psubd", "psubq", "psubsb", "psubsw", "psubusb", "psubusw",
               "pand", "pandn", "por", "pxor", "pcmpeqb", "pcmpeqw", "pcmpeqd", "pcmpgtb",
               "pcmpgtw", "pcmpgtd", "pmullw", "pmulhw", "pmulhuw", "pmuludq", "pmaddwd",
               "psadbw", "pavgb", "pavgw", "pminub", "pmaxub", "pminsw", "pmaxsw",
               "punpcklbw", "punpcklwd", "punpckldq", "punpcklqdq", "punpckhbw", "punpckhwd",
               "punpckhdq", "punpckhqdq", "packsswb", "packssdw", "packuswb", "unpcklps",
               "unpckhps", "unpcklpd", "unpckhpd", "andps", "andnps", "orps", "xorps", "andpd",
               "andnpd", "orpd", "xorpd"]

    def t_sse_int(self):
        self.emit(f"{self.rng.choice(self.SSE_INT)} {self.src(16)}, {self.xr()}")

    def t_sse_shift(self):
        rng = self.rng
        op = rng.choice(["psllw", "pslld", "psllq", "psrlw", "psrld", "psrlq", "psraw", "psrad",
                         "pslldq", "psrldq"])
        n = rng.choice([0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 255, rng.randint(0, 255)])
        if op.endswith("dq") or rng.random() < 0.5:
            self.emit(f"{op} ${n}, {self.xr()}")
        else:
            self.emit(f"{op} {self.src(16)}, {self.xr()}")

    def t_sse_shuffle(self):
        rng = self.rng
        op = rng.choice(["pshufd", "pshuflw", "pshufhw", "shufps", "shufpd"])
        self.emit(f"{op} ${rng.randint(0, 255)}, {self.src(16)}, {self.xr()}")

    def t_sse_fp(self):
        rng = self.rng
        if rng.random() < 0.1:
            # SSE3 (emu runs them; CPUID does not claim SSE3: no x87 FISTTP)
            op = rng.choice(["addsubps", "addsubpd", "haddps", "haddpd", "hsubps", "hsubpd"])
            self.emit(f"{op} {self.src(16)}, {self.xr()}")
            return
        op = rng.choice(["add", "sub", "mul", "div", "sqrt", "min", "max"])
        form = rng.choice(["ps", "pd", "ss", "sd"])
        size = {"ps": 16, "pd": 16, "ss": 4, "sd": 8}[form]
        self.emit(f"{op}{form} {self.src(size)}, {self.xr()}")

    def t_sse_cmp(self):
        rng = self.rng
        if rng.random() < 0.5:
            form = rng.choice(["ps", "pd", "ss", "sd"])
            size = {"ps": 16, "pd": 16, "ss": 4, "sd": 8}[form]
            self.emit(f"cmp{form} ${rng.randint(0, 7)}, {self.src(size)}, {self.xr()}")
        else:
            op = rng.choice(["comiss", "ucomiss", "comisd", "ucomisd"])
            self.emit(f"{op} {self.src(4 if op.endswith('ss') else 8)}, {self.xr()}",
                      writes=STATUS)

    def t_sse_cvt(self):
        rng = self.rng
        k = rng.random()
        if k < 0.45:
            op, size = rng.choice([("cvtps2pd", 8), ("cvtpd2ps", 16), ("cvtss2sd", 4),
                                   ("cvtsd2ss", 8), ("cvtdq2ps", 16), ("cvtps2dq", 16),
                                   ("cvttps2dq", 16), ("cvtdq2pd", 8), ("cvtpd2dq", 16),
                                   ("cvttpd2dq", 16)])
            self.emit(f"{op} {self.src(size)}, {self.xr()}")
        elif k < 0.75:
            op = rng.choice(["cvtss2si", "cvttss2si", "cvtsd2si", "cvttsd2si"])
            w = rng.choice([32, 64])
            src = self.src(4 if "ss" in op else 8)
            self.emit(f"{op} {src}, {self.reg(w)[0]}")
        else:
            op = rng.choice(["cvtsi2ss", "cvtsi2sd"])
            w = rng.choice([32, 64])
            src = self.reg(w)[0] if rng.random() < 0.6 else self.smem(w // 8)
            self.emit(f"{op}{'l' if w == 32 else 'q'} {src}, {self.xr()}")

    def t_mxcsr(self):
        """A new rounding mode / FTZ / DAZ (exceptions masked), or STMXCSR."""
        rng = self.rng
        d = self.disp(4)
        if rng.random() < 0.3:
            self.emit(f"stmxcsr {d}(%rbp)")
            return
        self.emit(f"movl ${random_mxcsr(rng):#x}, {d}(%rbp)")
        self.emit(f"ldmxcsr {d}(%rbp)")

    SSE4_BINOP = ["pshufb", "phaddw", "phaddd", "phaddsw", "phsubw", "phsubd", "phsubsw",
                  "pmaddubsw", "pmulhrsw", "psignb", "psignw", "psignd", "pabsb", "pabsw",
                  "pabsd", "pmulld", "pmuldq", "pminsb", "pminsd", "pminuw", "pminud", "pmaxsb",
                  "pmaxsd", "pmaxuw", "pmaxud", "pcmpeqq", "pcmpgtq", "packusdw", "phminposuw"]
    SSE4_PMOV = {"bw": 8, "wd": 8, "dq": 8, "bd": 4, "wq": 4, "bq": 2}
    SSE4_IMM = {"palignr": 16, "pblendw": 16, "blendps": 16, "blendpd": 16, "mpsadbw": 16,
                "roundps": 16, "roundpd": 16, "roundss": 4, "roundsd": 8, "dpps": 16,
                "dppd": 16, "insertps": 4}

    def t_sse4(self):
        """SSSE3, SSE4.1 and SSE4.2 (the string compares write all six
        status flags, PTEST too: AF OF PF SF cleared)."""
        rng = self.rng
        x = self.xr()
        k = rng.randint(0, 9)
        if k <= 2:
            self.emit(f"{rng.choice(self.SSE4_BINOP)} {self.src(16)}, {x}")
        elif k == 3:
            form = rng.choice(list(self.SSE4_PMOV))
            self.emit(f"pmov{rng.choice('sz')}x{form} {self.src(self.SSE4_PMOV[form])}, {x}")
        elif k <= 5:
            op = rng.choice(list(self.SSE4_IMM))
            self.emit(f"{op} ${rng.randint(0, 255)}, {self.src(self.SSE4_IMM[op])}, {x}")
        elif k == 6:
            op = rng.choice(["pblendvb", "blendvps", "blendvpd"])
            self.emit(f"{op} %xmm0, {self.src(16)}, {x}")
        elif k == 7:
            op = rng.choice(["pcmpestri", "pcmpestrm", "pcmpistri", "pcmpistrm"])
            if op.startswith("pcmpe") and rng.random() < 0.7:
                for r in ("rax", "rdx"):
                    v = rng.choice([rng.randint(-20, 20), 1 << 32 | rng.randint(0, 20),
                                    -(1 << 32) + rng.randint(0, 20)])
                    self.emit(f"movabsq ${v & MASK[64]:#x}, %{r}")
            if op.startswith("pcmpe") and rng.random() < 0.3:
                op += "q"                         # REX.W: the lengths are RAX and RDX
            src = self.xmm_mem(False) if rng.random() < 0.35 else self.xr()
            self.emit(f"{op} ${rng.randint(0, 127)}, {src}, {x}", writes=STATUS)
        elif k == 8:
            if rng.random() < 0.3:
                # MASKMOVDQU (SSE2): selected bytes to (%rdi), anywhere in the scratch area
                self.emit(f"leaq {self.disp(16)}(%rbp), %rdi")
                self.emit(f"maskmovdqu {self.xr()}, {x}")
                return
            self.emit(f"ptest {self.src(16)}, {x}", writes=STATUS)
        else:
            op, w = rng.choice([("pextrb", 1), ("pextrd", 4), ("pextrq", 8), ("extractps", 4),
                                ("pinsrb", 1), ("pinsrd", 4), ("pinsrq", 8), ("pextrw", 2)])
            if op == "pextrw":
                self.emit(f"pextrw ${rng.randint(0, 255)}, {x}, {self.smem(2)}")
                return
            rw = 64 if op == "pextrq" or op == "pinsrq" else 32
            loc = self.smem(w) if rng.random() < 0.4 else self.reg(rw)[0]
            imm = rng.randint(0, 255)
            self.emit(f"{op} ${imm}, {x}, {loc}" if "ext" in op else f"{op} ${imm}, {loc}, {x}")

    def t_bits(self):
        """CRC32 and MOVBE (no flags), POPCNT/LZCNT/TZCNT."""
        rng = self.rng
        k = rng.randint(0, 3)
        if k <= 1:
            w = rng.choice([8, 16, 32, 64])
            dw = 64 if w == 64 else rng.choice([32, 64]) if w == 8 else 32
            src = self.reg(w)[0] if rng.random() < 0.6 else self.smem(w // 8)
            self.emit(f"crc32{SUFFIX[w]} {src}, {self.reg(dw)[0]}")
        elif k == 2:
            w = rng.choice([16, 32, 64])
            r, m = self.reg(w)[0], self.smem(w // 8)
            self.emit(f"movbe{SUFFIX[w]} {m}, {r}" if rng.random() < 0.5 else f"movbe{SUFFIX[w]} {r}, {m}")
        else:
            op = rng.choice(["popcnt", "lzcnt", "tzcnt"])
            w = rng.choice([16, 32, 64])
            src = self.reg(w)[0] if rng.random() < 0.6 else self.smem(w // 8)
            fl = dict(writes=STATUS, undef=0) if op == "popcnt" else flags_tzcnt()
            self.emit(f"{op}{SUFFIX[w]} {src}, {self.reg(w)[0]}", **fl)

    TEMPLATES = [("t_alu", 6), ("t_mov", 3), ("t_shift", 2), ("t_stack", 2), ("t_jcc", 2),
                 ("t_setcc", 1), ("t_sse", 3), ("t_sse_move", 14), ("t_sse_int", 12),
                 ("t_sse_shift", 5), ("t_sse_shuffle", 4), ("t_sse_fp", 16), ("t_sse_cmp", 6),
                 ("t_sse_cvt", 8), ("t_mxcsr", 4),
                 ("t_sse4", 12), ("t_bits", 4)]

    def t_fault(self):
        """An SSE end: #GP on a misaligned m128, or #XM from an unmasked
        exception (the runner sets CR4.OSXMMEXCPT), else the general ones."""
        rng = self.rng
        if self.undef:
            self.define_flags()
        k = rng.choice(["xm", "xm", "gp", "other"])
        if k == "other":
            return Gen.t_fault(self)
        if k == "gp":
            # only the aligned moves: this host's KVM intercepts #GP from ring 3
            # and hands the instruction to its emulator, which turns the
            # alignment #GP of any other SSE instruction (PADDD, ADDPS,
            # MOVNTDQ, PSHUFD: measured) into #UD - a KVM deviation
            op = rng.choice(["movdqa", "movaps", "movapd"])
            m = f"{16 * rng.randint(-8, 8) + rng.choice([1, 4, 8])}(%rbp)"
            self.emit(f"{op} {m}, %xmm2" if rng.random() < 0.5 else f"{op} %xmm3, {m}")
            return
        unmask = rng.choice([0x1 << 7, 0x4 << 7, 0x8 << 7, 0x20 << 7, 0x3f << 7])
        csr = (random_mxcsr(rng) & ~0x3f) & ~unmask
        d = self.disp(4)
        self.emit(f"movl ${csr:#x}, {d}(%rbp)")
        self.emit(f"ldmxcsr {d}(%rbp)")
        for _ in range(rng.randint(1, 4)):
            self.t_sse_fp()


def generate_sse(seed, nseq, length):
    """Ring-3 sequences: general and SSE templates, with initial SSE state."""
    rng = random.Random(seed)
    seqs = []
    for k in range(nseq):
        regs, rflags, scratch = initial_state(rng)
        scratch = bytearray(scratch)
        for off in range(0, SCRATCH_SIZE, 8):
            if rng.random() < 0.5:
                struct.pack_into("<Q", scratch, off, fp_qword(rng))
        fx = fx_image([fp_qword(rng) for _ in range(32)], random_mxcsr(rng))
        gen = SseGen(rng, f"x{k}")
        items = gen.generate(length, fault=rng.random() < 0.35)
        seqs.append(Sequence(f"sse seed {seed} seq {k}", items, regs, rflags, bytes(scratch),
                             gen.undef, fx=fx))
    return seqs


# ---- x87 (ring-3 sequences, like SSE: the real CPU is the reference) ----

def f80(x):
    """A Python float as the 80-bit extended format (10 bytes, little-endian)."""
    if x != x:
        return struct.pack("<QH", 0xc000000000000000, 0x7fff)
    sign = 0x8000 if math.copysign(1.0, x) < 0 else 0
    if x == 0:
        return struct.pack("<QH", 0, sign)
    if math.isinf(x):
        return struct.pack("<QH", 1 << 63, sign | 0x7fff)
    m, e = math.frexp(abs(x))              # 0.5 <= m < 1
    return struct.pack("<QH", int(m * (1 << 64)), sign | (e - 1 + 16383))


# 80-bit patterns the other formats cannot reach: denormals, pseudo-denormals,
# unnormals and pseudo-infinities/NaNs (unsupported: invalid operands), SNaN,
# QNaN indefinite, the largest and smallest normals
F80_RAW = [struct.pack("<QH", sig, se) for sig, se in (
    (0x0000000000000001, 0x0000), (0x4000000000000000, 0x8000), (0x8000000000000001, 0x0000),
    (0x4000000000000000, 0x3fff), (0x0000000000000000, 0x4000), (0x0000000000000000, 0x7fff),
    (0xa000000000000000, 0x7fff), (0xc000000000000000, 0xffff), (0xffffffffffffffff, 0x7ffe),
    (0x8000000000000000, 0x0001), (0xc90fdaa22168c235, 0x4000), (0x8000000000000000, 0x403e),
    (0xffffffffffffffff, 0x403d), (0x8000000000000000, 0xc03e))]

F80_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 10.0, -7.25, 1e-300, 1e300, 65536.5,
              2.5, -2.5, 3.5, 1e10, 4294967296.0, -2147483648.5, 9.2e18, 1.5e-310,
              math.pi, math.e, 1 / 3, 1e-5, 0.7, -0.3, 100.0, math.inf, -math.inf]


def f80_value(rng):
    k = rng.random()
    if k < 0.25:
        return rng.choice(F80_RAW)
    if k < 0.85:
        return f80(rng.choice(F80_VALUES))
    if k < 0.95:
        return f80(struct.unpack("<d", struct.pack("<Q", fp_qword(rng)))[0])
    return bytes(rng.getrandbits(8) for _ in range(10))


def random_fcw(rng):
    """Exceptions masked (or not, for #MF endings); any precision and rounding."""
    v = 0x37f
    if rng.random() < 0.5:
        v = (v & ~0xc00) | rng.getrandbits(2) << 10       # RC
    if rng.random() < 0.35:
        v = (v & ~0x300) | rng.choice([0, 2, 3]) << 8      # PC: single, double, extended
    return v


def x87_state(rng):
    """(fcw, fsw, abridged tags, ST0-ST7): some registers in use, a TOP."""
    top = rng.randint(0, 7)
    used = rng.randint(0, 8)
    tags = 0
    for j in range(used):                        # ST(0)..ST(used-1)
        tags |= 1 << ((top + j) & 7)
    fsw = top << 11 | (rng.getrandbits(4) & 0x7) << 8 | (rng.getrandbits(1) << 14)
    if rng.random() < 0.3:
        fsw |= rng.getrandbits(6) & 0x3f          # sticky flags (all masked)
    return random_fcw(rng), fsw, tags, [f80_value(rng) for _ in range(8)]


class X87Gen(SseGen):
    """Sequences of x87 arithmetic, loads and stores in every format,
    compares (FCOM* writes C0-C3, FCOMI* writes ZF PF CF and clears OF SF
    AF), the transcendental functions, stack handling (overflow and
    underflow happen: the initial state has some registers in use),
    control and environment instructions, rounding and precision control
    changes, and FCMOVcc (reads CF ZF PF), between general instructions.
    The x87 state starts random (registers, tags, TOP, condition codes)."""

    ARITH = ["fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr"]
    ONE = ["fchs", "fabs", "fsqrt", "frndint", "fscale", "fprem", "fprem1", "fxtract",
           "ftst", "fxam", "f2xm1", "fyl2x", "fyl2xp1", "fpatan", "fsin", "fcos", "fsincos",
           "fptan", "fincstp", "fdecstp", "fnop", "fld1", "fldz", "fldpi", "fldl2e", "fldl2t",
           "fldlg2", "fldln2", "fcompp", "fucompp"]

    def st(self):
        return f"%st({self.rng.randint(0, 7)})"

    def m(self, size):
        return f"{self.disp(size)}(%rbp)"

    def t_x87_load(self):
        rng = self.rng
        k = rng.randint(0, 5)
        if k == 0:
            self.emit(f"flds {self.m(4)}")
        elif k == 1:
            self.emit(f"fldl {self.m(8)}")
        elif k == 2:
            self.emit(f"fldt {self.m(10)}")
        elif k == 3:
            op, size = rng.choice([("filds", 2), ("fildl", 4), ("fildll", 8)])
            self.emit(f"{op} {self.m(size)}")
        elif k == 4:
            self.emit(f"fld {self.st()}")
        else:
            self.emit(f"fbld {self.m(10)}")

    def t_x87_arith(self):
        rng = self.rng
        op = rng.choice(self.ARITH)
        k = rng.randint(0, 5)
        if k == 0:
            self.emit(f"{op}s {self.m(4)}")
        elif k == 1:
            self.emit(f"{op}l {self.m(8)}")
        elif k == 2:
            self.emit(f"{op} {self.st()}, %st")
        elif k == 3:
            self.emit(f"{op} %st, {self.st()}")
        elif k == 4:
            self.emit(f"{op}p %st, %st({rng.randint(1, 7)})")
        else:
            iop = "fi" + op[1:]
            self.emit(f"{iop}{rng.choice(['s ' + self.m(2), 'l ' + self.m(4)])}")

    def t_x87_cmp(self):
        rng = self.rng
        k = rng.randint(0, 3)
        if k == 0:
            op = rng.choice(["fcom", "fcomp", "fucom", "fucomp"])
            self.emit(f"{op} {self.st()}")
        elif k == 1:
            op = rng.choice(["fcoms", "fcomps", "fcoml", "fcompl"])
            self.emit(f"{op} {self.m(8 if op.endswith('l') else 4)}")
        elif k == 2:
            op = rng.choice(["fcomi", "fcomip", "fucomi", "fucomip"])
            self.emit(f"{op} {self.st()}, %st", writes=STATUS)
        else:
            op = rng.choice(["ficoms", "ficomps", "ficoml", "ficompl"])
            self.emit(f"{op} {self.m(2 if op.endswith('s') else 4)}")

    def t_x87_one(self):
        rng = self.rng
        k = rng.random()
        if k < 0.75:
            self.emit(rng.choice(self.ONE))
        elif k < 0.85:
            self.emit(f"fxch {self.st()}")
        elif k < 0.92:
            self.emit(f"ffree {self.st()}")
        else:
            cc = rng.choice(["b", "e", "be", "u", "nb", "ne", "nbe", "nu"])
            self.emit(f"fcmov{cc} {self.st()}, %st", reads=CF | ZF | PF)

    def t_x87_store(self):
        rng = self.rng
        k = rng.randint(0, 5)
        if k == 0:
            op, size = rng.choice([("fsts", 4), ("fstl", 8), ("fstps", 4), ("fstpl", 8),
                                   ("fstpt", 10)])
            self.emit(f"{op} {self.m(size)}")
        elif k == 1:
            self.emit(f"{rng.choice(['fst', 'fstp'])} {self.st()}")
        elif k in (2, 3):
            op, size = rng.choice([("fists", 2), ("fistl", 4), ("fistps", 2), ("fistpl", 4),
                                   ("fistpll", 8), ("fisttps", 2), ("fisttpl", 4),
                                   ("fisttpll", 8)])
            self.emit(f"{op} {self.m(size)}")
        elif k == 4:
            self.emit(f"fbstp {self.m(10)}")
        else:
            # an FP-interesting value for a later load
            r = rng.choice(FREE)
            self.emit(f"movabsq ${fp_qword(rng):#x}, %{r}")
            self.emit(f"movq %{r}, {self.m(8)}")

    def forget_pointers(self, d, fx=False):
        """Zero the x87 instruction and data pointers and the last opcode in
        the image just saved at d(%rbp), where CPUs differ: Intel saves FCS
        and FDS as 0 and FDP and FOP only at an unmasked exception (as emu
        does), AMD saves the selectors and FDP and FOP of every x87
        instruction, and its FXRSTOR loads none of them while FSW.ES is
        clear. FXSAVE's MXCSR_MASK too: the MXCSR bits a CPU has (AMD's
        have MM, bit 17). The rest of the image is compared."""
        # FXSAVE: FOP at 6, FIP (FCS) at 8, FDP (FDS) at 16, MXCSR_MASK at
        # 28; FNSTENV's 32-bit image: FIP at 12, FCS and FOP at 16, FDP at
        # 20, FDS at 24
        for off, width in ([(6, "w"), (8, "q"), (16, "q"), (28, "l")] if fx else
                           [(12, "q"), (20, "q")]):
            self.emit(f"mov{width} $0, {d + off}(%rbp)")

    def t_x87_ctrl(self):
        rng = self.rng
        k = rng.randint(0, 9)
        if k == 0:
            d = self.disp(2)
            self.emit(f"movw ${random_fcw(rng):#x}, {d}(%rbp)")
            self.emit(f"fldcw {d}(%rbp)")
        elif k == 1:
            self.emit(f"fnstcw {self.m(2)}")
        elif k == 2:
            self.emit(rng.choice([f"fnstsw {self.m(2)}", "fnstsw %ax"]))
        elif k == 3:
            self.emit("fnclex")
        elif k == 4:
            self.emit("fninit")
        elif k in (5, 6):
            # an environment round trip (FNSTENV masks every exception)
            d = self.disp(28)
            self.emit(f"fnstenv {d}(%rbp)")
            self.forget_pointers(d)
            self.emit(f"fldenv {d}(%rbp)")
        elif k == 7:
            d = self.disp(108)
            self.emit(f"fnsave {d}(%rbp)")
            self.forget_pointers(d)
            if rng.random() < 0.7:
                self.emit(f"frstor {d}(%rbp)")
        elif k == 8:
            # an FXSAVE image, maybe changed in its x87 part, back
            d = rng.randint(-DATA_REACH // 16, (DATA_REACH - 512) // 16) * 16
            w = rng.choice(["", "64"])
            self.emit(f"fxsave{w} {d}(%rbp)")
            self.forget_pointers(d, fx=True)
            if rng.random() < 0.5:
                self.emit(f"movw ${random_fcw(rng):#x}, {d}(%rbp)")
                self.emit(f"movb ${rng.getrandbits(8):#x}, {d + 4}(%rbp)")
            self.emit(f"fxrstor{w} {d}(%rbp)")
        elif k == 9:
            self.emit("fwait")

    TEMPLATES = [("t_alu", 4), ("t_mov", 2), ("t_jcc", 1), ("t_setcc", 1), ("t_sse_fp", 2),
                 ("t_x87_load", 10), ("t_x87_arith", 12), ("t_x87_cmp", 5), ("t_x87_one", 10),
                 ("t_x87_store", 8), ("t_x87_ctrl", 4)]

    def t_fault(self):
        """An x87 end: #MF from an unmasked exception at the next waiting
        instruction (the runner sets CR0.NE), or the SSE/general ones."""
        rng = self.rng
        if rng.random() < 0.4:
            return SseGen.t_fault(self)
        if self.undef:
            self.define_flags()
        d = self.disp(2)
        unmask = rng.choice([0x01, 0x04, 0x08, 0x10, 0x20, 0x3f, 0x02])
        self.emit(f"movw ${random_fcw(rng) & ~unmask:#x}, {d}(%rbp)")
        self.emit(f"fldcw {d}(%rbp)")
        for _ in range(rng.randint(1, 4)):
            rng.choice([self.t_x87_arith, self.t_x87_load, self.t_x87_store, self.t_x87_one])()


def generate_x87(seed, nseq, length):
    """Ring-3 sequences of x87 (and some general/SSE) instructions."""
    rng = random.Random(seed)
    seqs = []
    for k in range(nseq):
        regs, rflags, scratch = initial_state(rng)
        scratch = bytearray(scratch)
        for off in range(0, SCRATCH_SIZE - 16, 16):
            if rng.random() < 0.5:
                struct.pack_into("<Q", scratch, off, fp_qword(rng))
            elif rng.random() < 0.5:
                scratch[off:off + 10] = f80_value(rng)
        fx = fx_image([fp_qword(rng) for _ in range(32)], random_mxcsr(rng), x87_state(rng))
        gen = X87Gen(rng, f"f{k}")
        items = gen.generate(length, fault=rng.random() < 0.35)
        seqs.append(Sequence(f"x87 seed {seed} seq {k}", items, regs, rflags, bytes(scratch),
                             gen.undef, fx=fx))
    return seqs


# ---- MMX (ring-3 sequences, the real CPU the reference) ----

class MmxGen(X87Gen):
    """Sequences of MMX-register instructions (moves to and from GPRs,
    memory and XMM registers, packed integer, SSE/SSE2/SSSE3 additions,
    shuffles, inserts/extracts, MASKMOVQ, the CVT*PI* conversions, EMMS)
    among x87 loads, stores, arithmetic and environment/FNSAVE/FXSAVE round
    trips, so the aliasing of MMi on the x87 registers, TOP and the tags
    meet every transition; endings include #MF at an MMX instruction."""

    MMX_INT = ["paddb", "paddw", "paddd", "paddq", "paddsb", "paddsw", "paddusb", "paddusw",
               "psubb", "psubw", "psubd", "psubq", "psubsb", "psubsw", "psubusb", "psubusw",
               "pand", "pandn", "por", "pxor", "pcmpeqb", "pcmpeqw", "pcmpeqd", "pcmpgtb",
               "pcmpgtw", "pcmpgtd", "pmullw", "pmulhw", "pmulhuw", "pmuludq", "pmaddwd",
               "psadbw", "pavgb", "pavgw", "pminub", "pmaxub", "pminsw", "pmaxsw",
               "punpckhbw", "punpckhwd", "punpckhdq", "packsswb", "packssdw", "packuswb"]
    MMX_LOW_UNPACK = ["punpcklbw", "punpcklwd", "punpckldq"]     # m32 sources
    MMX_SSSE3 = ["pshufb", "phaddw", "phaddd", "phaddsw", "phsubw", "phsubd", "phsubsw",
                 "pmaddubsw", "pmulhrsw", "psignb", "psignw", "psignd", "pabsb", "pabsw",
                 "pabsd"]

    def mr(self):
        return f"%mm{self.rng.randint(0, 7)}"

    def msrc(self, size=8):
        return self.smem(size) if self.rng.random() < 0.35 else self.mr()

    def t_mmx_int(self):
        rng = self.rng
        if rng.random() < 0.15:
            self.emit(f"{rng.choice(self.MMX_LOW_UNPACK)} {self.msrc(4)}, {self.mr()}")
        else:
            self.emit(f"{rng.choice(self.MMX_INT)} {self.msrc()}, {self.mr()}")

    def t_mmx_ssse3(self):
        rng = self.rng
        if rng.random() < 0.2:
            self.emit(f"palignr ${rng.randint(0, 255)}, {self.msrc()}, {self.mr()}")
        else:
            self.emit(f"{rng.choice(self.MMX_SSSE3)} {self.msrc()}, {self.mr()}")

    def t_mmx_shift(self):
        rng = self.rng
        op = rng.choice(["psllw", "pslld", "psllq", "psrlw", "psrld", "psrlq", "psraw", "psrad"])
        n = rng.choice([0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 255, rng.randint(0, 255)])
        if rng.random() < 0.5:
            self.emit(f"{op} ${n}, {self.mr()}")
        else:
            self.emit(f"{op} {self.msrc()}, {self.mr()}")

    def t_mmx_move(self):
        rng = self.rng
        m, x = self.mr(), self.xr()
        k = rng.randint(0, 10)
        if k <= 1:
            r = self.reg(64)[0]
            self.emit(rng.choice([f"movq {r}, {m}", f"movq {m}, {r}", f"movq {self.mr()}, {m}",
                                  f"movq {self.smem(8)}, {m}", f"movq {m}, {self.smem(8)}"]))
        elif k == 2:
            r = self.reg(32)[0]
            self.emit(rng.choice([f"movd {r}, {m}", f"movd {m}, {r}", f"movd {self.smem(4)}, {m}",
                                  f"movd {m}, {self.smem(4)}"]))
        elif k == 3:
            self.emit(rng.choice([f"movq2dq {m}, {x}", f"movdq2q {x}, {m}"]))
        elif k == 4:
            self.emit(f"movntq {m}, {self.smem(8)}")
        elif k == 5:
            self.emit(f"pshufw ${rng.randint(0, 255)}, {self.msrc()}, {m}")
        elif k == 6:
            s = self.reg(32)[0] if rng.random() < 0.5 else self.smem(2)
            self.emit(f"pinsrw ${rng.randint(0, 255)}, {s}, {m}")
        elif k == 7:
            self.emit(f"pextrw ${rng.randint(0, 255)}, {m}, {self.reg(32)[0]}")
        elif k == 8:
            self.emit(f"pmovmskb {m}, {self.reg(rng.choice([32, 64]))[0]}")
        elif k == 9:
            # MASKMOVQ: selected bytes to (%rdi), anywhere in the scratch area
            self.emit(f"leaq {self.disp(8)}(%rbp), %rdi")
            self.emit(f"maskmovq {self.mr()}, {m}")
        else:
            # an FP-interesting constant through a GPR
            r = rng.choice(FREE)
            self.emit(f"movabsq ${fp_qword(rng):#x}, %{r}")
            self.emit(f"movq %{r}, {m}")

    def t_mmx_cvt(self):
        rng = self.rng
        k = rng.randint(0, 2)
        if k == 0:
            op = rng.choice(["cvtpi2ps", "cvtpi2pd"])
            self.emit(f"{op} {self.msrc()}, {self.xr()}")
        elif k == 1:
            op = rng.choice(["cvtps2pi", "cvttps2pi"])
            self.emit(f"{op} {self.src(8)}, {self.mr()}")
        else:
            op = rng.choice(["cvtpd2pi", "cvttpd2pi"])
            self.emit(f"{op} {self.src(16)}, {self.mr()}")

    def t_emms(self):
        self.emit("emms")

    TEMPLATES = [("t_alu", 3), ("t_mov", 2), ("t_jcc", 1), ("t_sse_move", 2),
                 ("t_x87_load", 4), ("t_x87_arith", 3), ("t_x87_store", 3), ("t_x87_ctrl", 3),
                 ("t_mmx_int", 14), ("t_mmx_shift", 5), ("t_mmx_move", 12),
                 ("t_mmx_ssse3", 6), ("t_mmx_cvt", 4), ("t_emms", 2)]

    def t_fault(self):
        """#MF at an MMX instruction after an unmasked x87 exception, or
        the x87/SSE/general endings."""
        rng = self.rng
        if rng.random() < 0.5:
            return X87Gen.t_fault(self)
        if self.undef:
            self.define_flags()
        d = self.disp(2)
        self.emit("emms")                                      # room for two loads
        self.emit(f"movw ${0x37f & ~0x04:#x}, {d}(%rbp)")     # divide by zero unmasked
        self.emit(f"fldcw {d}(%rbp)")
        self.emit("fldz")
        self.emit("fld1")
        self.emit("fdivp %st, %st(1)")
        self.t_mmx_int()


def generate_mmx(seed, nseq, length):
    """Ring-3 sequences of MMX instructions among x87 ones."""
    rng = random.Random(seed)
    seqs = []
    for k in range(nseq):
        regs, rflags, scratch = initial_state(rng)
        scratch = bytearray(scratch)
        for off in range(0, SCRATCH_SIZE - 16, 16):
            if rng.random() < 0.5:
                struct.pack_into("<Q", scratch, off, fp_qword(rng))
            elif rng.random() < 0.3:
                scratch[off:off + 10] = f80_value(rng)
        fx = fx_image([fp_qword(rng) for _ in range(32)], random_mxcsr(rng), x87_state(rng))
        gen = MmxGen(rng, f"m{k}")
        items = gen.generate(length, fault=rng.random() < 0.35)
        seqs.append(Sequence(f"mmx seed {seed} seq {k}", items, regs, rflags, bytes(scratch),
                             gen.undef, fx=fx))
    return seqs


def handpicked(name, lines, regs=None, rflags=FIXED1, scratch=None, seed=0):
    """A named sequence from (asm, flag-effects dict) pairs or plain asm
    strings (no flag effect); regs overrides the seeded initial values."""
    rng = random.Random(seed)
    r0, _, s0 = initial_state(rng)
    for k, v in (regs or {}).items():
        r0[REGS.index(k)] = v & MASK[64]
    items = []
    undef = 0
    for ln in lines:
        text, kw = (ln, {}) if isinstance(ln, str) else ln
        if text.endswith(":"):
            items.append(text)
            continue
        ins = Insn(text, **kw)
        undef = (undef & ~ins.writes) | ins.undef
        ins.undef_after = undef
        items.append(ins)
    return Sequence(name, items, r0, rflags, scratch if scratch is not None else s0)


# ---- assembling ----

def assemble(seqs, workdir):
    """Assemble every sequence with one `as` run; fill .code and offsets."""
    lines = ["\t.text"]
    for k, s in enumerate(seqs):
        lines.append(f"s{k}_start:")
        n = 0
        for it in s.items:
            if isinstance(it, Insn):
                lines.append(f"s{k}_i{n}:\t{it.text}")
                n += 1
            else:
                lines.append(it)
        lines.append(f"s{k}_end:")
    src = os.path.join(workdir, "diff.s")
    obj = os.path.join(workdir, "diff.o")
    binf = os.path.join(workdir, "diff.bin")
    with open(src, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["as", "--64", "-o", obj, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"as failed:\n{r.stderr[:4000]}")
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, binf], check=True)
    with open(binf, "rb") as f:
        text = f.read()
    syms = {}
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for m in re.finditer(r"^([0-9a-f]+) \w (s\d+_\w+)$", out, re.M):
        syms[m.group(2)] = int(m.group(1), 16)
    for k, s in enumerate(seqs):
        start, end = syms[f"s{k}_start"], syms[f"s{k}_end"]
        s.code = text[start:end]
        if len(s.code) > CODE_MAX - TRAILER_LEN:
            raise RuntimeError(f"{s.name}: {len(s.code)} bytes of code do not fit")
        insns = s.insns
        offs = [syms[f"s{k}_i{n}"] - start for n in range(len(insns))] + [end - start]
        s._by_off = {}
        for n, ins in enumerate(insns):
            ins.offset = offs[n]
            ins.length = offs[n + 1] - offs[n]
            s._by_off[ins.offset] = ins
    return seqs


def blob(seqs, ring3=False):
    """The --initrd image guests/diff_runner.c reads (ring3: the SSE format,
    every sequence with its initial FXSAVE image, run in ring 3)."""
    version = BLOB_VERSION_RING3 if ring3 else BLOB_VERSION
    out = bytearray(struct.pack("<QIIQQII", BLOB_MAGIC, version, len(seqs), CODE_ADDR,
                                SCRATCH_ADDR, SCRATCH_SIZE, CODE_MAX))
    for s in seqs:
        out += struct.pack("<II", len(s.code), 0)
        out += struct.pack("<16Q", *s.regs)
        out += struct.pack("<Q", s.rflags)
        if ring3:
            out += s.fx if s.fx is not None else fx_image([0] * 32, MXCSR_DEFAULT)
        out += s.scratch
        out += s.code
        out += b"\0" * (-len(s.code) % 8)
    return bytes(out)


def disassemble(code, offset, length):
    """objdump's text for the instruction at offset (for failure messages)."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        r = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64",
                            f"--adjust-vma={CODE_ADDR:#x}",
                            f"--start-address={CODE_ADDR + offset:#x}",
                            f"--stop-address={CODE_ADDR + offset + length:#x}", f.name],
                           capture_output=True, text=True)
    for ln in r.stdout.splitlines():
        m = re.match(r"\s*[0-9a-f]+:\s+(?:[0-9a-f]{2} )+\s*(.*)", ln)
        if m:
            return m.group(1).strip()
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--nseq", type=int, default=20)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--out", required=True)
    ap.add_argument("--asm", help="also write the assembly source here")
    ap.add_argument("--sse", action="store_true", help="SSE sequences for ring 3")
    ap.add_argument("--x87", action="store_true", help="x87 sequences for ring 3")
    ap.add_argument("--mmx", action="store_true", help="MMX sequences for ring 3")
    args = ap.parse_args()
    gen = generate_mmx if args.mmx else generate_x87 if args.x87 else \
        generate_sse if args.sse else generate
    seqs = gen(args.seed, args.nseq, args.length)
    with tempfile.TemporaryDirectory() as d:
        assemble(seqs, d)
        if args.asm:
            with open(os.path.join(d, "diff.s")) as f, open(args.asm, "w") as o:
                o.write(f.read())
    with open(args.out, "wb") as f:
        f.write(blob(seqs, ring3=args.sse or args.x87 or args.mmx))


if __name__ == "__main__":
    main()
