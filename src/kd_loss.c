/* Prediction distillation losses of a batch (see uakd/kd_loss.h for the formulas).
 *
 * The batch is repacked into one uakd_uot problem per (image, keypoint) for UAKD, or three for
 * ADLP: (student | teacher), (student | student), (teacher | teacher); every problem gets its own
 * copy of its points ("left" side: x, a, f; "right" side: y, b, g) so potentials never alias.
 * One uakd_uot_solve_batch call solves them all; the loss and its gradients follow from the plans
 * (UAKD, plan held constant) or from the dual potentials (ADLP, envelope theorem). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/kd_loss.h"

struct uakd_kd_ctx {
    uakd_uot_problem *probs;
    float *lx, *la, *ry, *rb, *plan, *amass, *dadl;
    double *f, *g;
    void *work;
    int *xs, *ys; /* per image: first student / teacher cell */
    size_t cap_probs, cap_lx, cap_la, cap_f, cap_ry, cap_rb, cap_g, cap_plan, cap_amass, cap_dadl,
        cap_work, cap_xs, cap_ys;
    int images, keypoints, per_pair, plans_ready;
};

void uakd_kd_options_default(uakd_kd_options *o) {
    uakd_uot_params_default(&o->uot);
    o->detach_student_mass = 0;
    o->weight = 1.0;
}

uakd_status uakd_kd_ctx_new(uakd_kd_ctx **out) {
    *out = calloc(1, sizeof(uakd_kd_ctx));
    return *out ? UAKD_OK : uakd_fail(UAKD_ENOMEM, "kd: cannot allocate the loss context");
}

void uakd_kd_ctx_free(uakd_kd_ctx *c) {
    if (!c) return;
    free(c->probs), free(c->lx), free(c->la), free(c->ry), free(c->rb), free(c->plan);
    free(c->amass), free(c->dadl), free(c->f), free(c->g), free(c->work), free(c->xs), free(c->ys);
    free(c);
}

/* Makes *p hold at least `need` elements of `elem` bytes (grows by doubling, keeps nothing). */
static uakd_status reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return UAKD_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    if (n > SIZE_MAX / elem) return uakd_fail(UAKD_ENOMEM, "kd: buffer size overflow");
    free(*p);
    *p = malloc(n * elem);
    if (!*p) {
        *cap = 0;
        return uakd_fail(UAKD_ENOMEM, "kd: cannot allocate %zu bytes", n * elem);
    }
    *cap = n;
    return UAKD_OK;
}

#define RESERVE(ptr, cap, need) reserve((void **)&(ptr), &(cap), (need), sizeof *(ptr))

float uakd_kd_student_mass(float logit, float *dmass_dlogit) {
    double s = 1.0 / (1.0 + exp(-(double)logit));
    float d = (float)(s * (1.0 - s));
    if (s < UAKD_KD_MASS_MIN) s = UAKD_KD_MASS_MIN, d = 0;
    if (s > UAKD_KD_MASS_MAX) s = UAKD_KD_MASS_MAX, d = 0;
    if (dmass_dlogit) *dmass_dlogit = d;
    return (float)s;
}

float uakd_kd_teacher_mass(float lambda, float u, float c) {
    return lambda * (1.0f - u) + (1.0f - lambda) * c;
}

/* Row i's cost sum_j plan_ij |x_i - y_j|^2; g[0..1] = sum_j plan_ij (x_i - y_j). */
static double row_cost(const float *xi, int m, const float *y, const float *plan_row, double g[2]) {
    double cost = 0;
    g[0] = g[1] = 0;
    for (int j = 0; j < m; j++) {
        double dx = (double)xi[0] - y[2 * j], dy = (double)xi[1] - y[2 * j + 1];
        cost += plan_row[j] * (dx * dx + dy * dy);
        g[0] += plan_row[j] * dx;
        g[1] += plan_row[j] * dy;
    }
    return cost;
}

double uakd_kd_plan_cost(int n, const float *x, int m, const float *y, const float *plan,
                         double scale, float *grad_x) {
    double total = 0, g[2];
    for (int i = 0; i < n; i++) {
        total += row_cost(x + 2 * i, m, y, plan + (size_t)i * m, g);
        if (grad_x) {
            grad_x[2 * i] += (float)(scale * 2 * g[0]);
            grad_x[2 * i + 1] += (float)(scale * 2 * g[1]);
        }
    }
    return total;
}

static uakd_status check_input(const uakd_kd_input *in, int64_t *ncells, int64_t *mcells) {
    if (!in || in->images < 0 || in->keypoints < 1)
        return uakd_fail(UAKD_EINVAL, "kd: images (%d) must be >= 0 and keypoints (%d) >= 1",
                         in ? in->images : -1, in ? in->keypoints : -1);
    if (in->images > 0 && (!in->n || !in->m))
        return uakd_fail(UAKD_EINVAL, "kd: per-image counts n and m are required");
    int64_t ns = 0, ms = 0;
    for (int b = 0; b < in->images; b++) {
        if (in->n[b] < 0 || in->m[b] < 0)
            return uakd_fail(UAKD_EINVAL, "kd: image %d has negative counts n = %d, m = %d", b,
                             in->n[b], in->m[b]);
        ns += in->n[b];
        ms += in->m[b];
    }
    if ((ns + ms) * in->keypoints * 6 > INT_MAX)
        return uakd_fail(UAKD_ENOMEM, "kd: batch too large (%lld + %lld cells)", (long long)ns,
                         (long long)ms);
    if ((ns > 0 && !in->x) || (ms > 0 && (!in->y || !in->tmass)))
        return uakd_fail(UAKD_EINVAL, "kd: student points, teacher points and masses are required");
    *ncells = ns;
    *mcells = ms;
    return UAKD_OK;
}

/* Copies the student (side 0) or teacher (side 1) points and masses of (b, k) to pts/mass. */
static void pack_side(const uakd_kd_ctx *c, const uakd_kd_input *in, int side, int b, int k,
                      float *pts, float *mass) {
    const int K = in->keypoints;
    if (side == 0) {
        for (int i = 0; i < in->n[b]; i++) {
            size_t cell = (size_t)c->xs[b] + i;
            pts[2 * i] = in->x[(cell * K + k) * 2];
            pts[2 * i + 1] = in->x[(cell * K + k) * 2 + 1];
            mass[i] = c->amass[cell];
        }
    } else {
        for (int j = 0; j < in->m[b]; j++) {
            size_t cell = (size_t)c->ys[b] + j;
            pts[2 * j] = in->y[(cell * K + k) * 2];
            pts[2 * j + 1] = in->y[(cell * K + k) * 2 + 1];
            mass[j] = in->tmass[cell * K + k];
        }
    }
}

/* Builds and solves per_pair problems per (image, keypoint): pair t uses sides left[t] | right[t]. */
static uakd_status build_and_solve(uakd_kd_ctx *c, const uakd_kd_options *opt,
                                   const uakd_kd_input *in, int per_pair) {
    static const int left[3] = {0, 0, 1}, right[3] = {1, 0, 1};
    int64_t ns = 0, ms = 0;
    c->plans_ready = 0;
    UAKD_TRY(check_input(in, &ns, &ms));
    const int B = in->images, K = in->keypoints;
    UAKD_TRY(RESERVE(c->xs, c->cap_xs, (size_t)B + 1));
    UAKD_TRY(RESERVE(c->ys, c->cap_ys, (size_t)B + 1));
    c->xs[0] = c->ys[0] = 0;
    for (int b = 0; b < B; b++) {
        c->xs[b + 1] = c->xs[b] + in->n[b];
        c->ys[b + 1] = c->ys[b] + in->m[b];
    }
    UAKD_TRY(RESERVE(c->amass, c->cap_amass, (size_t)ns + 1));
    UAKD_TRY(RESERVE(c->dadl, c->cap_dadl, (size_t)ns + 1));
    for (int64_t i = 0; i < ns; i++) {
        if (in->logit) {
            if (!isfinite(in->logit[i]))
                return uakd_fail(UAKD_EINVAL, "kd: student logit %lld is not finite", (long long)i);
            c->amass[i] = uakd_kd_student_mass(in->logit[i], &c->dadl[i]);
        } else {
            c->amass[i] = 1.0f, c->dadl[i] = 0.0f;
        }
    }
    const int count = B * K * per_pair;
    UAKD_TRY(RESERVE(c->probs, c->cap_probs, (size_t)count + 1));
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            for (int t = 0; t < per_pair; t++) {
                uakd_uot_problem *p = &c->probs[(b * K + k) * per_pair + t];
                p->n = left[t] ? in->m[b] : in->n[b];
                p->m = right[t] ? in->m[b] : in->n[b];
            }
    int nt, mt, pt;
    UAKD_TRY(uakd_uot_layout(c->probs, count, &nt, &mt, &pt));
    UAKD_TRY(RESERVE(c->lx, c->cap_lx, 2 * (size_t)nt + 2));
    UAKD_TRY(RESERVE(c->la, c->cap_la, (size_t)nt + 1));
    UAKD_TRY(RESERVE(c->f, c->cap_f, (size_t)nt + 1));
    UAKD_TRY(RESERVE(c->ry, c->cap_ry, 2 * (size_t)mt + 2));
    UAKD_TRY(RESERVE(c->rb, c->cap_rb, (size_t)mt + 1));
    UAKD_TRY(RESERVE(c->g, c->cap_g, (size_t)mt + 1));
    UAKD_TRY(RESERVE(c->plan, c->cap_plan, (size_t)pt + 1));
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            for (int t = 0; t < per_pair; t++) {
                const uakd_uot_problem *p = &c->probs[(b * K + k) * per_pair + t];
                pack_side(c, in, left[t], b, k, c->lx + 2 * (size_t)p->x_off, c->la + p->x_off);
                pack_side(c, in, right[t], b, k, c->ry + 2 * (size_t)p->y_off, c->rb + p->y_off);
            }
    size_t ws = uakd_uot_workspace_size(c->probs, count);
    UAKD_TRY(reserve(&c->work, &c->cap_work, ws + 8, 1));
    UAKD_TRY(uakd_uot_solve_batch(&opt->uot, c->probs, count, c->lx, c->la, c->ry, c->rb, c->f,
                                  c->g, c->plan, c->work, c->cap_work));
    c->images = B;
    c->keypoints = K;
    c->per_pair = per_pair;
    c->plans_ready = 1;
    return UAKD_OK;
}

uakd_status uakd_kd_solve(uakd_kd_ctx *ctx, const uakd_kd_options *opt, const uakd_kd_input *in) {
    return build_and_solve(ctx, opt, in, 1);
}

static int count_valid(const uakd_kd_input *in) {
    int v = 0;
    for (int b = 0; b < in->images; b++) v += in->n[b] > 0 && in->m[b] > 0;
    return v;
}

/* Adds s * (gx, gy) to student point (image b, cell i, keypoint k) and s * gm to its logit. */
static void add_grads(const uakd_kd_ctx *c, const uakd_kd_input *in, const uakd_kd_options *opt,
                      int b, int i, int k, double s, const double gxy[2], double dmass,
                      float *grad_x, float *grad_logit) {
    size_t cell = (size_t)c->xs[b] + i;
    if (grad_x) {
        grad_x[(cell * in->keypoints + k) * 2] += (float)(s * gxy[0]);
        grad_x[(cell * in->keypoints + k) * 2 + 1] += (float)(s * gxy[1]);
    }
    if (grad_logit && in->logit && !opt->detach_student_mass)
        grad_logit[cell] += (float)(s * dmass * c->dadl[cell]);
}

uakd_status uakd_kd_uakd(uakd_kd_ctx *c, const uakd_kd_options *opt, const uakd_kd_input *in,
                         double *loss, int *valid, float *grad_x, float *grad_logit) {
    UAKD_TRY(build_and_solve(c, opt, in, 1));
    const int V = count_valid(in);
    double total = 0;
    if (V > 0) {
        const double s = opt->weight / V;
        for (int b = 0; b < in->images; b++)
            for (int k = 0; k < in->keypoints; k++) {
                const uakd_uot_problem *p = &c->probs[b * in->keypoints + k];
                for (int i = 0; i < p->n; i++) {
                    double g[2];
                    double rc = row_cost(c->lx + 2 * ((size_t)p->x_off + i), p->m,
                                         c->ry + 2 * (size_t)p->y_off,
                                         c->plan + p->plan_off + (size_t)i * p->m, g);
                    total += rc;
                    g[0] *= 2, g[1] *= 2;
                    /* dL/da_i = sum_j pi_ij |x_i - y_j|^2 / a_i (pi linear in a_i) */
                    add_grads(c, in, opt, b, i, k, s, g, rc / c->la[p->x_off + i], grad_x,
                              grad_logit);
                }
            }
        total /= V;
    }
    *loss = total;
    if (valid) *valid = V;
    return UAKD_OK;
}

static double phi(double t, double rho) { return isinf(rho) ? t : -rho * expm1(-t / rho); }

/* d dual / d a_i at fixed potentials: phi(f_i) - eps sum_j b_j (E_ij - 1). */
static double mass_partial(const uakd_uot_params *prm, const float *xi, double fi, int m,
                           const float *y, const float *b, const double *g) {
    const double eps = prm->blur * prm->blur;
    double s = 0;
    for (int j = 0; j < m; j++) {
        double dx = (double)xi[0] - y[2 * j], dy = (double)xi[1] - y[2 * j + 1];
        s += b[j] * expm1((fi + g[j] - 0.5 * (dx * dx + dy * dy)) / eps);
    }
    return phi(fi, prm->reach * prm->reach) - eps * s;
}

uakd_status uakd_kd_adlp(uakd_kd_ctx *c, const uakd_kd_options *opt, const uakd_kd_input *in,
                         double *loss, int *valid, float *grad_x, float *grad_logit) {
    UAKD_TRY(build_and_solve(c, opt, in, 3));
    c->plans_ready = 0; /* plans of the three-problem layout are not UAKD plans */
    const int V = count_valid(in);
    const uakd_uot_params *prm = &opt->uot;
    double total = 0;
    if (V > 0) {
        const double s = opt->weight / V;
        for (int b = 0; b < in->images; b++) {
            if (in->n[b] == 0 || in->m[b] == 0) continue;
            for (int k = 0; k < in->keypoints; k++) {
                const uakd_uot_problem *p = &c->probs[(b * in->keypoints + k) * 3];
                double d[3];
                for (int t = 0; t < 3; t++)
                    d[t] = uakd_uot_dual_value(prm, p[t].n, c->lx + 2 * (size_t)p[t].x_off,
                                               c->la + p[t].x_off, p[t].m,
                                               c->ry + 2 * (size_t)p[t].y_off, c->rb + p[t].y_off,
                                               c->f + p[t].x_off, c->g + p[t].y_off);
                total += d[0] - 0.5 * d[1] - 0.5 * d[2];
                for (int i = 0; i < p[0].n; i++) {
                    double g0[2], g1[2], gxy[2];
                    const float *xi = c->lx + 2 * ((size_t)p[0].x_off + i);
                    row_cost(xi, p[0].m, c->ry + 2 * (size_t)p[0].y_off,
                             c->plan + p[0].plan_off + (size_t)i * p[0].m, g0);
                    row_cost(xi, p[1].m, c->ry + 2 * (size_t)p[1].y_off,
                             c->plan + p[1].plan_off + (size_t)i * p[1].m, g1);
                    gxy[0] = g0[0] - g1[0];
                    gxy[1] = g0[1] - g1[1];
                    double dm = mass_partial(prm, xi, c->f[p[0].x_off + i], p[0].m,
                                             c->ry + 2 * (size_t)p[0].y_off, c->rb + p[0].y_off,
                                             c->g + p[0].y_off) -
                                mass_partial(prm, xi, c->f[p[1].x_off + i], p[1].m,
                                             c->ry + 2 * (size_t)p[1].y_off, c->rb + p[1].y_off,
                                             c->g + p[1].y_off);
                    add_grads(c, in, opt, b, i, k, s, gxy, dm, grad_x, grad_logit);
                }
            }
        }
        total /= V;
    }
    *loss = total;
    if (valid) *valid = V;
    return UAKD_OK;
}

const float *uakd_kd_plan(const uakd_kd_ctx *c, int image, int keypoint, int *n, int *m) {
    if (!c || !c->plans_ready || image < 0 || image >= c->images || keypoint < 0 ||
        keypoint >= c->keypoints)
        return NULL;
    const uakd_uot_problem *p = &c->probs[image * c->keypoints + keypoint];
    if (n) *n = p->n;
    if (m) *m = p->m;
    return c->plan + p->plan_off;
}

uakd_status uakd_kd_potentials(const uakd_kd_ctx *c, int image, int keypoint, const double **f,
                               const double **g) {
    if (!uakd_kd_plan(c, image, keypoint, NULL, NULL))
        return uakd_fail(UAKD_EINVAL, "kd: no UAKD plan for image %d keypoint %d (solve first)",
                         image, keypoint);
    const uakd_uot_problem *p = &c->probs[image * c->keypoints + keypoint];
    *f = c->f + p->x_off;
    *g = c->g + p->y_off;
    return UAKD_OK;
}
