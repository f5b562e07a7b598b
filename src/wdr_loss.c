/* The two supervised WDRNet losses and their gradients with respect to the network outputs.
 *
 * Focal loss on logit x with p = sigmoid(x) (log p = -softplus(-x), log(1-p) = -softplus(x)):
 *   y = 1: L = -a (1-p)^g log p,      dL/dx = a (1-p)^g (g p log p - (1-p))
 *   y = 0: L = -(1-a) p^g log(1-p),   dL/dx = (1-a) p^g (p - g (1-p) log(1-p))
 * summed over cells with label != -1 and over classes, divided by the cls normaliser.
 *
 * Pose loss of corner k of a positive cell: (u, v) = centre + A (dx, dy); d = K^-1 [u v 1],
 * r = d / |d|; e = (X - (X.r) r) / D with X the camera-frame corner, D the diameter;
 * h(e) = e^2 / (2 delta) if |e| < delta else |e| - delta/2 per component; the cell's loss is the
 * mean of its 24 h values; the loss is the sum over positive cells divided by the pose normaliser.
 * Backward, with g = dL/de / D:  dL/dr = -(g.r) X - (X.r) g;  dL/dd = (dL/dr - r (r.dL/dr)) / |d|;
 * dL/du = K^-1[:,0] . dL/dd, dL/dv = K^-1[:,1] . dL/dd;  dL/ddx = A dL/du, dL/ddy = A dL/dv.
 * All arithmetic is in double; gradients are stored as float. */
#include <math.h>
#include <string.h>

#include "uakd/wdr.h"

static double softplus(double z) { return fmax(z, 0) + log1p(exp(-fabs(z))); }

static double normaliser(uakd_wdr_norm norm, const uakd_wdr_targets *t) {
    switch (norm) {
    case UAKD_WDR_NORM_IMAGES: return t->n;
    case UAKD_WDR_NORM_NPOS: return t->npos > 1 ? t->npos : 1;
    default: return 1;
    }
}

static uakd_status check_maps(const uakd_wdr_targets *t, const uakd_wdr_maps *m, int need_logits, int need_offsets) {
    if (m->n != t->n || m->c != t->c)
        return uakd_fail(UAKD_EINVAL, "wdr loss: maps hold %d images x %d classes, targets %d x %d", m->n, m->c, t->n,
                         t->c);
    for (int l = 0; l < t->lv.n; l++)
        if ((need_logits && !m->logits[l]) || (need_offsets && !m->offsets[l]))
            return uakd_fail(UAKD_EINVAL, "wdr loss: map of level %d missing", l);
    return UAKD_OK;
}

uakd_status uakd_wdr_focal_loss(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                                double scale, float *const *dlogits, double *loss) {
    UAKD_TRY(uakd_wdr_config_check(cfg));
    UAKD_TRY(check_maps(t, m, 1, 0));
    double a = cfg->focal_alpha, gam = cfg->focal_gamma, norm = normaliser(cfg->cls_norm, t), sum = 0;
    for (int l = 0; l < t->lv.n; l++) {
        size_t size = (size_t)t->n * t->c * uakd_wdr_level_cells(&t->lv, l);
        const float *x = m->logits[l];
        const int8_t *y = t->label[l];
        float *dx = dlogits ? dlogits[l] : NULL;
        for (size_t i = 0; i < size; i++) {
            double z = x[i], grad = 0;
            if (y[i] >= 0) {
                double lp = -softplus(-z), lq = -softplus(z); /* log p, log (1 - p) */
                double p = exp(lp), q = exp(lq);
                if (y[i] == 1) {
                    double w = pow(q, gam);
                    sum += -a * w * lp;
                    grad = a * w * (gam * p * lp - q);
                } else {
                    double w = pow(p, gam);
                    sum += -(1 - a) * w * lq;
                    grad = (1 - a) * w * (p - gam * q * lq);
                }
            }
            if (dx) dx[i] = (float)(scale * grad / norm);
        }
    }
    *loss = sum / norm;
    if (!isfinite(*loss)) return uakd_fail(UAKD_EDEGENERATE, "wdr focal loss is not finite: the logits diverged");
    return UAKD_OK;
}

static uakd_status invert3(const double K[9], double Ki[9]) {
    double c0 = K[4] * K[8] - K[5] * K[7], c1 = K[5] * K[6] - K[3] * K[8], c2 = K[3] * K[7] - K[4] * K[6];
    double det = K[0] * c0 + K[1] * c1 + K[2] * c2;
    if (!(isfinite(det) && det != 0)) return uakd_fail(UAKD_EDEGENERATE, "wdr pose loss: camera matrix K is singular");
    Ki[0] = c0 / det;
    Ki[1] = (K[2] * K[7] - K[1] * K[8]) / det;
    Ki[2] = (K[1] * K[5] - K[2] * K[4]) / det;
    Ki[3] = c1 / det;
    Ki[4] = (K[0] * K[8] - K[2] * K[6]) / det;
    Ki[5] = (K[2] * K[3] - K[0] * K[5]) / det;
    Ki[6] = c2 / det;
    Ki[7] = (K[1] * K[6] - K[0] * K[7]) / det;
    Ki[8] = (K[0] * K[4] - K[1] * K[3]) / det;
    return UAKD_OK;
}

/* Loss of one corner (sum of 3 Huber values, before the 1/24 and the normaliser) and, if grad is
 * not NULL, its derivative times gscale with respect to (u, v). */
static double corner_loss(const double Ki[9], const double X[3], double diam, double delta, double u, double v,
                          double gscale, double grad[2]) {
    double d[3], r[3];
    for (int i = 0; i < 3; i++) d[i] = Ki[3 * i] * u + Ki[3 * i + 1] * v + Ki[3 * i + 2];
    double nd = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int i = 0; i < 3; i++) r[i] = d[i] / nd;
    double xr = X[0] * r[0] + X[1] * r[1] + X[2] * r[2], loss = 0, g[3];
    for (int i = 0; i < 3; i++) {
        double e = (X[i] - xr * r[i]) / diam;
        if (fabs(e) < delta) {
            loss += e * e / (2 * delta);
            g[i] = e / delta;
        } else {
            loss += fabs(e) - delta / 2;
            g[i] = e > 0 ? 1 : -1;
        }
        g[i] *= gscale / diam;
    }
    if (grad) {
        double gr_dot = g[0] * r[0] + g[1] * r[1] + g[2] * r[2], gr[3], gd[3];
        for (int i = 0; i < 3; i++) gr[i] = -gr_dot * X[i] - xr * g[i];
        double rgr = r[0] * gr[0] + r[1] * gr[1] + r[2] * gr[2];
        for (int i = 0; i < 3; i++) gd[i] = (gr[i] - r[i] * rgr) / nd;
        grad[0] = Ki[0] * gd[0] + Ki[3] * gd[1] + Ki[6] * gd[2];
        grad[1] = Ki[1] * gd[0] + Ki[4] * gd[1] + Ki[7] * gd[2];
    }
    return loss;
}

uakd_status uakd_wdr_pose_loss(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                               double scale, float *const *doffsets, double *loss) {
    UAKD_TRY(uakd_wdr_config_check(cfg));
    UAKD_TRY(check_maps(t, m, 0, 1));
    double norm = normaliser(cfg->pose_norm, t), sum = 0, gscale = scale / (24 * norm);
    if (doffsets)
        for (int l = 0; l < t->lv.n; l++)
            memset(doffsets[l], 0, (size_t)t->n * 16 * t->c * uakd_wdr_level_cells(&t->lv, l) * sizeof(float));
    double Ki[9];
    int last_image = -1;
    for (int j = 0; j < t->npos; j++) {
        const uakd_wdr_pos *p = &t->pos[j];
        const uakd_wdr_object *o = &t->obj[p->image];
        if (p->image != last_image) {
            UAKD_TRY(invert3(o->K, Ki));
            last_image = p->image;
        }
        int cells = uakd_wdr_level_cells(&t->lv, p->level);
        size_t base = (size_t)(p->image * 16 * t->c + 16 * p->cls) * cells + (size_t)p->row * t->lv.gw[p->level] + p->col;
        const float *off = m->offsets[p->level] + base;
        double c[2], A = t->lv.anchor[p->level];
        uakd_wdr_cell_centre(&t->lv, p->level, p->col, p->row, c);
        for (int k = 0; k < 8; k++) {
            double u = c[0] + A * off[(size_t)k * cells], v = c[1] + A * off[(size_t)(8 + k) * cells], g[2];
            sum += corner_loss(Ki, &o->corners_cam[3 * k], o->diameter, cfg->huber_delta, u, v, gscale,
                               doffsets ? g : NULL);
            if (doffsets) {
                float *d = doffsets[p->level] + base;
                d[(size_t)k * cells] = (float)(A * g[0]);
                d[(size_t)(8 + k) * cells] = (float)(A * g[1]);
            }
        }
    }
    *loss = sum / (24 * norm);
    if (!isfinite(*loss)) return uakd_fail(UAKD_EDEGENERATE, "wdr pose loss is not finite: the offsets diverged");
    return UAKD_OK;
}

uakd_status uakd_wdr_loss_eval(const uakd_wdr_config *cfg, const uakd_wdr_targets *t, const uakd_wdr_maps *m,
                               const uakd_wdr_grads *g, uakd_wdr_loss *out) {
    UAKD_TRY(uakd_wdr_focal_loss(cfg, t, m, cfg->w_cls, g ? g->logits : NULL, &out->cls));
    UAKD_TRY(uakd_wdr_pose_loss(cfg, t, m, cfg->w_pose, g ? g->offsets : NULL, &out->pose));
    out->total = cfg->w_cls * out->cls + cfg->w_pose * out->pose;
    out->npos = t->npos;
    return UAKD_OK;
}
