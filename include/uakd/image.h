/* 8-bit images: PNG (libpng) and JPEG (libjpeg-turbo, with scaled decoding) read and write.
 *
 * Pixels are interleaved rows, top row first: data[(y * width + x) * channels + c].
 * channels is 1 (grey), 3 (RGB) or 4 (RGBA). */
#ifndef UAKD_IMAGE_H
#define UAKD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "uakd/status.h"

typedef struct uakd_image {
    int width, height, channels;
    uint8_t *data;
} uakd_image;

/* Allocates a zeroed width x height x channels image (sizes checked for overflow). */
uakd_status uakd_image_alloc(uakd_image *im, int width, int height, int channels);
/* Frees the pixels and zeroes the struct; safe on a zeroed struct. */
void uakd_image_free(uakd_image *im);

/* Decodes a PNG or JPEG (detected from its first bytes) held in memory. channels: 1, 3 or 4
 * (converted as needed). scale_denom: 1, 2, 4 or 8; JPEG decodes straight to the reduced size
 * (ceil(w / d) x ceil(h / d)), PNG is box-filtered to the same size. name is used in messages. */
uakd_status uakd_image_decode(const void *buf, size_t len, int channels, int scale_denom,
                              const char *name, uakd_image *out);
/* Reads a PNG or JPEG file; see uakd_image_decode. */
uakd_status uakd_image_read(const char *path, int channels, int scale_denom, uakd_image *out);
/* Reads only the size of a PNG or JPEG file. */
uakd_status uakd_image_read_size(const char *path, int *width, int *height);
/* Encodes a PNG into a malloc'ed buffer (*png, *len; the caller frees it). name is for messages. */
uakd_status uakd_image_encode_png(const uakd_image *im, void **png, size_t *len, const char *name);
/* Writes a PNG (path ends in .png) or JPEG (.jpg/.jpeg, quality 1..100). */
uakd_status uakd_image_write(const char *path, const uakd_image *im, int jpeg_quality);

/* Resamples src through the affine M into dst, which the caller has allocated with the same channel
 * count: dst(u', v') = src(M [u'; v'; 1]) with M = [M0 M1 M2; M3 M4 M5] (source pixel <- destination
 * pixel, pixel centres at integer coordinates). Bilinear, or nearest neighbour when nearest != 0
 * (for masks); source pixels outside the image read as fill. */
uakd_status uakd_image_warp_affine(const uakd_image *src, const double M[6], int nearest, uint8_t fill,
                                   uakd_image *dst);

/* A thread-safe cache of decoded images keyed by (path, channels, scale), for loaders that crop
 * the same images many times. Entries are never evicted: once max_bytes of pixels are held, new
 * images are decoded but not kept. Cached images stay valid until the cache is freed. */
typedef struct uakd_image_cache uakd_image_cache;

uakd_status uakd_image_cache_new(size_t max_bytes, uakd_image_cache **out);
void uakd_image_cache_free(uakd_image_cache *c);
/* Like uakd_image_read. *out points either at the cached image or at *tmp, which then holds a
 * freshly decoded image; the caller always calls uakd_image_free(tmp) when done with *out
 * (a no-op when the image came from the cache). c may be NULL (no caching). */
uakd_status uakd_image_cache_read(uakd_image_cache *c, const char *path, int channels, int scale_denom,
                                  uakd_image *tmp, const uakd_image **out);
/* Hits, misses and bytes held so far. */
void uakd_image_cache_stats(uakd_image_cache *c, long *hits, long *misses, size_t *bytes);

#endif
