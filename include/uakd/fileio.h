/* Whole-file reading with a size cap, and atomic file replacement.
 *
 * An atomic write puts the new content in a temporary file in the destination's directory,
 * checks every write, flushes and fsyncs it, renames it over the destination and fsyncs the
 * directory. A reader therefore sees either the complete old file or the complete new one,
 * even after a crash or power loss; on any failure the temporary file is removed and the old
 * file is left as it was. */
#ifndef UAKD_FILEIO_H
#define UAKD_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "uakd/status.h"

/* Reads a regular file whole into a new buffer (free with free()). The buffer has one extra
 * byte set to '\0' after the content so text parsers may treat it as a string. Files larger
 * than max_bytes are refused with UAKD_EFORMAT before anything is allocated. */
uakd_status uakd_read_file(const char *path, size_t max_bytes, void **data, size_t *size);

/* Writes n bytes to f; a short write is UAKD_EIO with a message naming path. */
uakd_status uakd_fwrite_all(FILE *f, const void *data, size_t n, const char *path);

/* Produces the content of a file being written atomically: writes to f (use uakd_fwrite_all)
 * and returns UAKD_OK, or a failing status that aborts the write. path is the destination
 * (for messages). */
typedef uakd_status (*uakd_write_fn)(FILE *f, const char *path, void *user);

/* Replaces path atomically with the content produced by fn (see the top of this header). */
uakd_status uakd_write_atomic(const char *path, uakd_write_fn fn, void *user);

/* uakd_write_atomic for a content already in memory. */
uakd_status uakd_write_file_atomic(const char *path, const void *data, size_t n);

#endif
