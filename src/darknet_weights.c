/* darknet .weights files: header versions, the expected float count of a network computed
 * before reading, prefix files (darknet53.conv.74), and a checked sequential float reader.
 *
 * Size rule: file bytes = header (16 or 20) + 4 * sum over stored layers of n_floats, where a
 * conv layer stores (batch norm ? 4 : 1) * filters + filters * (C_in / groups) * k * k values. */
#include "uakd/darknet_weights.h"

#include <inttypes.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "uakd/safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "darknet weights are little-endian; this reader assumes a little-endian host"
#endif

struct uakd_darknet_weights {
    FILE *f;
    char *path;
    uakd_darknet_header header;
    size_t available; /* floats after the header */
    size_t consumed;  /* floats read so far */
};

uakd_status uakd_darknet_layout(const uakd_netdesc *d, uakd_darknet_layer **layers, size_t *n) {
    *layers = NULL;
    *n = 0;
    uakd_darknet_layer *out = malloc(((size_t)d->n_layers + 1) * sizeof *out);
    if (!out) return uakd_fail(UAKD_ENOMEM, "out of memory");
    size_t k = 0;
    for (int i = 0; i < d->n_layers; i++) {
        const uakd_layer_desc *l = &d->layers[i];
        if (l->type != UAKD_ND_CONV) continue;
        const char *bad = l->norm == UAKD_ND_NORM_GROUP                  ? "GroupNorm"
                          : l->norm == UAKD_ND_NORM_NONE && !l->bias     ? "neither bias nor batch norm"
                          : l->norm == UAKD_ND_NORM_BATCH && l->bias     ? "a bias and batch norm"
                                                                      : NULL;
        if (bad) {
            free(out);
            return uakd_fail(UAKD_EUNSUPPORTED, "layer %d (line %d): a convolution with %s has no darknet weights "
                             "layout", i, l->line, bad);
        }
        size_t f = (size_t)l->filters;
        out[k].layer = i;
        out[k].line = l->line;
        out[k].n_floats = (l->norm == UAKD_ND_NORM_BATCH ? 4 : 1) * f +
                          f * (size_t)(l->in_c / l->groups) * (size_t)l->size * (size_t)l->size;
        k++;
    }
    *layers = out;
    *n = k;
    return UAKD_OK;
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uakd_status uakd_darknet_weights_open(const char *path, uakd_darknet_weights **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return uakd_fail(UAKD_EIO, "%s: not a regular file", path);
    }
    unsigned char h[20];
    uakd_darknet_header hd = {0};
    size_t got = fread(h, 1, 12, f);
    uakd_status st = UAKD_OK;
    if (got != 12) {
        st = uakd_fail(UAKD_EFORMAT, "%s: %zu bytes, too short for a darknet weights header", path, got);
        goto fail;
    }
    hd.major = (int32_t)rd32(h);
    hd.minor = (int32_t)rd32(h + 4);
    hd.revision = (int32_t)rd32(h + 8);
    if (hd.major < 0 || hd.minor < 0 || hd.revision < 0 || hd.major >= 1000 || hd.minor >= 1000) {
        st = uakd_fail(UAKD_EFORMAT, "%s: header version %d.%d.%d is not a darknet weights version (not a .weights "
                       "file, or a transposed one)", path, hd.major, hd.minor, hd.revision);
        goto fail;
    }
    int wide = hd.major * 10 + hd.minor >= 2;
    size_t seen_bytes = wide ? 8 : 4;
    if (fread(h + 12, 1, seen_bytes, f) != seen_bytes) {
        st = uakd_fail(UAKD_EFORMAT, "%s: truncated header (version %d.%d needs %zu bytes)", path, hd.major, hd.minor,
                       12 + seen_bytes);
        goto fail;
    }
    hd.seen = wide ? (uint64_t)rd32(h + 12) | (uint64_t)rd32(h + 16) << 32 : rd32(h + 12);
    hd.header_bytes = 12 + seen_bytes;
    uint64_t data = (uint64_t)sb.st_size - hd.header_bytes;
    if (data % 4) {
        st = uakd_fail(UAKD_EFORMAT, "%s: %llu bytes after the header is not a whole number of float32 values "
                       "(truncated download?)", path, (unsigned long long)data);
        goto fail;
    }
    uakd_darknet_weights *w = calloc(1, sizeof *w);
    char *p = strdup(path);
    if (!w || !p) {
        free(w);
        free(p);
        st = uakd_fail(UAKD_ENOMEM, "out of memory");
        goto fail;
    }
    w->f = f;
    w->path = p;
    w->header = hd;
    w->available = (size_t)(data / 4);
    *out = w;
    return UAKD_OK;
fail:
    fclose(f);
    return st;
}

void uakd_darknet_weights_close(uakd_darknet_weights *w) {
    if (!w) return;
    fclose(w->f);
    free(w->path);
    free(w);
}

const uakd_darknet_header *uakd_darknet_weights_header(const uakd_darknet_weights *w) { return &w->header; }

size_t uakd_darknet_weights_available(const uakd_darknet_weights *w) { return w->available; }

uakd_status uakd_darknet_weights_plan(const uakd_darknet_weights *w, const uakd_darknet_layer *layers, size_t n,
                                      unsigned flags, size_t *n_covered) {
    *n_covered = 0;
    const size_t have = w->available;
    size_t sum = 0, k = 0;
    /* Walk the layers while they fit in the file. */
    for (; k < n; k++) {
        if (layers[k].n_floats > SIZE_MAX - sum)
            return uakd_fail(UAKD_EINVAL, "%s: the network's weight count overflows", w->path);
        if (sum + layers[k].n_floats > have) break;
        sum += layers[k].n_floats;
    }
    if (k == n) {
        if (sum == have || (flags & UAKD_DARKNET_ALLOW_TRAILING)) {
            *n_covered = n;
            return UAKD_OK;
        }
        return uakd_fail(UAKD_EFORMAT, "%s: holds %zu values but the network's %zu stored layers need %zu: %zu values "
                         "too many (weights of a bigger network, e.g. one with a classifier head?)", w->path, have, n,
                         sum, have - sum);
    }
    if (sum == have && k > 0 && (flags & UAKD_DARKNET_ALLOW_PREFIX)) {
        *n_covered = k;
        return UAKD_OK;
    }
    const uakd_darknet_layer *l = &layers[k];
    if (sum == have)
        return uakd_fail(UAKD_EFORMAT, "%s: holds the weights of the first %zu of %zu stored layers and ends before "
                         "layer %d (line %d)%s", w->path, k, n, l->layer, l->line,
                         k ? "; allow a prefix to load a truncated backbone such as darknet53.conv.74" : "");
    return uakd_fail(UAKD_EFORMAT, "%s: ends inside layer %d (line %d): it holds %zu values, the layers before need "
                     "%zu and this one needs %zu (a different network, or a truncated file)", w->path, l->layer,
                     l->line, have, sum, l->n_floats);
}

uakd_status uakd_darknet_weights_read(uakd_darknet_weights *w, float *dst, size_t n) {
    if (n > w->available - w->consumed)
        return uakd_fail(UAKD_EFORMAT, "%s: asked for %zu values at value %zu but only %zu remain", w->path, n,
                         w->consumed, w->available - w->consumed);
    size_t got = n ? fread(dst, sizeof *dst, n, w->f) : 0;
    if (got != n)
        return uakd_fail(UAKD_EIO, "%s: read %zu of %zu values at value %zu (file changed?)", w->path, got, n,
                         w->consumed);
    w->consumed += n;
    return UAKD_OK;
}

/* Adds one tensor named "<prefix>.<suffix>" read from the stream into the next slice of buf. */
static uakd_status take(uakd_darknet_weights *w, uakd_safetensors_writer *sw, const char *prefix, const char *suffix,
                        int ndim, const int64_t *shape, float **buf) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    UAKD_TRY(uakd_darknet_weights_read(w, *buf, n));
    char name[UAKD_NETDESC_MAX_NAME + 304];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    UAKD_TRY(uakd_safetensors_writer_add_f32(sw, name, ndim, shape, *buf));
    *buf += n;
    return UAKD_OK;
}

static uakd_status convert_layers(uakd_darknet_weights *w, const uakd_netdesc *d, const uakd_darknet_layer *layers,
                                  size_t covered, const char *name_prefix, float *values, uakd_safetensors_writer *sw) {
    float *next = values;
    for (size_t k = 0; k < covered; k++) {
        const uakd_layer_desc *l = &d->layers[layers[k].layer];
        char lp[UAKD_NETDESC_MAX_NAME + 16], p[UAKD_NETDESC_MAX_NAME + 272];
        uakd_netdesc_layer_prefix(d, layers[k].layer, lp, sizeof lp);
        snprintf(p, sizeof p, "%.255s%s", name_prefix ? name_prefix : "", lp);
        int64_t f = l->filters, wshape[4] = {f, l->in_c / l->groups, l->size, l->size};
        if (l->norm == UAKD_ND_NORM_BATCH) {
            UAKD_TRY(take(w, sw, p, "bn.bias", 1, &f, &next));
            UAKD_TRY(take(w, sw, p, "bn.weight", 1, &f, &next));
            UAKD_TRY(take(w, sw, p, "bn.running_mean", 1, &f, &next));
            UAKD_TRY(take(w, sw, p, "bn.running_var", 1, &f, &next));
            /* PyTorch's BatchNorm2d also has this buffer; with it, load_state_dict(strict=True) works. */
            static const int64_t zero = 0;
            char name[UAKD_NETDESC_MAX_NAME + 304];
            snprintf(name, sizeof name, "%s.bn.num_batches_tracked", p);
            UAKD_TRY(uakd_safetensors_writer_add(sw, name, UAKD_DTYPE_I64, 0, NULL, &zero));
        } else
            UAKD_TRY(take(w, sw, p, "conv.bias", 1, &f, &next));
        UAKD_TRY(take(w, sw, p, "conv.weight", 4, wshape, &next));
    }
    return UAKD_OK;
}

uakd_status uakd_darknet_to_safetensors(const char *weights_path, const uakd_netdesc *d, unsigned flags,
                                        const char *name_prefix, const char *out_path, size_t *n_covered) {
    if (name_prefix && strlen(name_prefix) > 255)
        return uakd_fail(UAKD_EINVAL, "name prefix \"%.40s...\" is longer than 255 characters", name_prefix);
    uakd_darknet_layer *layers = NULL;
    size_t n = 0, covered = 0, total = 0;
    uakd_darknet_weights *w = NULL;
    uakd_safetensors_writer *sw = NULL;
    float *values = NULL;
    uakd_status st = uakd_darknet_layout(d, &layers, &n);
    if (st == UAKD_OK) st = uakd_darknet_weights_open(weights_path, &w);
    if (st == UAKD_OK) st = uakd_darknet_weights_plan(w, layers, n, flags, &covered);
    for (size_t k = 0; k < covered; k++) total += layers[k].n_floats;
    if (st == UAKD_OK && !(values = malloc((total ? total : 1) * sizeof *values)))
        st = uakd_fail(UAKD_ENOMEM, "%s: cannot allocate %zu values", weights_path, total);
    if (st == UAKD_OK) st = uakd_safetensors_writer_new(&sw);
    if (st == UAKD_OK) st = convert_layers(w, d, layers, covered, name_prefix, values, sw);
    if (st == UAKD_OK) {
        const uakd_darknet_header *h = uakd_darknet_weights_header(w);
        char buf[64];
        snprintf(buf, sizeof buf, "%d.%d.%d", h->major, h->minor, h->revision);
        st = uakd_safetensors_writer_set_meta(sw, "format", "uakd-weights");
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(sw, "format_version", 1);
        if (st == UAKD_OK) st = uakd_netdesc_put_metadata(d, sw);
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta(sw, "darknet_header", buf);
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(sw, "darknet_seen", h->seen);
        if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(sw, "darknet_layers", covered);
        uakd_safetensors_writer_checksum(sw, 1);
        if (st == UAKD_OK) st = uakd_safetensors_writer_write(sw, out_path);
    }
    if (n_covered) *n_covered = st == UAKD_OK ? covered : 0;
    uakd_safetensors_writer_free(sw);
    free(values);
    uakd_darknet_weights_close(w);
    free(layers);
    return st;
}
