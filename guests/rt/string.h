/* guests/rt/string.h — the few libc string and memory functions a
 * freestanding guest needs (gcc may emit calls to memcpy/memset itself). */
#ifndef RT_STRING_H
#define RT_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
