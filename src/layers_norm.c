/* Batch norm and group norm, forward and backward.
 *
 * Both normalise x over a set S of elements (BN: one channel over N, H, W; GN: one image's group
 * of C/G channels over H, W): xhat = (x - mean_S) invstd_S, invstd = 1/sqrt(var_S + eps) with the
 * biased variance, then y = gamma_c xhat + beta_c. The backward of the normalisation with batch
 * statistics is dx = invstd (g - mean_S(g) - xhat mean_S(g xhat)) with g = gamma_c dy; with fixed
 * statistics (BN inference) it is dx = invstd g. Sums are in double (BN: one pass of shifted
 * sums; GN: two passes). */
#include <math.h>

#include "layers_omp.h"
#include "uakd/layers.h"

void uakd_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma, const float *beta, float eps,
                           float momentum, float *running_mean, float *running_var, float *y, float *save_mean,
                           float *save_invstd) {
    const double m = (double)n * hw;
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ch = 0; ch < c; ch++) {
        /* one pass of shifted sums (shift = the channel's first value) in double:
         * mean = k + s/m, var = (ss - s^2/m)/m without cancellation trouble for float data */
        const double k = x[(size_t)ch * hw];
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            const float *xp = x + ((size_t)i * c + ch) * hw;
            UAKD_SIMD_SUM(s, ss)
            for (int j = 0; j < hw; j++) {
                const double d = xp[j] - k;
                s += d, ss += d * d;
            }
        }
        const double mean = k + s / m;
        ss = fmax(ss - s * s / m, 0.0);
        const double var = ss / m, invstd = 1.0 / sqrt(var + eps);
        const float a = (float)(gamma[ch] * invstd), b = (float)(beta[ch] - mean * gamma[ch] * invstd);
        for (int i = 0; i < n; i++) {
            const float *xp = x + ((size_t)i * c + ch) * hw;
            float *yp = y + ((size_t)i * c + ch) * hw;
            UAKD_SIMD
            for (int j = 0; j < hw; j++) yp[j] = a * xp[j] + b;
        }
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        running_mean[ch] = (float)((1 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1 - momentum) * running_var[ch] + momentum * (m > 1 ? var * m / (m - 1) : var));
    }
}

void uakd_bn_forward_infer(int n, int c, int hw, const float *x, const float *gamma, const float *beta,
                           const float *running_mean, const float *running_var, float eps, float *y) {
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ch = 0; ch < c; ch++) {
        const double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
        const float a = (float)(gamma[ch] * invstd), b = (float)(beta[ch] - running_mean[ch] * gamma[ch] * invstd);
        for (int i = 0; i < n; i++) {
            const float *xp = x + ((size_t)i * c + ch) * hw;
            float *yp = y + ((size_t)i * c + ch) * hw;
            UAKD_SIMD
            for (int j = 0; j < hw; j++) yp[j] = a * xp[j] + b;
        }
    }
}

/* x, dy, dx: (N, C, HW); forward saved mean and invstd per channel (C). */
void uakd_bn_backward(int n, int c, int hw, int training, const float *x, const float *gamma, const float *mean,
                      const float *invstd, const float *dy, float *dx, float *dgamma, float *dbeta) {
    const double m = (double)n * hw;
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ch = 0; ch < c; ch++) {
        const double mu = mean[ch], is = invstd[ch];
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            const float *xp = x + ((size_t)i * c + ch) * hw, *dyp = dy + ((size_t)i * c + ch) * hw;
            UAKD_SIMD_SUM(sdy, sdyx)
            for (int j = 0; j < hw; j++) {
                sdy += dyp[j];
                sdyx += dyp[j] * ((xp[j] - mu) * is);
            }
        }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
        const double g = gamma[ch] * is;
        /* dx = g dy + k1 x + k0, with k1 = -g is^2 sdyx/m, k0 = -g sdy/m - k1 mu */
        const double k1 = training ? -g * is * sdyx / m : 0, k0 = training ? -g * sdy / m - k1 * mu : 0;
        const float gf = (float)g, k1f = (float)k1, k0f = (float)k0;
        for (int i = 0; i < n; i++) {
            const float *xp = x + ((size_t)i * c + ch) * hw, *dyp = dy + ((size_t)i * c + ch) * hw;
            float *dxp = dx + ((size_t)i * c + ch) * hw;
            UAKD_SIMD
            for (int j = 0; j < hw; j++) dxp[j] = gf * dyp[j] + k1f * xp[j] + k0f;
        }
    }
}

/* x, y: (N, C, HW); groups G divides C; saves mean, invstd: (N, G). */
void uakd_gn_forward(int n, int c, int hw, int groups, const float *x, const float *gamma, const float *beta,
                     float eps, float *y, float *save_mean, float *save_invstd) {
    const int cg = c / groups;
    const size_t len = (size_t)cg * hw;
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ng = 0; ng < n * groups; ng++) {
        const float *xp = x + (size_t)ng * len;
        float *yp = y + (size_t)ng * len;
        double s = 0, ss = 0;
        for (size_t j = 0; j < len; j++) s += xp[j];
        const double mean = s / (double)len;
        for (size_t j = 0; j < len; j++) ss += (xp[j] - mean) * (xp[j] - mean);
        const double invstd = 1.0 / sqrt(ss / (double)len + eps);
        for (int k = 0; k < cg; k++) {
            const int ch = (ng % groups) * cg + k;
            const float a = (float)(gamma[ch] * invstd), b = (float)(beta[ch] - mean * gamma[ch] * invstd);
            for (int j = 0; j < hw; j++) yp[(size_t)k * hw + j] = a * xp[(size_t)k * hw + j] + b;
        }
        save_mean[ng] = (float)mean;
        save_invstd[ng] = (float)invstd;
    }
}

/* dx assigned per (image, group); dgamma/dbeta (C) accumulated in a second pass over channels
 * so that threads never write the same parameter gradient. */
void uakd_gn_backward(int n, int c, int hw, int groups, const float *x, const float *gamma, const float *mean,
                      const float *invstd, const float *dy, float *dx, float *dgamma, float *dbeta) {
    const int cg = c / groups;
    const size_t len = (size_t)cg * hw;
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ng = 0; ng < n * groups; ng++) {
        const float *xp = x + (size_t)ng * len, *dyp = dy + (size_t)ng * len;
        float *dxp = dx + (size_t)ng * len;
        const double mu = mean[ng], is = invstd[ng];
        double sg = 0, sgx = 0; /* sums of g = gamma dy and g xhat over the group */
        for (int k = 0; k < cg; k++) {
            const double gm = gamma[(ng % groups) * cg + k];
            for (int j = 0; j < hw; j++) {
                const size_t o = (size_t)k * hw + j;
                sg += gm * dyp[o];
                sgx += gm * dyp[o] * (xp[o] - mu) * is;
            }
        }
        const double a = sg / (double)len, b = sgx / (double)len;
        for (int k = 0; k < cg; k++) {
            const float gm = gamma[(ng % groups) * cg + k];
            for (int j = 0; j < hw; j++) {
                const size_t o = (size_t)k * hw + j;
                const double xhat = (xp[o] - mu) * is;
                dxp[o] = (float)(is * (gm * dyp[o] - a - xhat * b));
            }
        }
    }
    UAKD_PARALLEL_FOR((int64_t)n * c * hw)
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++) {
            const int ng = i * groups + ch / cg;
            const float *xp = x + ((size_t)i * c + ch) * hw, *dyp = dy + ((size_t)i * c + ch) * hw;
            const double mu = mean[ng], is = invstd[ng];
            for (int j = 0; j < hw; j++) {
                sdy += dyp[j];
                sdyx += dyp[j] * (xp[j] - mu) * is;
            }
        }
        dgamma[ch] += (float)sdyx;
        dbeta[ch] += (float)sdy;
    }
}
