// Small file helpers shared by every module: whole-file reads, atomic writes, directories.
#ifndef PIONRL_FILEIO_H
#define PIONRL_FILEIO_H

#include <stddef.h>

#include "core/error.h"

// Reads a whole file into a NUL-terminated malloc'd buffer (len excludes the NUL). NULL on error.
char *file_read_all(const char *path, size_t *len, Error *err);
// Writes data to path atomically: path.tmp.<pid>, fsync, rename. The old file survives a failure.
int file_write_atomic(const char *path, const void *data, size_t len, Error *err);
// Creates a directory and its parents (like mkdir -p).
int dir_create(const char *path, Error *err);
// Removes a file or a directory tree (like rm -rf); a missing path is not an error.
int path_remove_recursive(const char *path, Error *err);
int file_exists(const char *path);
int dir_exists(const char *path);
// snprintf into out (size n) of "dir/name"; -1 when it does not fit.
int path_join(char *out, size_t n, const char *dir, const char *name);

#endif
