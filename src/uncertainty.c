/* Ensemble statistics of keypoint predictions: mean, unbiased variance s2 = var(x) + var(y)
 * (two-pass, float64), u = tanh(s2 / tau^2), the median of s2 for tau = auto (quickselect),
 * mean sigmoid confidences and a fixed-bin histogram of u. */
#include <math.h>
#include <stddef.h>

#include "uakd/uncertainty.h"

uakd_status uakd_unc_ensemble(int members, int preds, int keypoints, const float *pred,
                              float *mean, float *s2) {
    if (members < 2)
        return uakd_fail(UAKD_EINVAL, "uncertainty: %d ensemble members; the unbiased variance "
                                      "needs at least 2", members);
    if (preds < 0 || keypoints < 1 || (preds > 0 && !pred))
        return uakd_fail(UAKD_EINVAL, "uncertainty: bad sizes (%d predictions, %d keypoints)",
                         preds, keypoints);
    const size_t per_member = (size_t)preds * keypoints;
    for (size_t q = 0; q < per_member; q++) {
        double mu[2] = {0, 0}, var = 0;
        for (int e = 0; e < members; e++)
            for (int d = 0; d < 2; d++) {
                float v = pred[(e * per_member + q) * 2 + d];
                if (!isfinite(v))
                    return uakd_fail(UAKD_EINVAL, "uncertainty: member %d prediction %zu is not finite",
                                     e, q);
                mu[d] += v;
            }
        mu[0] /= members, mu[1] /= members;
        for (int e = 0; e < members; e++)
            for (int d = 0; d < 2; d++) {
                double dv = pred[(e * per_member + q) * 2 + d] - mu[d];
                var += dv * dv;
            }
        if (mean) mean[2 * q] = (float)mu[0], mean[2 * q + 1] = (float)mu[1];
        if (s2) s2[q] = (float)(var / (members - 1));
    }
    return UAKD_OK;
}

uakd_status uakd_unc_from_variance(int count, const float *s2, double tau2, float *u) {
    if (!(tau2 > 0) || !isfinite(tau2))
        return uakd_fail(UAKD_EINVAL, "uncertainty: tau^2 = %g must be finite and > 0 (tau = 1 px "
                                      "by default)", tau2);
    for (int i = 0; i < count; i++) u[i] = (float)tanh(s2[i] / tau2);
    return UAKD_OK;
}

/* The k-th smallest of v[0..n) (Hoare quickselect, middle pivot); reorders v. */
static float select_kth(float *v, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

uakd_status uakd_unc_auto_tau2(int count, float *values, double *tau2) {
    if (count < 1) return uakd_fail(UAKD_EINVAL, "uncertainty: tau = auto needs at least one variance");
    for (int i = 0; i < count; i++)
        if (!isfinite(values[i]) || values[i] < 0)
            return uakd_fail(UAKD_EINVAL, "uncertainty: variance %d = %g is not finite and >= 0", i,
                             (double)values[i]);
    double med = select_kth(values, count, count / 2);
    if (count % 2 == 0) {
        /* the lower middle is the largest of the part select_kth left below count/2 */
        float below = values[0];
        for (int i = 1; i < count / 2; i++) below = values[i] > below ? values[i] : below;
        med = 0.5 * (med + below);
    }
    if (!(med > 0))
        return uakd_fail(UAKD_EDEGENERATE, "uncertainty: the median ensemble variance is 0 (the "
                                           "members agree exactly); tau = auto is undefined, give "
                                           "tau in pixels instead");
    *tau2 = med;
    return UAKD_OK;
}

uakd_status uakd_unc_confidence(int members, int preds, const float *logits, float *conf) {
    if (members < 1 || preds < 0)
        return uakd_fail(UAKD_EINVAL, "uncertainty: bad sizes (%d members, %d cells)", members, preds);
    for (int p = 0; p < preds; p++) {
        double s = 0;
        for (int e = 0; e < members; e++) s += 1.0 / (1.0 + exp(-(double)logits[(size_t)e * preds + p]));
        conf[p] = (float)(s / members);
    }
    return UAKD_OK;
}

void uakd_unc_histogram(int count, const float *u, int bins, long *counts) {
    if (bins < 1) return;
    for (int i = 0; i < count; i++) {
        int b = (int)floor((double)u[i] * bins);
        if (!(b >= 0)) b = 0;
        if (b >= bins) b = bins - 1;
        counts[b]++;
    }
}
