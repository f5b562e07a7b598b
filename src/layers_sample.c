/* Bilinear sampling of points from a feature map (zero outside), with gradients to the map and
 * to the point coordinates.
 * For a point (x, y) in grid coordinates (cell centres at integers): x0 = floor(x), y0 = floor(y),
 * fx = x - x0, fy = y - y0, and with f(r, c) = 0 outside the map,
 *   v = (1-fx)(1-fy) f(y0,x0) + fx(1-fy) f(y0,x0+1) + (1-fx)fy f(y0+1,x0) + fx fy f(y0+1,x0+1)
 *   dv/dx = (1-fy)(f(y0,x0+1) - f(y0,x0)) + fy (f(y0+1,x0+1) - f(y0+1,x0))
 *   dv/dy = (1-fx)(f(y0+1,x0) - f(y0,x0)) + fx (f(y0+1,x0+1) - f(y0,x0+1))
 * and dv/df(corner) = its weight. */
#include <math.h>
#include <string.h>

#include "layers_omp.h"
#include "uakd/layers.h"

typedef struct corners {
    int off[4];  /* flat offsets into the plane, -1 when outside */
    float wt[4]; /* bilinear weights: (y0,x0), (y0,x0+1), (y0+1,x0), (y0+1,x0+1) */
    float fx, fy;
} corners;

static corners locate(int h, int w, float x, float y) {
    corners k;
    const float xf = floorf(x), yf = floorf(y);
    k.fx = x - xf, k.fy = y - yf;
    /* clamp far-away points so the int conversion is defined; they still land outside */
    const int x0 = (xf >= -2.0f && xf <= (float)w) ? (int)xf : -2; /* NaN lands outside too */
    const int y0 = (yf >= -2.0f && yf <= (float)h) ? (int)yf : -2;
    const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
    k.wt[0] = (1 - k.fx) * (1 - k.fy), k.wt[1] = k.fx * (1 - k.fy);
    k.wt[2] = (1 - k.fx) * k.fy, k.wt[3] = k.fx * k.fy;
    for (int i = 0; i < 4; i++) k.off[i] = (xs[i] >= 0 && xs[i] < w && ys[i] >= 0 && ys[i] < h) ? ys[i] * w + xs[i] : -1;
    return k;
}

static inline float at(const float *plane, int off) { return off >= 0 ? plane[off] : 0.0f; }

/* feat: (N, C, H, W), pts: (N, K, 2) -> out: (N, C, K) */
void uakd_sample_forward(int n, int c, int h, int w, int k, const float *feat, const float *pts, float *out) {
    UAKD_PARALLEL_FOR((int64_t)n * c * k * 8)
    for (int pl = 0; pl < n * c; pl++) {
        const int i = pl / c;
        const float *fp = feat + (size_t)pl * h * w;
        for (int p = 0; p < k; p++) {
            const float *pt = pts + ((size_t)i * k + p) * 2;
            const corners q = locate(h, w, pt[0], pt[1]);
            float v = 0;
            for (int t = 0; t < 4; t++) v += q.wt[t] * at(fp, q.off[t]);
            out[(size_t)pl * k + p] = v;
        }
    }
}

void uakd_sample_backward(int n, int c, int h, int w, int k, const float *feat, const float *pts, const float *dout,
                          float *dfeat, float *dpts) {
    if (dfeat) {
        UAKD_PARALLEL_FOR((int64_t)n * c * k * 8)
        for (int pl = 0; pl < n * c; pl++) {
            const int i = pl / c;
            float *dp = dfeat + (size_t)pl * h * w;
            memset(dp, 0, sizeof(float) * h * w);
            for (int p = 0; p < k; p++) {
                const float *pt = pts + ((size_t)i * k + p) * 2;
                const corners q = locate(h, w, pt[0], pt[1]);
                const float g = dout[(size_t)pl * k + p];
                for (int t = 0; t < 4; t++)
                    if (q.off[t] >= 0) dp[q.off[t]] += q.wt[t] * g;
            }
        }
    }
    if (dpts) {
        UAKD_PARALLEL_FOR((int64_t)n * c * k * 8)
        for (int np = 0; np < n * k; np++) {
            const int i = np / k, p = np % k;
            const float *pt = pts + (size_t)np * 2;
            const corners q = locate(h, w, pt[0], pt[1]);
            double gx = 0, gy = 0;
            for (int ch = 0; ch < c; ch++) {
                const float *fp = feat + ((size_t)i * c + ch) * h * w;
                const float f00 = at(fp, q.off[0]), f01 = at(fp, q.off[1]), f10 = at(fp, q.off[2]),
                            f11 = at(fp, q.off[3]);
                const double g = dout[((size_t)i * c + ch) * k + p];
                gx += g * ((1 - q.fy) * (f01 - f00) + q.fy * (f11 - f10));
                gy += g * ((1 - q.fx) * (f10 - f00) + q.fx * (f11 - f01));
            }
            dpts[(size_t)np * 2] = (float)gx;
            dpts[(size_t)np * 2 + 1] = (float)gy;
        }
    }
}
