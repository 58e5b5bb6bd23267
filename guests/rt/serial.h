/* guests/rt/serial.h — the console: a 16550 UART at COM1 (0x3f8) driven
 * like real hardware, and printf on top of it. Output of one printf call
 * is never interleaved with another CPU's (a spinlock with interrupts off). */
#ifndef RT_SERIAL_H
#define RT_SERIAL_H

#include <stdarg.h>
#include <stddef.h>

#define RT_COM1 0x3f8

void serial_init(void);
void serial_putc(char c);

/* %d %i %u %x %X %o %s %c %p %%, flags '0' '-', a width, length l ll z. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
