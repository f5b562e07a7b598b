/* Fast normalised fusion (EfficientDet's BiFPN): m same-shaped inputs weighted by learnable
 * non-negative scalars normalised to sum to (almost) one:
 *   a_i = max(w_i, 0),  s = eps + sum_j a_j,  y = sum_i (a_i / s) x_i.
 * Backward:  dx_i = (a_i / s) dy;  dy/da_i = (x_i - y) / s, so
 *   dw_i += [w_i > 0] sum(dy (x_i - y)) / s   (ReLU's derivative is 0 at 0, like PyTorch).
 * The weight-gradient sums run in double over fixed blocks added in block order, so the result
 * does not depend on the number of threads. */
#include <math.h>

#include "layers_omp.h"
#include "uakd/layers.h"

static double norm_sum(int m, const float *w, float eps) {
    double s = eps;
    for (int i = 0; i < m; i++) s += w[i] > 0 ? w[i] : 0;
    return s;
}

void uakd_fuse_forward(int m, int64_t count, const float *const *x, const float *w, float eps, float *y) {
    const double s = norm_sum(m, w, eps);
    float c[UAKD_FUSE_MAX];
    for (int i = 0; i < m; i++) c[i] = (float)((w[i] > 0 ? w[i] : 0) / s);
    UAKD_PARALLEL_FOR(count)
    for (int64_t k = 0; k < count; k++) {
        float v = c[0] * x[0][k];
        for (int i = 1; i < m; i++) v += c[i] * x[i][k];
        y[k] = v;
    }
}

void uakd_fuse_backward_data(int m, int i, int64_t count, const float *w, float eps, const float *dy, float *dx) {
    const float c = (float)((w[i] > 0 ? w[i] : 0) / norm_sum(m, w, eps));
    UAKD_PARALLEL_FOR(count)
    for (int64_t k = 0; k < count; k++) dx[k] = c * dy[k];
}

void uakd_fuse_backward_weights(int m, int64_t count, const float *const *x, const float *y, const float *w, float eps,
                                const float *dy, float *dw) {
    const double s = norm_sum(m, w, eps);
    const int64_t nb = (count + UAKD_BLOCK - 1) / UAKD_BLOCK;
    for (int i = 0; i < m; i++) {
        if (!(w[i] > 0)) continue;
        double acc = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) ordered if (count >= UAKD_PAR_MIN)
#endif
        for (int64_t b = 0; b < nb; b++) {
            const int64_t k1 = (b + 1) * UAKD_BLOCK < count ? (b + 1) * UAKD_BLOCK : count;
            double part = 0;
            for (int64_t k = b * UAKD_BLOCK; k < k1; k++) part += (double)dy[k] * ((double)x[i][k] - y[k]);
#ifdef _OPENMP
#pragma omp ordered
#endif
            acc += part;
        }
        dw[i] += (float)(acc / s);
    }
}
