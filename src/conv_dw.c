/* Direct depthwise convolution (groups == c_in == c_out) on plain NCHW, one channel plane at a time:
 *   forward:          y[n,c,i,j]  = b[c] + sum_{p,q} w[c,p,q] * x[n,c, i*sh-ph+p, j*sw-pw+q]
 *   backward data:    dx[n,c,u,v] = sum over (i,j,p,q) hitting (u,v) of w[c,p,q] * dy[n,c,i,j]
 *   backward weights: dw[c,p,q] += sum_{n,i,j} dy[n,c,i,j] * x[n,c, i*sh-ph+p, j*sw-pw+q]; db[c] += sum dy
 * Each plane is first copied into a zero-padded buffer (per thread), so every kernel tap (p,q) is a
 * branch-free scaled row update that vectorises. A depthwise layer does
 * ~KH*KW multiply-adds per element and is memory-bound: working in place on NCHW (no reorders to a
 * blocked layout and back) is what makes it fast. Planes run in parallel (OpenMP). */
#include <stdlib.h>
#include <string.h>

#include "conv_fast.h"


#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__INTEL_COMPILER)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

int uakd_conv2d_is_depthwise(const uakd_conv2d_desc *d) { return d->groups == d->c_in && d->groups == d->c_out; }

/* The padded plane: (h_in + 2 ph) x (w_in + 2 pw), image at offset (ph, pw). */
typedef struct padded {
    int h, w;
} padded;

static padded padded_size(const uakd_conv2d_desc *d) { return (padded){d->h_in + 2 * d->pad_h, d->w_in + 2 * d->pad_w}; }

static void pad_plane(const uakd_conv2d_desc *d, padded pd, const float *x, float *xp) {
    memset(xp, 0, sizeof(float) * pd.w * d->pad_h);
    for (int i = 0; i < d->h_in; i++) {
        float *r = xp + (size_t)(i + d->pad_h) * pd.w;
        memset(r, 0, sizeof(float) * d->pad_w);
        memcpy(r + d->pad_w, x + (size_t)i * d->w_in, sizeof(float) * d->w_in);
        memset(r + d->pad_w + d->w_in, 0, sizeof(float) * d->pad_w);
    }
    memset(xp + (size_t)(d->pad_h + d->h_in) * pd.w, 0, sizeof(float) * pd.w * d->pad_h);
}

/* y row i = bias + sum_{p,q} w[p,q] * xp[i*sh + p, j*sw + q], one tap at a time over the row. */
VECTOR_CLONES static void fwd_plane(const uakd_conv2d_desc *d, padded pd, const float *xp, const float *w, float bias,
                                    float *y) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), sw = d->stride_w;
    for (int i = 0; i < ho; i++) {
        float *yr = y + (size_t)i * wo;
        for (int j = 0; j < wo; j++) yr[j] = bias;
        for (int p = 0; p < d->kh; p++) {
            const float *xr = xp + (size_t)(i * d->stride_h + p) * pd.w;
            for (int q = 0; q < d->kw; q++) {
                const float wv = w[p * d->kw + q];
                const float *xs = xr + q;
                if (sw == 1) {
                    UAKD_OMP(omp simd)
                    for (int j = 0; j < wo; j++) yr[j] += wv * xs[j];
                } else {
                    for (int j = 0; j < wo; j++) yr[j] += wv * xs[j * sw];
                }
            }
        }
    }
}

/* dxp[i*sh + p, j*sw + q] += w[p,q] * dy[i, j]; the caller zeroes dxp and copies its interior out. */
VECTOR_CLONES static void bwd_data_plane(const uakd_conv2d_desc *d, padded pd, const float *dy, const float *w,
                                         float *dxp) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), sw = d->stride_w;
    for (int i = 0; i < ho; i++) {
        const float *dyr = dy + (size_t)i * wo;
        for (int p = 0; p < d->kh; p++) {
            float *xr = dxp + (size_t)(i * d->stride_h + p) * pd.w;
            for (int q = 0; q < d->kw; q++) {
                const float wv = w[p * d->kw + q];
                float *xs = xr + q;
                if (sw == 1) {
                    UAKD_OMP(omp simd)
                    for (int j = 0; j < wo; j++) xs[j] += wv * dyr[j];
                } else {
                    for (int j = 0; j < wo; j++) xs[j * sw] += wv * dyr[j];
                }
            }
        }
    }
}

/* g[p,q] += sum_{i,j} dy[i,j] * xp[i*sh + p, j*sw + q] for one image (row sums in float, taps in double). */
VECTOR_CLONES static void bwd_weights_plane(const uakd_conv2d_desc *d, padded pd, const float *xp, const float *dy,
                                            double *g) {
    const int ho = uakd_conv2d_out_h(d), wo = uakd_conv2d_out_w(d), sw = d->stride_w;
    for (int i = 0; i < ho; i++) {
        const float *dyr = dy + (size_t)i * wo;
        for (int p = 0; p < d->kh; p++) {
            const float *xr = xp + (size_t)(i * d->stride_h + p) * pd.w;
            for (int q = 0; q < d->kw; q++) {
                const float *xs = xr + q;
                float acc = 0;
                if (sw == 1) {
                    UAKD_OMP(omp simd reduction(+ : acc))
                    for (int j = 0; j < wo; j++) acc += dyr[j] * xs[j];
                } else {
                    for (int j = 0; j < wo; j++) acc += dyr[j] * xs[j * sw];
                }
                g[p * d->kw + q] += acc;
            }
        }
    }
}

static uakd_status oom(void) { return uakd_fail(UAKD_ENOMEM, "conv2d (depthwise): out of memory for a padded plane"); }

uakd_status uakd_conv2d_forward_dw(const uakd_conv2d_desc *d, const float *x, const float *w, const float *b, float *y) {
    const size_t xs = (size_t)d->h_in * d->w_in, ys = (size_t)uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
    const long planes = (long)d->n * d->c_in;
    const padded pd = padded_size(d);
    int failed = 0;
UAKD_OMP(omp parallel reduction(| : failed))
    {
        float *xp = malloc(sizeof(float) * pd.h * pd.w);
        failed = !xp;
UAKD_OMP(omp for schedule(static))
        for (long t = 0; t < planes; t++) {
            if (!xp) continue;
            const int c = (int)(t % d->c_in);
            pad_plane(d, pd, x + t * xs, xp);
            fwd_plane(d, pd, xp, w + (size_t)c * d->kh * d->kw, b ? b[c] : 0.0f, y + t * ys);
        }
        free(xp);
    }
    return failed ? oom() : UAKD_OK;
}

uakd_status uakd_conv2d_backward_data_dw(const uakd_conv2d_desc *d, const float *dy, const float *w, float *dx) {
    const size_t xs = (size_t)d->h_in * d->w_in, ys = (size_t)uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
    const long planes = (long)d->n * d->c_in;
    const padded pd = padded_size(d);
    int failed = 0;
UAKD_OMP(omp parallel reduction(| : failed))
    {
        float *dxp = malloc(sizeof(float) * pd.h * pd.w);
        failed = !dxp;
UAKD_OMP(omp for schedule(static))
        for (long t = 0; t < planes; t++) {
            if (!dxp) continue;
            const int c = (int)(t % d->c_in);
            memset(dxp, 0, sizeof(float) * pd.h * pd.w);
            bwd_data_plane(d, pd, dy + t * ys, w + (size_t)c * d->kh * d->kw, dxp);
            for (int i = 0; i < d->h_in; i++)
                memcpy(dx + t * xs + (size_t)i * d->w_in, dxp + (size_t)(i + d->pad_h) * pd.w + d->pad_w,
                       sizeof(float) * d->w_in);
        }
        free(dxp);
    }
    return failed ? oom() : UAKD_OK;
}

uakd_status uakd_conv2d_backward_weights_dw(const uakd_conv2d_desc *d, const float *x, const float *dy, float *dw,
                                            float *db) {
    const size_t xs = (size_t)d->h_in * d->w_in, ys = (size_t)uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
    const int taps = d->kh * d->kw;
    const padded pd = padded_size(d);
    int failed = 0;
UAKD_OMP(omp parallel reduction(| : failed))
    {
        float *xp = malloc(sizeof(float) * pd.h * pd.w);
        double *g = malloc(sizeof(double) * taps);
        failed = !xp || !g;
UAKD_OMP(omp for schedule(static))
        for (int c = 0; c < d->c_in; c++) {
            if (!xp || !g) continue;
            double bsum = 0;
            memset(g, 0, sizeof(double) * taps);
            for (int n = 0; n < d->n; n++) {
                const size_t t = (size_t)n * d->c_in + c;
                pad_plane(d, pd, x + t * xs, xp);
                bwd_weights_plane(d, pd, xp, dy + t * ys, g);
                for (size_t k = 0; k < ys; k++) bsum += dy[t * ys + k];
            }
            for (int k = 0; k < taps; k++) dw[(size_t)c * taps + k] += (float)g[k];
            if (db) db[c] += (float)bsum;
        }
        free(xp);
        free(g);
    }
    return failed ? oom() : UAKD_OK;
}
