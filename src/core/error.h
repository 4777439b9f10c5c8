// Error reporting: library functions return 0 on success and -1 on failure, filling an Error with
// a message that names the file/field/tensor involved. Callers add context with error_prefix.
#ifndef PIONRL_ERROR_H
#define PIONRL_ERROR_H

#ifdef __cplusplus
extern "C" {  // the CUDA sources (C++) report errors through these too
#endif

typedef struct {
    char msg[1024];
} Error;

// Formats the message into err (err may be NULL) and returns -1, so `return error_set(err, ...)`.
int error_set(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prepends "context: " to the existing message; returns -1.
int error_prefix(Error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
