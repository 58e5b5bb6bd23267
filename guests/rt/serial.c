/* guests/rt/serial.c — 16550 UART output and a small printf. */
#include "guests/rt/serial.h"

#include <stdbool.h>
#include <stdint.h>

#include "guests/rt/io.h"
#include "guests/rt/string.h"

/* 16550 registers, offsets from the base port */
#define UART_THR 0          /* transmit holding (DLAB=0) */
#define UART_DLL 0          /* divisor low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1          /* divisor high (DLAB=1) */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LCR_DLAB 0x80
#define LCR_8N1  0x03
#define FCR_ENABLE_CLEAR 0x07
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_THRE 0x20
#define UART_DIVISOR_115200 1

/* Bounded so a missing UART (reads 0xff or 0) cannot hang the guest. */
#define UART_THRE_POLLS 100000

static volatile uint32_t print_lock;

void serial_init(void)
{
	outb(RT_COM1 + UART_IER, 0);
	outb(RT_COM1 + UART_LCR, LCR_DLAB);
	outb(RT_COM1 + UART_DLL, UART_DIVISOR_115200);
	outb(RT_COM1 + UART_DLM, 0);
	outb(RT_COM1 + UART_LCR, LCR_8N1);
	outb(RT_COM1 + UART_FCR, FCR_ENABLE_CLEAR);
	outb(RT_COM1 + UART_MCR, MCR_DTR_RTS_OUT2);
}

void serial_putc(char c)
{
	for (int i = 0; i < UART_THRE_POLLS; i++)
		if (inb(RT_COM1 + UART_LSR) & LSR_THRE)
			break;
	outb(RT_COM1 + UART_THR, (uint8_t)c);
}

struct out {
	char *buf;
	size_t size, len;       /* len counts every char, even those cut off */
};

static void out_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		out_char(o, c);
}

struct spec {
	bool zero, left;
	int width;
	int lng;                /* 0 int, 1 long, 2 long long */
};

static void out_str(struct out *o, const struct spec *sp, const char *s, size_t n)
{
	int pad = sp->width > (int)n ? sp->width - (int)n : 0;

	if (!sp->left)
		out_pad(o, ' ', pad);
	for (size_t i = 0; i < n; i++)
		out_char(o, s[i]);
	if (sp->left)
		out_pad(o, ' ', pad);
}

static void out_num(struct out *o, const struct spec *sp, uint64_t v, unsigned base,
		    bool neg, bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, plen = (int)strlen(prefix) + (neg ? 1 : 0);

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	int pad = sp->width > n + plen ? sp->width - n - plen : 0;
	if (!sp->left && !sp->zero)
		out_pad(o, ' ', pad);
	if (neg)
		out_char(o, '-');
	while (*prefix)
		out_char(o, *prefix++);
	if (!sp->left && sp->zero)
		out_pad(o, '0', pad);
	while (n)
		out_char(o, tmp[--n]);
	if (sp->left)
		out_pad(o, ' ', pad);
}

static const char *parse_spec(const char *f, struct spec *sp)
{
	*sp = (struct spec){ 0 };
	for (;; f++) {
		if (*f == '0')
			sp->zero = true;
		else if (*f == '-')
			sp->left = true;
		else
			break;
	}
	while (*f >= '0' && *f <= '9')
		sp->width = sp->width * 10 + (*f++ - '0');
	for (; *f == 'l' || *f == 'z'; f++)
		sp->lng += *f == 'z' ? 2 : 1;
	return f;
}

static uint64_t arg_unsigned(const struct spec *sp, va_list *ap)
{
	if (sp->lng >= 2)
		return va_arg(*ap, unsigned long long);
	if (sp->lng == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static int64_t arg_signed(const struct spec *sp, va_list *ap)
{
	if (sp->lng >= 2)
		return va_arg(*ap, long long);
	if (sp->lng == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

static void out_conv(struct out *o, const struct spec *sp, char conv, va_list *ap)
{
	switch (conv) {
	case 'd': case 'i': {
		int64_t v = arg_signed(sp, ap);
		out_num(o, sp, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, false, "");
		break;
	}
	case 'u': out_num(o, sp, arg_unsigned(sp, ap), 10, false, false, ""); break;
	case 'x': out_num(o, sp, arg_unsigned(sp, ap), 16, false, false, ""); break;
	case 'X': out_num(o, sp, arg_unsigned(sp, ap), 16, false, true, ""); break;
	case 'o': out_num(o, sp, arg_unsigned(sp, ap), 8, false, false, ""); break;
	case 'p': out_num(o, sp, (uintptr_t)va_arg(*ap, void *), 16, false, false, "0x"); break;
	case 'c': {
		char c = (char)va_arg(*ap, int);
		out_str(o, sp, &c, 1);
		break;
	}
	case 's': {
		const char *s = va_arg(*ap, const char *);
		if (!s)
			s = "(null)";
		out_str(o, sp, s, strlen(s));
		break;
	}
	case '%': out_char(o, '%'); break;
	default: out_char(o, '%'); out_char(o, conv); break;
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	va_list aq;
	struct spec sp;

	va_copy(aq, ap);
	while (*fmt) {
		if (*fmt != '%') {
			out_char(&o, *fmt++);
			continue;
		}
		fmt = parse_spec(fmt + 1, &sp);
		if (!*fmt)
			break;
		out_conv(&o, &sp, *fmt++, &aq);
	}
	va_end(aq);
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void lock_print(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		while (print_lock)
			cpu_relax();
}

static void unlock_print(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

int vprintf(const char *fmt, va_list ap)
{
	char buf[256];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	/* interrupts off while holding the lock: a handler printing on this
	 * CPU would otherwise wait for itself forever */
	bool irq = irq_save();

	lock_print();
	for (const char *p = buf; *p; p++)
		serial_putc(*p);
	unlock_print();
	irq_restore(irq);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
