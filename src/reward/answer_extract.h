// Finding the final answer in a completion: the last \boxed{...} / \fbox{...} (brace matching,
// nested), the text after "####", and the last number. All scans are linear in the input length,
// so a 1 MB completion with thousands of unbalanced braces costs one pass.
#ifndef PIONRL_ANSWER_EXTRACT_H
#define PIONRL_ANSWER_EXTRACT_H

#include <stddef.h>

// Content of the last complete \boxed{...} or \fbox{...} (the outermost one when nested; also
// "\boxed 5"). Returns 1 and sets *start/*len (offsets into text), or 0 when there is none.
int answer_last_boxed(const char *text, size_t len, size_t *start, size_t *out_len);
// The same answer by one full forward scan. answer_last_boxed tries a cheaper search from the end
// first and falls back to this; exported so tests and the fuzzer can check that both agree.
int answer_last_boxed_scan(const char *text, size_t len, size_t *start, size_t *out_len);

// Text after the last "####" up to the end of that line, trimmed. Returns 1 when found.
int answer_after_hashes(const char *text, size_t len, size_t *start, size_t *out_len);

// The last number in text: optional sign, digits with thousands commas (1,234), decimals. A '.'
// that ends a sentence is not part of it. Returns 1 when found and sets the span (sign included).
int answer_last_number(const char *text, size_t len, size_t *start, size_t *out_len);

// Parses a GSM8K-style number: drops '$', thousands commas, spaces, a trailing '.', and trailing
// unit words ("18 dollars"); accepts "-5", "5.00", "1,234.5", "\$18", "10{,}080", "10,\!080".
// Returns 0 and sets *value, or -1 when s is not a number.
int answer_parse_number(const char *s, size_t len, double *value);

#endif
