/*
 * parse_int.h - helpers shared by the parse_*.c files only.
 */
#ifndef CB_PARSE_INT_H
#define CB_PARSE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "parse.h"

bool parse_is_digit(char c);
bool parse_is_alpha(char c);

/* Reads the run of digits at *p (which starts with a digit) into *out and
 * advances *p; false on overflow of uint64_t. */
bool parse_read_digits(const char **p, uint64_t *out);

/* Writes one sentence into why (when why is not NULL). */
void parse_why(char why[PARSE_WHY_LEN], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
