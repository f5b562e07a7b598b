/* PNG and JPEG decoding and encoding through libpng's simplified API and the TurboJPEG API.
 * JPEG decoding uses libjpeg-turbo's DCT scaling to produce 1/2, 1/4 or 1/8 size directly;
 * PNG has no such mode, so its reduced sizes come from a box filter over the full image.
 * Affine resampling: dst(p') = src(M p'), bilinear (weights (1-fx)(1-fy), fx(1-fy), (1-fx)fy, fx fy
 * of the 4 neighbours) or nearest (round half up), out-of-image neighbours read as a fill value.
 * The decoded-image cache is a chained hash table (FNV-1a of the path) under one mutex; decoding
 * happens outside the lock, and a racing duplicate insert keeps the first copy. */
#include "uakd/image.h"

#include <limits.h>
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <turbojpeg.h>

#define UAKD_IMAGE_MAX_SIDE 65536
#define UAKD_IMAGE_MAX_FILE (1u << 30)

uakd_status uakd_image_alloc(uakd_image *im, int width, int height, int channels) {
    memset(im, 0, sizeof *im);
    if (width <= 0 || height <= 0 || width > UAKD_IMAGE_MAX_SIDE || height > UAKD_IMAGE_MAX_SIDE)
        return uakd_fail(UAKD_EINVAL, "image size %dx%d: each side must be in 1..%d", width, height,
                         UAKD_IMAGE_MAX_SIDE);
    if (channels != 1 && channels != 3 && channels != 4)
        return uakd_fail(UAKD_EINVAL, "image channels %d: use 1, 3 or 4", channels);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    im->data = calloc(n, 1);
    if (!im->data) return uakd_fail(UAKD_ENOMEM, "image %dx%dx%d: out of memory", width, height, channels);
    im->width = width;
    im->height = height;
    im->channels = channels;
    return UAKD_OK;
}

void uakd_image_free(uakd_image *im) {
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

static uakd_status read_file(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open image file (check the path)", path);
    uakd_status st = UAKD_OK;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = uakd_fail(UAKD_EIO, "%s: cannot determine the file size", path);
    } else if ((unsigned long)size > UAKD_IMAGE_MAX_FILE) {
        st = uakd_fail(UAKD_EFORMAT, "%s: image file of %ld bytes exceeds the 1 GiB limit", path, size);
    } else if (size == 0) {
        st = uakd_fail(UAKD_EFORMAT, "%s: empty file, expected a PNG or JPEG image", path);
    } else if (!(*buf = malloc((size_t)size))) {
        st = uakd_fail(UAKD_ENOMEM, "%s: out of memory reading %ld bytes", path, size);
    } else if (fread(*buf, 1, (size_t)size, f) != (size_t)size) {
        st = uakd_fail(UAKD_EIO, "%s: short read", path);
    }
    fclose(f);
    if (st != UAKD_OK) {
        free(*buf);
        *buf = NULL;
    } else {
        *len = (size_t)size;
    }
    return st;
}

static int is_png(const unsigned char *b, size_t n) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return n >= 8 && memcmp(b, sig, 8) == 0;
}

static int is_jpeg(const unsigned char *b, size_t n) { return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff; }

/* Box-filters src by an integer factor d into an image of ceil(w/d) x ceil(h/d). */
static uakd_status box_downsample(const uakd_image *src, int d, uakd_image *dst) {
    int w = (src->width + d - 1) / d, h = (src->height + d - 1) / d, c = src->channels;
    UAKD_TRY(uakd_image_alloc(dst, w, h, c));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int y1 = y * d + d < src->height ? y * d + d : src->height;
            int x1 = x * d + d < src->width ? x * d + d : src->width;
            for (int k = 0; k < c; k++) {
                unsigned sum = 0, cnt = 0;
                for (int yy = y * d; yy < y1; yy++)
                    for (int xx = x * d; xx < x1; xx++, cnt++) sum += src->data[((size_t)yy * src->width + xx) * c + k];
                dst->data[((size_t)y * w + x) * c + k] = (uint8_t)((sum + cnt / 2) / cnt);
            }
        }
    return UAKD_OK;
}

static uakd_status decode_png(const unsigned char *buf, size_t len, int channels, const char *name,
                              uakd_image *out) {
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, buf, len))
        return uakd_fail(UAKD_EFORMAT, "%s: not a readable PNG (%s)", name, pi.message);
    if (pi.width > UAKD_IMAGE_MAX_SIDE || pi.height > UAKD_IMAGE_MAX_SIDE) {
        png_image_free(&pi);
        return uakd_fail(UAKD_EFORMAT, "%s: PNG of %ux%u exceeds the %d pixel side limit", name, pi.width,
                         pi.height, UAKD_IMAGE_MAX_SIDE);
    }
    pi.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    uakd_status st = uakd_image_alloc(out, (int)pi.width, (int)pi.height, channels);
    if (st != UAKD_OK) {
        png_image_free(&pi);
        return st;
    }
    if (!png_image_finish_read(&pi, NULL, out->data, 0, NULL)) {
        uakd_image_free(out);
        return uakd_fail(UAKD_EFORMAT, "%s: corrupt or truncated PNG (%s)", name, pi.message);
    }
    return UAKD_OK;
}

static int tj_format(int channels) { return channels == 1 ? TJPF_GRAY : channels == 3 ? TJPF_RGB : TJPF_RGBA; }

static uakd_status decode_jpeg(const unsigned char *buf, size_t len, int channels, int denom, const char *name,
                               uakd_image *out) {
    if (len > ULONG_MAX) return uakd_fail(UAKD_EFORMAT, "%s: JPEG too large", name);
    tjhandle tj = tjInitDecompress();
    if (!tj) return uakd_fail(UAKD_ENOMEM, "%s: cannot start the JPEG decoder", name);
    int w, h, subsamp, colorspace;
    uakd_status st = UAKD_OK;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        st = uakd_fail(UAKD_EFORMAT, "%s: not a readable JPEG (%s)", name, tjGetErrorStr2(tj));
    } else if (w <= 0 || h <= 0 || w > UAKD_IMAGE_MAX_SIDE || h > UAKD_IMAGE_MAX_SIDE) {
        st = uakd_fail(UAKD_EFORMAT, "%s: JPEG size %dx%d is outside 1..%d", name, w, h, UAKD_IMAGE_MAX_SIDE);
    } else {
        tjscalingfactor sf = {1, denom};
        int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
        st = uakd_image_alloc(out, sw, sh, channels);
        if (st == UAKD_OK &&
            tjDecompress2(tj, buf, (unsigned long)len, out->data, sw, 0, sh, tj_format(channels), TJFLAG_ACCURATEDCT) != 0) {
            /* libjpeg-turbo reports truncated data as a warning after filling grey: refuse it */
            st = uakd_fail(UAKD_EFORMAT, "%s: corrupt or truncated JPEG (%s)", name, tjGetErrorStr2(tj));
            uakd_image_free(out);
        }
    }
    tjDestroy(tj);
    return st;
}

uakd_status uakd_image_decode(const void *buf, size_t len, int channels, int scale_denom, const char *name,
                              uakd_image *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (channels != 1 && channels != 3 && channels != 4)
        return uakd_fail(UAKD_EINVAL, "%s: requested %d channels; use 1, 3 or 4", name, channels);
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
        return uakd_fail(UAKD_EINVAL, "%s: scale 1/%d is not supported; use 1, 2, 4 or 8", name, scale_denom);
    const unsigned char *b = buf;
    if (is_jpeg(b, len)) return decode_jpeg(b, len, channels, scale_denom, name, out);
    if (!is_png(b, len)) return uakd_fail(UAKD_EFORMAT, "%s: neither PNG nor JPEG (bad signature)", name);
    if (scale_denom == 1) return decode_png(b, len, channels, name, out);
    uakd_image full;
    UAKD_TRY(decode_png(b, len, channels, name, &full));
    uakd_status st = box_downsample(&full, scale_denom, out);
    uakd_image_free(&full);
    return st;
}

uakd_status uakd_image_read(const char *path, int channels, int scale_denom, uakd_image *out) {
    unsigned char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    UAKD_TRY(read_file(path, &buf, &len));
    uakd_status st = uakd_image_decode(buf, len, channels, scale_denom, path, out);
    free(buf);
    return st;
}

uakd_status uakd_image_read_size(const char *path, int *width, int *height) {
    unsigned char *buf;
    size_t len;
    UAKD_TRY(read_file(path, &buf, &len));
    uakd_status st = UAKD_OK;
    if (is_png(buf, len)) {
        png_image pi;
        memset(&pi, 0, sizeof pi);
        pi.version = PNG_IMAGE_VERSION;
        if (!png_image_begin_read_from_memory(&pi, buf, len)) {
            st = uakd_fail(UAKD_EFORMAT, "%s: not a readable PNG (%s)", path, pi.message);
        } else {
            *width = (int)pi.width;
            *height = (int)pi.height;
            png_image_free(&pi);
        }
    } else if (is_jpeg(buf, len)) {
        tjhandle tj = tjInitDecompress();
        int ss, cs;
        if (!tj || tjDecompressHeader3(tj, buf, (unsigned long)len, width, height, &ss, &cs) != 0)
            st = uakd_fail(UAKD_EFORMAT, "%s: not a readable JPEG", path);
        if (tj) tjDestroy(tj);
    } else {
        st = uakd_fail(UAKD_EFORMAT, "%s: neither PNG nor JPEG (bad signature)", path);
    }
    free(buf);
    return st;
}

uakd_status uakd_image_encode_png(const uakd_image *im, void **png, size_t *len, const char *name) {
    *png = NULL;
    *len = 0;
    if (!im || !im->data || im->width <= 0 || im->height <= 0 ||
        (im->channels != 1 && im->channels != 3 && im->channels != 4))
        return uakd_fail(UAKD_EINVAL, "%s: cannot encode an empty or malformed image", name);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)im->width;
    pi.height = (png_uint_32)im->height;
    pi.format = im->channels == 1 ? PNG_FORMAT_GRAY : im->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&pi, NULL, &size, 0, im->data, 0, NULL))
        return uakd_fail(UAKD_EFORMAT, "%s: PNG encoding failed (%s)", name, pi.message);
    void *buf = malloc(size);
    if (!buf) return uakd_fail(UAKD_ENOMEM, "%s: out of memory for a %zu-byte PNG", name, (size_t)size);
    if (!png_image_write_to_memory(&pi, buf, &size, 0, im->data, 0, NULL)) {
        free(buf);
        return uakd_fail(UAKD_EFORMAT, "%s: PNG encoding failed (%s)", name, pi.message);
    }
    *png = buf;
    *len = size;
    return UAKD_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

uakd_status uakd_image_write(const char *path, const uakd_image *im, int jpeg_quality) {
    if (!im || !im->data || im->width <= 0 || im->height <= 0 ||
        (im->channels != 1 && im->channels != 3 && im->channels != 4))
        return uakd_fail(UAKD_EINVAL, "%s: cannot write an empty or malformed image", path);
    if (ends_with(path, ".png")) {
        png_image pi;
        memset(&pi, 0, sizeof pi);
        pi.version = PNG_IMAGE_VERSION;
        pi.width = (png_uint_32)im->width;
        pi.height = (png_uint_32)im->height;
        pi.format = im->channels == 1 ? PNG_FORMAT_GRAY : im->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
        if (!png_image_write_to_file(&pi, path, 0, im->data, 0, NULL))
            return uakd_fail(UAKD_EIO, "%s: cannot write PNG (%s)", path, pi.message);
        return UAKD_OK;
    }
    if (ends_with(path, ".jpg") || ends_with(path, ".jpeg")) {
        if (jpeg_quality < 1 || jpeg_quality > 100)
            return uakd_fail(UAKD_EINVAL, "%s: JPEG quality %d must be in 1..100", path, jpeg_quality);
        tjhandle tj = tjInitCompress();
        if (!tj) return uakd_fail(UAKD_ENOMEM, "%s: cannot start the JPEG encoder", path);
        unsigned char *jbuf = NULL;
        unsigned long jlen = 0;
        int sub = im->channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
        uakd_status st = UAKD_OK;
        if (tjCompress2(tj, im->data, im->width, 0, im->height, tj_format(im->channels), &jbuf, &jlen, sub,
                        jpeg_quality, TJFLAG_ACCURATEDCT) != 0) {
            st = uakd_fail(UAKD_EFORMAT, "%s: JPEG encoding failed (%s)", path, tjGetErrorStr2(tj));
        } else {
            FILE *f = fopen(path, "wb");
            if (!f) {
                st = uakd_fail(UAKD_EIO, "%s: cannot create file (check the directory exists)", path);
            } else {
                if (fwrite(jbuf, 1, jlen, f) != jlen) st = uakd_fail(UAKD_EIO, "%s: short write", path);
                if (fclose(f) != 0 && st == UAKD_OK) st = uakd_fail(UAKD_EIO, "%s: write failed", path);
            }
        }
        tjFree(jbuf);
        tjDestroy(tj);
        return st;
    }
    return uakd_fail(UAKD_EINVAL, "%s: unknown image extension; use .png, .jpg or .jpeg", path);
}

uakd_status uakd_image_warp_affine(const uakd_image *src, const double M[6], int nearest, uint8_t fill,
                                   uakd_image *dst) {
    if (!src || !src->data || !dst || !dst->data || src->channels != dst->channels)
        return uakd_fail(UAKD_EINVAL, "image warp: source and destination must be allocated with equal channels");
    for (int k = 0; k < 6; k++)
        if (!isfinite(M[k])) return uakd_fail(UAKD_EINVAL, "image warp: non-finite affine");
    const int w = src->width, h = src->height, c = src->channels;
    for (int y = 0; y < dst->height; y++) {
        uint8_t *out = dst->data + (size_t)y * dst->width * c;
        for (int x = 0; x < dst->width; x++, out += c) {
            double sx = M[0] * x + M[1] * y + M[2], sy = M[3] * x + M[4] * y + M[5];
            if (nearest) {
                double fx = floor(sx + 0.5), fy = floor(sy + 0.5);
                if (fx < 0 || fy < 0 || fx >= w || fy >= h) {
                    memset(out, fill, (size_t)c);
                } else {
                    memcpy(out, src->data + ((size_t)fy * w + (size_t)fx) * c, (size_t)c);
                }
                continue;
            }
            if (!(sx > -1 && sy > -1 && sx < w && sy < h)) {
                memset(out, fill, (size_t)c);
                continue;
            }
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            double ax = sx - x0, ay = sy - y0;
            if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) { /* all four neighbours inside */
                const uint8_t *p0 = src->data + ((size_t)y0 * w + x0) * c, *p1 = p0 + (size_t)w * c;
                for (int k = 0; k < c; k++) {
                    double top = p0[k] + ax * (p0[k + c] - p0[k]), bot = p1[k] + ax * (p1[k + c] - p1[k]);
                    out[k] = (uint8_t)(top + ay * (bot - top) + 0.5);
                }
                continue;
            }
            const double wts[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
            const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
            for (int k = 0; k < c; k++) {
                double v = 0;
                for (int n = 0; n < 4; n++) {
                    int inside = xs[n] >= 0 && ys[n] >= 0 && xs[n] < w && ys[n] < h;
                    v += wts[n] * (inside ? src->data[((size_t)ys[n] * w + xs[n]) * c + k] : fill);
                }
                out[k] = (uint8_t)(v + 0.5);
            }
        }
    }
    return UAKD_OK;
}

typedef struct cache_entry {
    struct cache_entry *next;
    char *path;
    int channels, scale;
    uakd_image image;
} cache_entry;

struct uakd_image_cache {
    pthread_mutex_t mu;
    cache_entry **buckets;
    size_t num_buckets, count, bytes, max_bytes;
    long hits, misses;
};

static size_t hash_key(const char *path, int channels, int scale) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) h = (h ^ *p) * 1099511628211ull;
    h = (h ^ (uint64_t)channels) * 1099511628211ull;
    h = (h ^ (uint64_t)scale) * 1099511628211ull;
    return (size_t)h;
}

uakd_status uakd_image_cache_new(size_t max_bytes, uakd_image_cache **out) {
    *out = NULL;
    uakd_image_cache *c = calloc(1, sizeof *c);
    if (c) c->buckets = calloc(1024, sizeof *c->buckets);
    if (!c || !c->buckets) {
        free(c);
        return uakd_fail(UAKD_ENOMEM, "image cache: out of memory");
    }
    c->num_buckets = 1024;
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return UAKD_OK;
}

void uakd_image_cache_free(uakd_image_cache *c) {
    if (!c) return;
    for (size_t b = 0; b < c->num_buckets; b++)
        for (cache_entry *e = c->buckets[b], *n; e; e = n) {
            n = e->next;
            uakd_image_free(&e->image);
            free(e->path);
            free(e);
        }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static cache_entry *cache_find(uakd_image_cache *c, size_t h, const char *path, int channels, int scale) {
    for (cache_entry *e = c->buckets[h % c->num_buckets]; e; e = e->next)
        if (e->channels == channels && e->scale == scale && strcmp(e->path, path) == 0) return e;
    return NULL;
}

/* With the lock held: doubles the bucket array when the load exceeds 1 (failure just keeps it). */
static void cache_grow(uakd_image_cache *c) {
    if (c->count < c->num_buckets) return;
    size_t n = 2 * c->num_buckets;
    cache_entry **nb = calloc(n, sizeof *nb);
    if (!nb) return;
    for (size_t b = 0; b < c->num_buckets; b++)
        for (cache_entry *e = c->buckets[b], *next; e; e = next) {
            next = e->next;
            size_t h = hash_key(e->path, e->channels, e->scale) % n;
            e->next = nb[h];
            nb[h] = e;
        }
    free(c->buckets);
    c->buckets = nb;
    c->num_buckets = n;
}

uakd_status uakd_image_cache_read(uakd_image_cache *c, const char *path, int channels, int scale_denom,
                                  uakd_image *tmp, const uakd_image **out) {
    memset(tmp, 0, sizeof *tmp);
    *out = NULL;
    if (!c) {
        UAKD_TRY(uakd_image_read(path, channels, scale_denom, tmp));
        *out = tmp;
        return UAKD_OK;
    }
    size_t h = hash_key(path, channels, scale_denom);
    pthread_mutex_lock(&c->mu);
    cache_entry *e = cache_find(c, h, path, channels, scale_denom);
    if (e) c->hits++;
    else c->misses++;
    pthread_mutex_unlock(&c->mu);
    if (e) {
        *out = &e->image;
        return UAKD_OK;
    }
    UAKD_TRY(uakd_image_read(path, channels, scale_denom, tmp));
    *out = tmp;
    size_t bytes = (size_t)tmp->width * tmp->height * tmp->channels;
    pthread_mutex_lock(&c->mu);
    e = cache_find(c, h, path, channels, scale_denom);
    if (e) { /* another thread inserted it meanwhile */
        uakd_image_free(tmp);
        *out = &e->image;
    } else if (c->bytes + bytes <= c->max_bytes) {
        cache_entry *n = calloc(1, sizeof *n);
        char *p = strdup(path);
        if (n && p) {
            n->path = p;
            n->channels = channels;
            n->scale = scale_denom;
            n->image = *tmp;
            memset(tmp, 0, sizeof *tmp);
            n->next = c->buckets[h % c->num_buckets];
            c->buckets[h % c->num_buckets] = n;
            c->count++;
            c->bytes += bytes;
            *out = &n->image;
            cache_grow(c);
        } else {
            free(n);
            free(p);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return UAKD_OK;
}

void uakd_image_cache_stats(uakd_image_cache *c, long *hits, long *misses, size_t *bytes) {
    pthread_mutex_lock(&c->mu);
    if (hits) *hits = c->hits;
    if (misses) *misses = c->misses;
    if (bytes) *bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
