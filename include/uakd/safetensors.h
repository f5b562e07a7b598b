/* safetensors files: a validating reader, a writer, and typed metadata for checkpoints.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON (UTF-8, may end with spaces),
 * then the data section. The JSON maps tensor names to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data section) plus an optional "__metadata__" object
 * of string -> string. The reader refuses anything the format does not allow: a header longer
 * than UAKD_SAFETENSORS_MAX_HEADER or than the file, malformed JSON or UTF-8, NUL characters,
 * unknown keys, unknown
 * dtypes, empty or duplicate names, shape * dtype size != end - begin (with overflow checks),
 * offsets that leave holes or overlap, and bytes after the last tensor. When the metadata holds
 * "data_crc32" the data section's CRC-32 must match it (uakd's checkpoints always record it).
 *
 * Tensor data is little-endian and may be unaligned inside the file: copy it with memcpy or
 * uakd_safetensors_read_f32, never through a cast pointer. Names follow PyTorch state_dict
 * conventions ("backbone.stage3.unit2.conv1.weight") so a file loads with
 * model.load_state_dict in PyTorch. */
#ifndef UAKD_SAFETENSORS_H
#define UAKD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/status.h"

#define UAKD_SAFETENSORS_MAX_HEADER ((size_t)100 << 20) /* bytes of JSON header */
#define UAKD_SAFETENSORS_MAX_FILE ((size_t)1 << 36)     /* 64 GiB: files read whole */
#define UAKD_SAFETENSORS_MAX_DIMS 8

typedef enum uakd_dtype {
    UAKD_DTYPE_F64,
    UAKD_DTYPE_F32,
    UAKD_DTYPE_F16,
    UAKD_DTYPE_BF16,
    UAKD_DTYPE_I64,
    UAKD_DTYPE_I32,
    UAKD_DTYPE_I16,
    UAKD_DTYPE_I8,
    UAKD_DTYPE_U64,
    UAKD_DTYPE_U32,
    UAKD_DTYPE_U16,
    UAKD_DTYPE_U8,
    UAKD_DTYPE_BOOL,
    UAKD_DTYPE_COUNT
} uakd_dtype;

/* "F32", "BF16", ... as written in the header. */
const char *uakd_dtype_name(uakd_dtype dt);
/* Bytes per element (BOOL: 1). */
size_t uakd_dtype_size(uakd_dtype dt);

typedef struct uakd_st_tensor {
    const char *name;
    uakd_dtype dtype;
    int ndim;                                  /* 0 for a scalar */
    int64_t shape[UAKD_SAFETENSORS_MAX_DIMS];
    size_t numel;                              /* product of shape (1 for a scalar) */
    size_t nbytes;                             /* numel * dtype size */
    const void *data;                          /* little-endian, possibly unaligned */
} uakd_st_tensor;

/* ---- reading ---- */

typedef struct uakd_safetensors uakd_safetensors;

/* Reads and validates a whole file. */
uakd_status uakd_safetensors_open(const char *path, uakd_safetensors **out);
/* Validates a file image in memory. The buffer is borrowed: it must outlive the result. label
 * names the source in messages. */
uakd_status uakd_safetensors_parse(const void *buf, size_t len, const char *label, uakd_safetensors **out);
void uakd_safetensors_free(uakd_safetensors *st);

/* Tensors in header order. */
size_t uakd_safetensors_count(const uakd_safetensors *st);
const uakd_st_tensor *uakd_safetensors_at(const uakd_safetensors *st, size_t i);
/* NULL when absent. */
const uakd_st_tensor *uakd_safetensors_find(const uakd_safetensors *st, const char *name);

/* Converts a floating-point tensor (F32, F16, BF16, F64) to float32 into dst (t->numel values).
 * F64 values beyond the float range become +-inf. Other dtypes: UAKD_EUNSUPPORTED. */
uakd_status uakd_st_tensor_to_f32(const uakd_st_tensor *t, float *dst);

/* Looks up name, checks that its shape is exactly shape[0..ndim), converts it to float32 into
 * dst. A missing tensor or another shape fails with a message naming both shapes. */
uakd_status uakd_safetensors_read_f32(const uakd_safetensors *st, const char *name, int ndim,
                                      const int64_t *shape, float *dst);

/* Metadata (string -> string). meta returns NULL when the key is absent. */
size_t uakd_safetensors_meta_count(const uakd_safetensors *st);
const char *uakd_safetensors_meta_key(const uakd_safetensors *st, size_t i);
const char *uakd_safetensors_meta(const uakd_safetensors *st, const char *key);
/* Typed metadata: the key must exist and hold exactly the written form (decimal u64, a double
 * as written by set_meta_f64, lowercase hex of exactly n bytes). */
uakd_status uakd_safetensors_meta_u64(const uakd_safetensors *st, const char *key, uint64_t *v);
uakd_status uakd_safetensors_meta_f64(const uakd_safetensors *st, const char *key, double *v);
uakd_status uakd_safetensors_meta_hex(const uakd_safetensors *st, const char *key, void *bytes, size_t n);

/* Checks that the metadata's "format" is tag and "format_version" is 1..max_version (stored in
 * *version when not NULL). Refuses foreign files (no tag, another tag, a newer version) with a
 * message saying what the file seems to be. */
uakd_status uakd_safetensors_expect_format(const uakd_safetensors *st, const char *tag,
                                           uint64_t max_version, uint64_t *version);

/* ---- writing ---- */

typedef struct uakd_safetensors_writer uakd_safetensors_writer;

uakd_status uakd_safetensors_writer_new(uakd_safetensors_writer **out);
void uakd_safetensors_writer_free(uakd_safetensors_writer *w);

/* Adds a tensor. The name is copied; the data (numel * dtype size bytes, little-endian) is
 * borrowed and must stay valid until the last write/to_memory call. Tensors are written in the
 * order they are added. Empty, duplicate and "__metadata__" names are refused. */
uakd_status uakd_safetensors_writer_add(uakd_safetensors_writer *w, const char *name, uakd_dtype dtype,
                                        int ndim, const int64_t *shape, const void *data);
uakd_status uakd_safetensors_writer_add_f32(uakd_safetensors_writer *w, const char *name, int ndim,
                                            const int64_t *shape, const float *data);

/* Sets (or replaces) a metadata entry; keys keep their first insertion order. */
uakd_status uakd_safetensors_writer_set_meta(uakd_safetensors_writer *w, const char *key, const char *value);
uakd_status uakd_safetensors_writer_set_meta_u64(uakd_safetensors_writer *w, const char *key, uint64_t v);
/* Written with 17 significant digits, which reads back to the identical double. */
uakd_status uakd_safetensors_writer_set_meta_f64(uakd_safetensors_writer *w, const char *key, double v);
uakd_status uakd_safetensors_writer_set_meta_hex(uakd_safetensors_writer *w, const char *key,
                                                 const void *bytes, size_t n);
/* Records "data_crc32" (CRC-32 as in zlib, 8 lowercase hex digits) of the data section at write
 * time, so readers detect corrupted tensor bytes. */
void uakd_safetensors_writer_checksum(uakd_safetensors_writer *w, int on);

/* Serialises to a new buffer (free with free()). The header is compact JSON with the metadata
 * first, then the tensors in insertion order, padded with spaces to a multiple of 8 bytes; data
 * follows contiguously in the same order. */
uakd_status uakd_safetensors_writer_to_memory(const uakd_safetensors_writer *w, void **buf, size_t *len);
/* Writes the same bytes to path atomically (see uakd/fileio.h). */
uakd_status uakd_safetensors_writer_write(const uakd_safetensors_writer *w, const char *path);

/* CRC-32 (polynomial 0xEDB88320, as zlib.crc32); crc = 0 to start, chain by passing the last. */
uint32_t uakd_crc32(uint32_t crc, const void *data, size_t n);

#endif
