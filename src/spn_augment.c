/* Photometric augmentations of the SPNv2 recipe not covered by the data module: random erasing and
 * a sun flare, on 8-bit interleaved images, driven only by the given rng (deterministic per seed).
 *
 * Random erasing (as torchvision's RandomErasing, value = noise): area a = U(amin, amax) W H,
 * aspect h / w = exp(U(log rmin, log rmax)), h = round(sqrt(a r)), w = round(sqrt(a / r)); up to 10
 * draws until 0 < w < W and 0 < h < H; the rectangle's top-left is uniform; each byte of it becomes
 * a uniform value in 0..255.
 * Sun flare: main disc of radius R = U(rmin, rmax) max(W, H), centre (U(0, W), U(0, f H)),
 * intensity I = U(imin, imax); ghosts along the line from the centre c through the image centre m
 * at c + U(0.4, 1.8) (m - c), radius R U(0.1, 0.3), intensity I U(0.1, 0.3). Each disc adds
 * 255 I (1 - (d / R)^2)^2 for d < R to every colour channel; the sum is rounded and saturated at 255.
 * Images are grey, RGB or RGBA; alpha is left alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/spn.h"

static uakd_status check_image(const uakd_image *im, const char *what) {
    if (!im->data || im->width < 1 || im->height < 1 || (im->channels != 1 && im->channels != 3 && im->channels != 4) ||
        (size_t)im->width * im->height > ((size_t)1 << 28))
        return uakd_fail(UAKD_EINVAL, "%s: image %dx%dx%d is empty or too large", what, im->width, im->height,
                         im->channels);
    return UAKD_OK;
}

/* Alpha (the 4th channel of RGBA) is never changed. */
static int colour_channels(const uakd_image *im) { return im->channels == 4 ? 3 : im->channels; }

void uakd_spn_erase_config_default(uakd_spn_erase_config *cfg) {
    cfg->area_min = 0.02;
    cfg->area_max = 0.33;
    cfg->aspect_min = 0.3;
    cfg->aspect_max = 3.3;
}

uakd_status uakd_spn_random_erase(uakd_image *im, uakd_rng *rng, const uakd_spn_erase_config *cfg,
                                  uakd_spn_rect *rect) {
    UAKD_TRY(check_image(im, "random erase"));
    if (!(cfg->area_min > 0 && cfg->area_min <= cfg->area_max && cfg->area_max <= 1))
        return uakd_fail(UAKD_EINVAL, "random erase: area fractions [%g, %g] must satisfy 0 < min <= max <= 1",
                         cfg->area_min, cfg->area_max);
    if (!(cfg->aspect_min > 0 && cfg->aspect_min <= cfg->aspect_max && isfinite(cfg->aspect_max)))
        return uakd_fail(UAKD_EINVAL, "random erase: aspect range [%g, %g] must satisfy 0 < min <= max",
                         cfg->aspect_min, cfg->aspect_max);
    int W = im->width, H = im->height, C = im->channels;
    memset(rect, 0, sizeof *rect);
    for (int attempt = 0; attempt < 10; attempt++) {
        double area = uakd_rng_range(rng, cfg->area_min, cfg->area_max) * W * H;
        double aspect = exp(uakd_rng_range(rng, log(cfg->aspect_min), log(cfg->aspect_max)));
        int h = (int)lround(sqrt(area * aspect)), w = (int)lround(sqrt(area / aspect));
        if (!(w > 0 && w < W && h > 0 && h < H)) continue;
        rect->x = (int)uakd_rng_below(rng, (uint64_t)(W - w + 1));
        rect->y = (int)uakd_rng_below(rng, (uint64_t)(H - h + 1));
        rect->w = w;
        rect->h = h;
        for (int y = rect->y; y < rect->y + h; y++)
            for (int x = rect->x; x < rect->x + w; x++)
                for (int c = 0; c < colour_channels(im); c++)
                    im->data[((size_t)y * W + x) * C + c] = (uint8_t)(uakd_rng_u64(rng) >> 56);
        return UAKD_OK;
    }
    return UAKD_OK;
}

void uakd_spn_flare_config_default(uakd_spn_flare_config *cfg) {
    cfg->radius_min = 0.05;
    cfg->radius_max = 0.15;
    cfg->intensity_min = 0.6;
    cfg->intensity_max = 1.0;
    cfg->top_fraction = 0.5;
    cfg->ghosts = 3;
}

/* Adds disc i of f to the accumulator add (W x H). */
static void add_disc(const uakd_spn_flare *f, int i, int W, int H, float *add) {
    double cx = f->cx[i], cy = f->cy[i], R = f->radius[i], I = 255 * f->intensity[i];
    int x0 = (int)fmax(0, floor(cx - R)), x1 = (int)fmin(W - 1, ceil(cx + R));
    int y0 = (int)fmax(0, floor(cy - R)), y1 = (int)fmin(H - 1, ceil(cy + R));
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double q = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (R * R);
            if (q < 1) add[(size_t)y * W + x] += (float)(I * (1 - q) * (1 - q));
        }
}

uakd_status uakd_spn_sun_flare(uakd_image *im, uakd_rng *rng, const uakd_spn_flare_config *cfg,
                               uakd_spn_flare *flare) {
    UAKD_TRY(check_image(im, "sun flare"));
    if (!(cfg->radius_min > 0 && cfg->radius_min <= cfg->radius_max && cfg->radius_max <= 2))
        return uakd_fail(UAKD_EINVAL, "sun flare: radius fractions [%g, %g] must satisfy 0 < min <= max <= 2",
                         cfg->radius_min, cfg->radius_max);
    if (!(cfg->intensity_min >= 0 && cfg->intensity_min <= cfg->intensity_max && cfg->intensity_max <= 4))
        return uakd_fail(UAKD_EINVAL, "sun flare: intensities [%g, %g] must satisfy 0 <= min <= max <= 4",
                         cfg->intensity_min, cfg->intensity_max);
    if (!(cfg->top_fraction > 0 && cfg->top_fraction <= 1) || cfg->ghosts < 0 || cfg->ghosts >= UAKD_SPN_MAX_FLARES)
        return uakd_fail(UAKD_EINVAL, "sun flare: top_fraction %g must lie in (0, 1] and ghosts %d in 0..%d",
                         cfg->top_fraction, cfg->ghosts, UAKD_SPN_MAX_FLARES - 1);
    int W = im->width, H = im->height, C = im->channels;
    uakd_spn_flare f;
    memset(&f, 0, sizeof f);
    f.count = 1 + cfg->ghosts;
    f.radius[0] = uakd_rng_range(rng, cfg->radius_min, cfg->radius_max) * (W > H ? W : H);
    f.intensity[0] = uakd_rng_range(rng, cfg->intensity_min, cfg->intensity_max);
    f.cx[0] = uakd_rng_range(rng, 0, W);
    f.cy[0] = uakd_rng_range(rng, 0, cfg->top_fraction * H);
    double mx = 0.5 * (W - 1), my = 0.5 * (H - 1);
    for (int g = 1; g < f.count; g++) {
        double at = uakd_rng_range(rng, 0.4, 1.8);
        f.cx[g] = f.cx[0] + at * (mx - f.cx[0]);
        f.cy[g] = f.cy[0] + at * (my - f.cy[0]);
        f.radius[g] = f.radius[0] * uakd_rng_range(rng, 0.1, 0.3);
        f.intensity[g] = f.intensity[0] * uakd_rng_range(rng, 0.1, 0.3);
    }
    float *add = calloc((size_t)W * H, sizeof *add);
    if (!add) return uakd_fail(UAKD_ENOMEM, "sun flare: no memory for a %dx%d accumulator", W, H);
    for (int i = 0; i < f.count; i++) add_disc(&f, i, W, H, add);
    for (size_t p = 0; p < (size_t)W * H; p++) {
        int a = (int)lrintf(add[p]);
        if (a <= 0) continue;
        for (int c = 0; c < colour_channels(im); c++) {
            int v = im->data[p * C + c] + a;
            im->data[p * C + c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    free(add);
    if (flare) *flare = f;
    return UAKD_OK;
}
