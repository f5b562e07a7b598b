/* safetensors reader (validating) and writer.
 *
 * File = le64 N | N bytes JSON header | data. For every tensor, with d = dtype size and
 * n = prod(shape): end - begin == n * d (checked for overflow). Sorted by (begin, end) the
 * tensors tile the data section exactly: the first begins at 0, each begins where the previous
 * ended, the last ends at file size - 8 - N. F16 -> F32 widens sign/exponent/mantissa (with
 * subnormals, inf, nan); BF16 is the upper half of an F32. */
#include "uakd/safetensors.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_info[UAKD_DTYPE_COUNT] = {
    [UAKD_DTYPE_F64] = {"F64", 8},  [UAKD_DTYPE_F32] = {"F32", 4},   [UAKD_DTYPE_F16] = {"F16", 2},
    [UAKD_DTYPE_BF16] = {"BF16", 2}, [UAKD_DTYPE_I64] = {"I64", 8},  [UAKD_DTYPE_I32] = {"I32", 4},
    [UAKD_DTYPE_I16] = {"I16", 2},  [UAKD_DTYPE_I8] = {"I8", 1},     [UAKD_DTYPE_U64] = {"U64", 8},
    [UAKD_DTYPE_U32] = {"U32", 4},  [UAKD_DTYPE_U16] = {"U16", 2},   [UAKD_DTYPE_U8] = {"U8", 1},
    [UAKD_DTYPE_BOOL] = {"BOOL", 1},
};

const char *uakd_dtype_name(uakd_dtype dt) {
    return (unsigned)dt < UAKD_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

size_t uakd_dtype_size(uakd_dtype dt) { return (unsigned)dt < UAKD_DTYPE_COUNT ? dtype_info[dt].size : 0; }

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t uakd_crc32(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------------------------------------ */
/* reader */

struct uakd_safetensors {
    char *label;
    void *owned; /* file image when read by open() */
    cJSON *root;
    uakd_st_tensor *tensors;
    size_t n;
    const cJSON *meta; /* the "__metadata__" object or NULL */
};

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON number that is a non-negative integer exactly representable as a double. */
static int json_uint(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *v = (uint64_t)d;
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_extent(const void *a, const void *b) {
    const uint64_t *x = a, *y = b; /* {begin, end, index} */
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    if (x[1] != y[1]) return x[1] < y[1] ? -1 : 1;
    return 0;
}

static uakd_status parse_dtype(const char *label, const char *name, const cJSON *j, uakd_dtype *dt) {
    if (!cJSON_IsString(j))
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": \"dtype\" must be a string", label, name);
    for (int d = 0; d < UAKD_DTYPE_COUNT; d++)
        if (strcmp(j->valuestring, dtype_info[d].name) == 0) {
            *dt = (uakd_dtype)d;
            return UAKD_OK;
        }
    return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": unknown dtype \"%s\" (known: F64 F32 F16 BF16 I64 I32 I16 "
                     "I8 U64 U32 U16 U8 BOOL)", label, name, j->valuestring);
}

/* Fills t from one header entry; checks keys, dtype, shape and the size arithmetic. */
static uakd_status parse_entry(const char *label, const cJSON *e, uakd_st_tensor *t, uint64_t *begin,
                               uint64_t *end) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": entry must be an object", label, name);
    const cJSON *jd = NULL, *js = NULL, *jo = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = strcmp(k->string, "dtype") == 0 ? &jd
                             : strcmp(k->string, "shape") == 0 ? &js
                             : strcmp(k->string, "data_offsets") == 0 ? &jo : NULL;
        if (!slot)
            return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": unknown key \"%s\" (allowed: dtype, shape, data_offsets)",
                             label, name, k->string);
        if (*slot) return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": key \"%s\" given twice", label, name, k->string);
        *slot = k;
    }
    if (!jd || !js || !jo)
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": missing \"%s\"", label, name,
                         !jd ? "dtype" : !js ? "shape" : "data_offsets");
    t->name = name;
    UAKD_TRY(parse_dtype(label, name, jd, &t->dtype));
    if (!cJSON_IsArray(js))
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": \"shape\" must be an array of integers", label, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > UAKD_SAFETENSORS_MAX_DIMS)
        return uakd_fail(UAKD_EUNSUPPORTED, "%s: tensor \"%s\": %d dimensions, at most %d supported", label, name, nd,
                         UAKD_SAFETENSORS_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int i = 0;
    for (const cJSON *d = js->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", label, name, i);
        t->shape[i] = (int64_t)v;
        if (v && numel > SIZE_MAX / v)
            return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": shape product overflows", label, name);
        numel *= v;
    }
    size_t dsz = dtype_info[t->dtype].size;
    if (numel > SIZE_MAX / dsz) return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": byte size overflows", label, name);
    t->numel = (size_t)numel;
    t->nbytes = (size_t)numel * dsz;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, begin) ||
        !json_uint(jo->child->next, end))
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end] integers", label, name);
    if (*end < *begin)
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] end before they "
                         "begin", label, name, *begin, *end);
    if (*end - *begin != t->nbytes)
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                         " bytes but %zu %s elements need %zu", label, name, *begin, *end, *end - *begin, t->numel,
                         dtype_info[t->dtype].name, t->nbytes);
    return UAKD_OK;
}

static uakd_status parse_meta(const char *label, const cJSON *m) {
    if (!cJSON_IsObject(m)) return uakd_fail(UAKD_EFORMAT, "%s: \"__metadata__\" must be an object", label);
    for (const cJSON *k = m->child; k; k = k->next) {
        if (!cJSON_IsString(k))
            return uakd_fail(UAKD_EFORMAT, "%s: \"__metadata__\" value of \"%s\" must be a string", label, k->string);
        for (const cJSON *o = m->child; o != k; o = o->next)
            if (strcmp(o->string, k->string) == 0)
                return uakd_fail(UAKD_EFORMAT, "%s: \"__metadata__\" key \"%s\" given twice", label, k->string);
    }
    return UAKD_OK;
}

/* Checks names (non-empty, unique) and that the extents tile [0, data_len) exactly. */
static uakd_status check_layout(uakd_safetensors *st, const uint64_t *ext, uint64_t data_len) {
    const char *label = st->label;
    const char **names = malloc((st->n ? st->n : 1) * sizeof *names);
    uint64_t *sorted = malloc((st->n ? st->n : 1) * 3 * sizeof *sorted);
    uakd_status res = UAKD_OK;
    if (!names || !sorted) {
        res = uakd_fail(UAKD_ENOMEM, "%s: out of memory for %zu tensors", label, st->n);
        goto done;
    }
    for (size_t i = 0; i < st->n; i++) names[i] = st->tensors[i].name;
    qsort(names, st->n, sizeof *names, cmp_str);
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            res = uakd_fail(UAKD_EFORMAT, "%s: tensor name \"%s\" appears twice in the header", label, names[i]);
            goto done;
        }
    memcpy(sorted, ext, st->n * 3 * sizeof *sorted);
    qsort(sorted, st->n, 3 * sizeof *sorted, cmp_extent);
    uint64_t pos = 0;
    for (size_t i = 0; i < st->n; i++) {
        const uint64_t *x = sorted + 3 * i;
        const char *nm = st->tensors[x[2]].name;
        if (x[0] != pos) {
            res = uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\" starts at data offset %" PRIu64 " but the previous data ends "
                            "at %" PRIu64 " (%s)", label, nm, x[0], pos, x[0] > pos ? "hole" : "overlap");
            goto done;
        }
        pos = x[1];
    }
    if (pos != data_len)
        res = uakd_fail(UAKD_EFORMAT, "%s: tensors cover %" PRIu64 " data bytes but the file holds %" PRIu64 " (%s)",
                        label, pos, data_len, pos < data_len ? "trailing bytes" : "file truncated");
done:
    free(names);
    free(sorted);
    return res;
}

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above
 * U+10FFFF included), or n when the text is valid. */
static size_t utf8_invalid_at(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n) return i;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

static uakd_status parse_image(uakd_safetensors *st, const unsigned char *buf, size_t len) {
    const char *label = st->label;
    if (len < 8) return uakd_fail(UAKD_EFORMAT, "%s: %zu bytes, too short for a safetensors file", label, len);
    uint64_t hlen = le64(buf);
    if (hlen > UAKD_SAFETENSORS_MAX_HEADER)
        return uakd_fail(UAKD_EFORMAT, "%s: header length %" PRIu64 " exceeds the %zu-byte limit (not a safetensors "
                         "file?)", label, hlen, UAKD_SAFETENSORS_MAX_HEADER);
    if (hlen > len - 8)
        return uakd_fail(UAKD_EFORMAT, "%s: header length %" PRIu64 " but only %zu bytes follow (truncated)", label,
                         hlen, len - 8);
    const char *h = (const char *)buf + 8;
    if (hlen < 2 || h[0] != '{')
        return uakd_fail(UAKD_EFORMAT, "%s: header does not start with '{' (not a safetensors file?)", label);
    if (memchr(h, '\0', hlen) || memmem(h, hlen, "\\u0000", 6))
        return uakd_fail(UAKD_EFORMAT, "%s: header contains a NUL character", label);
    size_t bad = utf8_invalid_at((const unsigned char *)h, hlen);
    if (bad < hlen) return uakd_fail(UAKD_EFORMAT, "%s: header is not valid UTF-8 (byte %zu)", label, bad + 8);
    const char *end = NULL;
    st->root = cJSON_ParseWithLengthOpts(h, hlen, &end, 0);
    if (!st->root || !cJSON_IsObject(st->root))
        return uakd_fail(UAKD_EFORMAT, "%s: header is not a well-formed JSON object (error near byte %td)", label,
                         (end ? end : cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : h) - h + 8);
    for (const char *p = end; p < h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return uakd_fail(UAKD_EFORMAT, "%s: unexpected bytes after the header's JSON object", label);
    size_t count = 0;
    for (const cJSON *e = st->root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (st->meta) return uakd_fail(UAKD_EFORMAT, "%s: \"__metadata__\" appears twice", label);
            UAKD_TRY(parse_meta(label, e));
            st->meta = e;
        } else {
            if (!e->string[0]) return uakd_fail(UAKD_EFORMAT, "%s: a tensor has an empty name", label);
            for (const char *c = e->string; *c; c++)
                if ((unsigned char)*c < 0x20)
                    return uakd_fail(UAKD_EFORMAT, "%s: tensor name \"%s\" contains a control character", label,
                                     e->string);
            count++;
        }
    }
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    uint64_t *ext = malloc((count ? count : 1) * 3 * sizeof *ext);
    if (!st->tensors || !ext) {
        free(ext);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory for %zu tensors", label, count);
    }
    uakd_status res = UAKD_OK;
    const unsigned char *data = buf + 8 + hlen;
    for (const cJSON *e = st->root->child; e && res == UAKD_OK; e = e->next) {
        if (e == st->meta) continue;
        uakd_st_tensor *t = &st->tensors[st->n];
        uint64_t *x = ext + 3 * st->n;
        res = parse_entry(label, e, t, &x[0], &x[1]);
        x[2] = st->n++;
        if (res == UAKD_OK && x[1] <= len - 8 - hlen) t->data = data + x[0];
    }
    if (res == UAKD_OK) res = check_layout(st, ext, len - 8 - hlen);
    free(ext);
    UAKD_TRY(res);
    const char *crc_hex = uakd_safetensors_meta(st, "data_crc32");
    if (crc_hex) {
        uint32_t want;
        char *endp;
        errno = 0;
        unsigned long v = strtoul(crc_hex, &endp, 16);
        if (strlen(crc_hex) != 8 || *endp || errno || v > 0xffffffffu)
            return uakd_fail(UAKD_EFORMAT, "%s: metadata \"data_crc32\" is not 8 hex digits", label);
        want = (uint32_t)v;
        uint32_t got = uakd_crc32(0, data, len - 8 - hlen);
        if (got != want)
            return uakd_fail(UAKD_EFORMAT, "%s: tensor data is corrupt (CRC-32 %08x, header records %08x)", label,
                             (unsigned)got, (unsigned)want);
    }
    return UAKD_OK;
}

static uakd_status new_reader(const char *label, uakd_safetensors **out) {
    *out = calloc(1, sizeof **out);
    if (*out) (*out)->label = strdup(label ? label : "safetensors");
    if (!*out || !(*out)->label) {
        free(*out);
        *out = NULL;
        return uakd_fail(UAKD_ENOMEM, "out of memory");
    }
    return UAKD_OK;
}

uakd_status uakd_safetensors_parse(const void *buf, size_t len, const char *label, uakd_safetensors **out) {
    uakd_safetensors *st;
    UAKD_TRY(new_reader(label, &st));
    uakd_status res = parse_image(st, buf, len);
    if (res != UAKD_OK) {
        uakd_safetensors_free(st);
        st = NULL;
    }
    *out = st;
    return res;
}

uakd_status uakd_safetensors_open(const char *path, uakd_safetensors **out) {
    *out = NULL;
    void *buf;
    size_t len;
    UAKD_TRY(uakd_read_file(path, UAKD_SAFETENSORS_MAX_FILE, &buf, &len));
    uakd_safetensors *st;
    uakd_status res = new_reader(path, &st);
    if (res != UAKD_OK) {
        free(buf);
        return res;
    }
    st->owned = buf;
    res = parse_image(st, buf, len);
    if (res != UAKD_OK) {
        uakd_safetensors_free(st);
        return res;
    }
    *out = st;
    return UAKD_OK;
}

void uakd_safetensors_free(uakd_safetensors *st) {
    if (!st) return;
    cJSON_Delete(st->root);
    free(st->tensors);
    free(st->owned);
    free(st->label);
    free(st);
}

size_t uakd_safetensors_count(const uakd_safetensors *st) { return st->n; }

const uakd_st_tensor *uakd_safetensors_at(const uakd_safetensors *st, size_t i) {
    return i < st->n ? &st->tensors[i] : NULL;
}

const uakd_st_tensor *uakd_safetensors_find(const uakd_safetensors *st, const char *name) {
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man) bits = sign;
    else { /* subnormal: man * 2^-24 */
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uakd_status uakd_st_tensor_to_f32(const uakd_st_tensor *t, float *dst) {
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case UAKD_DTYPE_F32:
        if (t->nbytes) memcpy(dst, p, t->nbytes);
        return UAKD_OK;
    case UAKD_DTYPE_F16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return UAKD_OK;
    case UAKD_DTYPE_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return UAKD_OK;
    case UAKD_DTYPE_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
        }
        return UAKD_OK;
    default:
        return uakd_fail(UAKD_EUNSUPPORTED, "tensor \"%s\": dtype %s cannot be read as float32", t->name,
                         uakd_dtype_name(t->dtype));
    }
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

uakd_status uakd_safetensors_read_f32(const uakd_safetensors *st, const char *name, int ndim,
                                      const int64_t *shape, float *dst) {
    const uakd_st_tensor *t = uakd_safetensors_find(st, name);
    if (!t) return uakd_fail(UAKD_EFORMAT, "%s: no tensor named \"%s\"", st->label, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[256], got[256];
        format_shape(want, sizeof want, ndim, shape);
        format_shape(got, sizeof got, t->ndim, t->shape);
        return uakd_fail(UAKD_EFORMAT, "%s: tensor \"%s\" has shape %s, the model expects %s (another architecture?)",
                         st->label, name, got, want);
    }
    uakd_status res = uakd_st_tensor_to_f32(t, dst);
    return res == UAKD_OK ? res : uakd_fail_context(res, "%s: ", st->label);
}

size_t uakd_safetensors_meta_count(const uakd_safetensors *st) {
    return st->meta ? (size_t)cJSON_GetArraySize(st->meta) : 0;
}

const char *uakd_safetensors_meta_key(const uakd_safetensors *st, size_t i) {
    const cJSON *k = st->meta ? st->meta->child : NULL;
    for (; k && i; i--) k = k->next;
    return k ? k->string : NULL;
}

const char *uakd_safetensors_meta(const uakd_safetensors *st, const char *key) {
    for (const cJSON *k = st->meta ? st->meta->child : NULL; k; k = k->next)
        if (strcmp(k->string, key) == 0) return k->valuestring;
    return NULL;
}

static uakd_status meta_required(const uakd_safetensors *st, const char *key, const char **v) {
    *v = uakd_safetensors_meta(st, key);
    if (!*v) return uakd_fail(UAKD_EFORMAT, "%s: metadata has no \"%s\"", st->label, key);
    return UAKD_OK;
}

uakd_status uakd_safetensors_meta_u64(const uakd_safetensors *st, const char *key, uint64_t *v) {
    const char *s;
    UAKD_TRY(meta_required(st, key, &s));
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *s < '0' || *s > '9' || *end || errno)
        return uakd_fail(UAKD_EFORMAT, "%s: metadata \"%s\" = \"%s\" is not an unsigned integer", st->label, key, s);
    *v = x;
    return UAKD_OK;
}

uakd_status uakd_safetensors_meta_f64(const uakd_safetensors *st, const char *key, double *v) {
    const char *s;
    UAKD_TRY(meta_required(st, key, &s));
    char *end;
    double x = strtod(s, &end);
    if (!*s || *end || isspace((unsigned char)*s))
        return uakd_fail(UAKD_EFORMAT, "%s: metadata \"%s\" = \"%s\" is not a number", st->label, key, s);
    *v = x;
    return UAKD_OK;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

uakd_status uakd_safetensors_meta_hex(const uakd_safetensors *st, const char *key, void *bytes, size_t n) {
    const char *s;
    UAKD_TRY(meta_required(st, key, &s));
    if (strlen(s) != 2 * n)
        return uakd_fail(UAKD_EFORMAT, "%s: metadata \"%s\" has %zu hex digits, expected %zu", st->label, key,
                         strlen(s), 2 * n);
    unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return uakd_fail(UAKD_EFORMAT, "%s: metadata \"%s\" is not lowercase hex", st->label, key);
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    return UAKD_OK;
}

uakd_status uakd_safetensors_expect_format(const uakd_safetensors *st, const char *tag, uint64_t max_version,
                                           uint64_t *version) {
    const char *f = uakd_safetensors_meta(st, "format");
    if (!f)
        return uakd_fail(UAKD_EFORMAT, "%s: not a %s file: its metadata has no \"format\" tag (%zu tensors, %s)",
                         st->label, tag, st->n, st->meta ? "foreign metadata" : "no metadata; plain weights?");
    if (strcmp(f, tag) != 0)
        return uakd_fail(UAKD_EFORMAT, "%s: not a %s file: its format tag is \"%s\"", st->label, tag, f);
    uint64_t v;
    UAKD_TRY(uakd_safetensors_meta_u64(st, "format_version", &v));
    if (v < 1 || v > max_version)
        return uakd_fail(v > max_version ? UAKD_EUNSUPPORTED : UAKD_EFORMAT,
                         "%s: %s version %" PRIu64 " is not supported (this build reads versions 1 to %" PRIu64 ")",
                         st->label, tag, v, max_version);
    if (version) *version = v;
    return UAKD_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* writer */

typedef struct {
    char *name;
    uakd_dtype dtype;
    int ndim;
    int64_t shape[UAKD_SAFETENSORS_MAX_DIMS];
    size_t nbytes;
    const void *data;
} wtensor;

struct uakd_safetensors_writer {
    wtensor *t;
    size_t n, cap;
    char **meta; /* key, value pairs */
    size_t nmeta, capmeta;
    int checksum;
};

uakd_status uakd_safetensors_writer_new(uakd_safetensors_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "out of memory");
}

void uakd_safetensors_writer_free(uakd_safetensors_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < 2 * w->nmeta; i++) free(w->meta[i]);
    free(w->t);
    free(w->meta);
    free(w);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? 2 * *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

uakd_status uakd_safetensors_writer_add(uakd_safetensors_writer *w, const char *name, uakd_dtype dtype, int ndim,
                                        const int64_t *shape, const void *data) {
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
        return uakd_fail(UAKD_EINVAL, "safetensors writer: invalid tensor name \"%s\"", name ? name : "(null)");
    if ((unsigned)dtype >= UAKD_DTYPE_COUNT)
        return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\": invalid dtype", name);
    if (ndim < 0 || ndim > UAKD_SAFETENSORS_MAX_DIMS)
        return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\": %d dimensions", name, ndim);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\" added twice", name);
    size_t nbytes = dtype_info[dtype].size;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\": negative dimension", name);
        if (shape[i] && nbytes > SIZE_MAX / (uint64_t)shape[i])
            return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\": size overflows", name);
        nbytes *= (size_t)shape[i];
    }
    if (nbytes && !data) return uakd_fail(UAKD_EINVAL, "safetensors writer: tensor \"%s\": no data", name);
    if (!grow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t))
        return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory");
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->nbytes = nbytes;
    t->data = data;
    w->n++;
    return UAKD_OK;
}

uakd_status uakd_safetensors_writer_add_f32(uakd_safetensors_writer *w, const char *name, int ndim,
                                            const int64_t *shape, const float *data) {
    return uakd_safetensors_writer_add(w, name, UAKD_DTYPE_F32, ndim, shape, data);
}

uakd_status uakd_safetensors_writer_set_meta(uakd_safetensors_writer *w, const char *key, const char *value) {
    if (!key || !value) return uakd_fail(UAKD_EINVAL, "safetensors writer: metadata key and value are required");
    char *v = strdup(value);
    if (!v) return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory");
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return UAKD_OK;
        }
    char *k = strdup(key);
    if (!k || !grow((void **)&w->meta, &w->capmeta, 2 * (w->nmeta + 1), sizeof *w->meta)) {
        free(k);
        free(v);
        return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory");
    }
    w->meta[2 * w->nmeta] = k;
    w->meta[2 * w->nmeta + 1] = v;
    w->nmeta++;
    return UAKD_OK;
}

uakd_status uakd_safetensors_writer_set_meta_u64(uakd_safetensors_writer *w, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return uakd_safetensors_writer_set_meta(w, key, buf);
}

uakd_status uakd_safetensors_writer_set_meta_f64(uakd_safetensors_writer *w, const char *key, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return uakd_safetensors_writer_set_meta(w, key, buf);
}

uakd_status uakd_safetensors_writer_set_meta_hex(uakd_safetensors_writer *w, const char *key, const void *bytes,
                                                 size_t n) {
    char *s = malloc(2 * n + 1);
    if (!s) return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory");
    const unsigned char *b = bytes;
    for (size_t i = 0; i < n; i++) snprintf(s + 2 * i, 3, "%02x", b[i]);
    s[2 * n] = '\0';
    uakd_status res = uakd_safetensors_writer_set_meta(w, key, s);
    free(s);
    return res;
}

void uakd_safetensors_writer_checksum(uakd_safetensors_writer *w, int on) { w->checksum = on; }

/* A growing text buffer for the header. */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom || !grow((void **)&b->s, &b->cap, b->n + n + 1, 1)) {
        b->oom = 1;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* JSON string literal, escaped like Python's json.dumps(..., ensure_ascii=False). */
static void put_json_string(sbuf *b, const char *s) {
    puts_(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        case '\b': puts_(b, "\\b"); break;
        case '\f': puts_(b, "\\f"); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                puts_(b, esc);
            } else
                put(b, (const char *)p, 1);
        }
    }
    puts_(b, "\"");
}

/* Builds the padded header; *data_len receives the size of the data section. */
static uakd_status build_header(const uakd_safetensors_writer *w, sbuf *b, uint64_t *data_len) {
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) off += w->t[i].nbytes;
    *data_len = off;
    char crc_hex[9];
    if (w->checksum) {
        uint32_t crc = 0;
        for (size_t i = 0; i < w->n; i++) crc = uakd_crc32(crc, w->t[i].data, w->t[i].nbytes);
        snprintf(crc_hex, sizeof crc_hex, "%08x", (unsigned)crc);
    }
    puts_(b, "{");
    int first = 1;
    if (w->nmeta || w->checksum) {
        puts_(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            if (w->checksum && strcmp(w->meta[2 * i], "data_crc32") == 0) continue;
            if (!first) puts_(b, ",");
            first = 0;
            put_json_string(b, w->meta[2 * i]);
            puts_(b, ":");
            put_json_string(b, w->meta[2 * i + 1]);
        }
        if (w->checksum) {
            puts_(b, first ? "\"data_crc32\":" : ",\"data_crc32\":");
            put_json_string(b, crc_hex);
        }
        puts_(b, "}");
        first = 0;
    }
    off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[i];
        char num[64];
        if (!first) puts_(b, ",");
        first = 0;
        put_json_string(b, t->name);
        puts_(b, ":{\"dtype\":\"");
        puts_(b, dtype_info[t->dtype].name);
        puts_(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
            puts_(b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + t->nbytes);
        puts_(b, num);
        off += t->nbytes;
    }
    puts_(b, "}");
    while (!b->oom && b->n % 8) puts_(b, " ");
    if (b->oom) return uakd_fail(UAKD_ENOMEM, "safetensors writer: out of memory for the header");
    if (b->n > UAKD_SAFETENSORS_MAX_HEADER)
        return uakd_fail(UAKD_EINVAL, "safetensors writer: header of %zu bytes exceeds the %zu-byte limit", b->n,
                         UAKD_SAFETENSORS_MAX_HEADER);
    return UAKD_OK;
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uakd_status uakd_safetensors_writer_to_memory(const uakd_safetensors_writer *w, void **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    sbuf b = {0};
    uint64_t data_len;
    uakd_status res = build_header(w, &b, &data_len);
    if (res != UAKD_OK) {
        free(b.s);
        return res;
    }
    size_t total = 8 + b.n + (size_t)data_len;
    unsigned char *out = malloc(total ? total : 1);
    if (!out) {
        free(b.s);
        return uakd_fail(UAKD_ENOMEM, "safetensors writer: cannot allocate %zu bytes", total);
    }
    put_le64(out, b.n);
    memcpy(out + 8, b.s, b.n);
    size_t pos = 8 + b.n;
    for (size_t i = 0; i < w->n; i++) {
        if (w->t[i].nbytes) memcpy(out + pos, w->t[i].data, w->t[i].nbytes);
        pos += w->t[i].nbytes;
    }
    free(b.s);
    *buf = out;
    *len = total;
    return UAKD_OK;
}

typedef struct {
    const uakd_safetensors_writer *w;
    const sbuf *header;
} write_ctx;

static uakd_status write_content(FILE *f, const char *path, void *user) {
    const write_ctx *c = user;
    unsigned char len8[8];
    put_le64(len8, c->header->n);
    UAKD_TRY(uakd_fwrite_all(f, len8, 8, path));
    UAKD_TRY(uakd_fwrite_all(f, c->header->s, c->header->n, path));
    for (size_t i = 0; i < c->w->n; i++) UAKD_TRY(uakd_fwrite_all(f, c->w->t[i].data, c->w->t[i].nbytes, path));
    return UAKD_OK;
}

uakd_status uakd_safetensors_writer_write(const uakd_safetensors_writer *w, const char *path) {
    sbuf b = {0};
    uint64_t data_len;
    uakd_status res = build_header(w, &b, &data_len);
    if (res == UAKD_OK) {
        write_ctx c = {w, &b};
        res = uakd_write_atomic(path, write_content, &c);
    }
    free(b.s);
    return res;
}
