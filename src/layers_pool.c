/* Spatial resampling layers: max pooling (k x k, stride s, padding p), nearest x2 upsampling,
 * global average pooling and the channel-wise multiply of squeeze-and-excitation.
 *   maxpool:   y[i,j] = max_{p,q < k} x[i s - pad + p, j s - pad + q] (outside = -inf); the first
 *              maximum in row-major window order is the argmax and receives the gradient.
 *   upsample2: y[i,j] = x[i/2, j/2];   dx[i,j] = sum_{a,b in {0,1}} dy[2i+a, 2j+b]
 *   gap:       y[c] = mean_hw x[c,:];  dx[c,:] = dy[c] / HW
 *   cmul:      y[c,:] = x[c,:] s[c];   dx = dy s, ds[c] = sum_hw dy x
 * Every kernel is parallel over the N*C planes, each plane owned by one thread. */
#include <float.h>
#include <string.h>

#include "layers_omp.h"
#include "uakd/layers.h"

int uakd_pool_out_h(const uakd_pool_desc *d) { return (d->h + 2 * d->pad - d->k) / d->stride + 1; }
int uakd_pool_out_w(const uakd_pool_desc *d) { return (d->w + 2 * d->pad - d->k) / d->stride + 1; }

/* The common 2x2 stride-2 unpadded window, branch-free: the pairs (top-left, top-right) and
 * (bottom-left, bottom-right) are reduced with strict comparisons, then the top pair wins ties,
 * which is the same first-maximum rule. */
static void maxpool2(const float *xp, int w, int ho, int wo, float *yp, int32_t *ap) {
    for (int i = 0; i < ho; i++) {
        const float *r0 = xp + (size_t)(2 * i) * w, *r1 = r0 + w;
        for (int j = 0; j < wo; j++) {
            const int32_t base = 2 * i * w + 2 * j;
            const float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
            const int tb = b > a, td = d > c;
            const float top = tb ? b : a, bot = td ? d : c;
            const int32_t itop = base + tb, ibot = base + w + td;
            const int tbot = bot > top;
            yp[i * wo + j] = tbot ? bot : top;
            if (ap) ap[i * wo + j] = tbot ? ibot : itop;
        }
    }
}

/* x: (N, C, H, W) -> y, argmax: (N, C, HO, WO) */
void uakd_maxpool_forward(const uakd_pool_desc *d, const float *x, float *y, int32_t *argmax) {
    const int ho = uakd_pool_out_h(d), wo = uakd_pool_out_w(d);
    if (d->k == 2 && d->stride == 2 && d->pad == 0) {
        UAKD_PARALLEL_FOR((int64_t)d->n * d->c * d->h * d->w)
        for (int pl = 0; pl < d->n * d->c; pl++)
            maxpool2(x + (size_t)pl * d->h * d->w, d->w, ho, wo, y + (size_t)pl * ho * wo,
                     argmax ? argmax + (size_t)pl * ho * wo : NULL);
        return;
    }
    UAKD_PARALLEL_FOR((int64_t)d->n * d->c * d->h * d->w)
    for (int pl = 0; pl < d->n * d->c; pl++) {
        const float *xp = x + (size_t)pl * d->h * d->w;
        float *yp = y + (size_t)pl * ho * wo;
        int32_t *ap = argmax ? argmax + (size_t)pl * ho * wo : NULL;
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                float best = -FLT_MAX;
                int32_t arg = -1;
                for (int p = 0; p < d->k; p++) {
                    const int yy = i * d->stride - d->pad + p;
                    if (yy < 0 || yy >= d->h) continue;
                    for (int q = 0; q < d->k; q++) {
                        const int xx = j * d->stride - d->pad + q;
                        if (xx < 0 || xx >= d->w) continue;
                        const float v = xp[yy * d->w + xx];
                        if (arg < 0 || v > best) best = v, arg = yy * d->w + xx;
                    }
                }
                yp[i * wo + j] = best;
                if (ap) ap[i * wo + j] = arg;
            }
    }
}

/* dy: (N, C, HO, WO) -> dx: (N, C, H, W), assigned. */
void uakd_maxpool_backward(const uakd_pool_desc *d, const int32_t *argmax, const float *dy, float *dx) {
    const int ho = uakd_pool_out_h(d), wo = uakd_pool_out_w(d);
    UAKD_PARALLEL_FOR((int64_t)d->n * d->c * d->h * d->w)
    for (int pl = 0; pl < d->n * d->c; pl++) {
        float *dxp = dx + (size_t)pl * d->h * d->w;
        const float *dyp = dy + (size_t)pl * ho * wo;
        const int32_t *ap = argmax + (size_t)pl * ho * wo;
        memset(dxp, 0, sizeof(float) * d->h * d->w);
        for (int o = 0; o < ho * wo; o++) dxp[ap[o]] += dyp[o];
    }
}

/* x: (N, C, H, W) -> y: (N, C, 2H, 2W) */
void uakd_upsample2_forward(int n, int c, int h, int w, const float *x, float *y) {
    UAKD_PARALLEL_FOR((int64_t)n * c * h * w * 4)
    for (int pl = 0; pl < n * c; pl++) {
        const float *xp = x + (size_t)pl * h * w;
        float *yp = y + (size_t)pl * 4 * h * w;
        for (int i = 0; i < h; i++) {
            float *r0 = yp + (size_t)(2 * i) * 2 * w, *r1 = r0 + 2 * w;
            for (int j = 0; j < w; j++) r0[2 * j] = r0[2 * j + 1] = xp[i * w + j];
            memcpy(r1, r0, sizeof(float) * 2 * w);
        }
    }
}

/* dy: (N, C, 2H, 2W) -> dx: (N, C, H, W) */
void uakd_upsample2_backward(int n, int c, int h, int w, const float *dy, float *dx) {
    UAKD_PARALLEL_FOR((int64_t)n * c * h * w * 4)
    for (int pl = 0; pl < n * c; pl++) {
        const float *dyp = dy + (size_t)pl * 4 * h * w;
        float *dxp = dx + (size_t)pl * h * w;
        for (int i = 0; i < h; i++) {
            const float *r0 = dyp + (size_t)(2 * i) * 2 * w, *r1 = r0 + 2 * w;
            for (int j = 0; j < w; j++) dxp[i * w + j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

/* x: (N, C, HW) -> y: (N, C) */
void uakd_gap_forward(int n, int c, int hw, const float *x, float *y) {
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int pl = 0; pl < n * c; pl++) {
        const float *xp = x + (size_t)pl * hw;
        double s = 0;
        for (int j = 0; j < hw; j++) s += xp[j];
        y[pl] = (float)(s / hw);
    }
}

void uakd_gap_backward(int n, int c, int hw, const float *dy, float *dx) {
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int pl = 0; pl < n * c; pl++) {
        const float g = dy[pl] / (float)hw;
        for (int j = 0; j < hw; j++) dx[(size_t)pl * hw + j] = g;
    }
}

/* x, y: (N, C, HW), s: (N, C) */
void uakd_cmul_forward(int n, int c, int hw, const float *x, const float *s, float *y) {
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int pl = 0; pl < n * c; pl++)
        for (int j = 0; j < hw; j++) y[(size_t)pl * hw + j] = x[(size_t)pl * hw + j] * s[pl];
}

void uakd_cmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy, float *dx, float *ds) {
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int pl = 0; pl < n * c; pl++) {
        double acc = 0;
        for (int j = 0; j < hw; j++) {
            const size_t o = (size_t)pl * hw + j;
            acc += (double)dy[o] * x[o];
            dx[o] = dy[o] * s[pl];
        }
        ds[pl] = (float)acc;
    }
}
