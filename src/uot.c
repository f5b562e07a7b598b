/* Log-domain unbalanced Sinkhorn with eps-scaling and damping (method.md section 5).
 *
 * Potentials solve  f_i = -damp eps LSE_j(log b_j + (g_j - C_ij)/eps),
 *                   g_j = -damp eps LSE_i(log a_i + (f_i - C_ij)/eps),  damp = 1/(1 + eps/rho),
 * the first-order conditions of the dual
 *   max_{f,g} <a, phi(f)> + <b, phi(g)> - eps <a (x) b, exp((f + g - C)/eps) - 1>,
 *   phi(t) = rho (1 - exp(-t/rho)).
 * Each iteration computes both updates from the previous (f, g), averages old and new, and then
 * moves the potentials along (+c, -c), which leaves the plan unchanged, to the dual's maximum in c
 * (closed form; see step()). Blur
 * starts at the bounding-box diagonal D (eps = D^2, where the first pair is computed from g = 0
 * and f = 0), is multiplied by `scaling` per iteration while above the target, then `final_iters`
 * iterations run at the target eps. All arithmetic is float64; LSE uses the max-shift. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "uakd/uot.h"
#include "uot_kernel.h"

#ifdef _OPENMP
#define OMP(x) _Pragma(#x)
#else
#define OMP(x)
#endif

/* Doubles of scratch per problem: px, py, la, ha, ft (n each), qx, qy, lb, hb, gt (m each), and
 * the expanded-form arrays w, sx, sy of the side being summed over (3 max(n, m) <= 3 (n + m)). */
#define WORK_PER_POINT 8

void uakd_uot_params_default(uakd_uot_params *p) {
    p->blur = 1e-3;
    p->reach = 0.5;
    p->scaling = 0.5;
    p->final_iters = 10;
    p->tol = 0.0;
}

uakd_status uakd_uot_params_check(const uakd_uot_params *p) {
    if (!p) return uakd_fail(UAKD_EINVAL, "uot: params is NULL");
    if (!(p->blur > 0) || !isfinite(p->blur))
        return uakd_fail(UAKD_EINVAL, "uot: blur = %g must be finite and > 0 (default 1e-3)", p->blur);
    if (!(p->reach > 0))
        return uakd_fail(UAKD_EINVAL, "uot: reach = %g must be > 0 (default 0.5, INFINITY = balanced)",
                         p->reach);
    if (!(p->scaling > 0 && p->scaling < 1))
        return uakd_fail(UAKD_EINVAL, "uot: scaling = %g must lie in (0, 1) (default 0.5)", p->scaling);
    if (p->final_iters < 1)
        return uakd_fail(UAKD_EINVAL, "uot: final_iters = %d must be >= 1 (default 10)", p->final_iters);
    if (!(p->tol >= 0) || !isfinite(p->tol))
        return uakd_fail(UAKD_EINVAL, "uot: tol = %g must be finite and >= 0 (0 = off)", p->tol);
    return UAKD_OK;
}

uakd_status uakd_uot_layout(uakd_uot_problem *probs, int count, int *n_total, int *m_total,
                            int *plan_total) {
    if (count < 0 || (count > 0 && !probs)) return uakd_fail(UAKD_EINVAL, "uot layout: bad problem list");
    int64_t xs = 0, ys = 0, ps = 0;
    for (int k = 0; k < count; k++) {
        if (probs[k].n < 0 || probs[k].m < 0)
            return uakd_fail(UAKD_EINVAL, "uot layout: problem %d has negative size %d x %d", k,
                             probs[k].n, probs[k].m);
        probs[k].x_off = (int)xs;
        probs[k].y_off = (int)ys;
        probs[k].plan_off = (int)ps;
        xs += probs[k].n;
        ys += probs[k].m;
        ps += (int64_t)probs[k].n * probs[k].m;
        if (xs > INT32_MAX || ys > INT32_MAX || ps > INT32_MAX)
            return uakd_fail(UAKD_ENOMEM, "uot layout: more than 2^31 points or plan entries");
    }
    if (n_total) *n_total = (int)xs;
    if (m_total) *m_total = (int)ys;
    if (plan_total) *plan_total = (int)ps;
    return UAKD_OK;
}

/* Workspace: count offsets (size_t), then WORK_PER_POINT (n + m) doubles per problem. */
size_t uakd_uot_workspace_size(const uakd_uot_problem *probs, int count) {
    if (count < 0) return 0;
    uint64_t doubles = 0;
    for (int k = 0; k < count; k++) {
        if (probs[k].n < 0 || probs[k].m < 0) return 0;
        doubles += WORK_PER_POINT * ((uint64_t)probs[k].n + (uint64_t)probs[k].m);
    }
    uint64_t bytes = doubles * sizeof(double) + (uint64_t)count * sizeof(size_t);
    return bytes > SIZE_MAX / 2 ? 0 : (size_t)bytes;
}

size_t uakd_uot_workspace_size_single(int n, int m) {
    uakd_uot_problem pr = {n, m, 0, 0, 0};
    return uakd_uot_workspace_size(&pr, 1);
}

/* out_i = -damp eps LSE_j(h_j - C_ij / eps) for every row i of (p -> q); ex: 3 m scratch. */
static void side_update(int n, const double *px, const double *py, int m, const double *qx,
                        const double *qy, const double *h, double eps, double damp, double *out,
                        double *ex, int threaded) {
    const double k = 0.5 / eps, scale = -damp * eps;
    double *w = ex, *sx = ex + m, *sy = ex + 2 * (size_t)m;
    for (int j = 0; j < m; j++) {
        w[j] = h[j] - k * (qx[j] * qx[j] + qy[j] * qy[j]);
        sx[j] = 2 * k * qx[j];
        sy[j] = 2 * k * qy[j];
    }
    const uakd_lse_side side = {m, qx, qy, h, k, w, sx, sy};
    uakd_lse_rows_fn rows = uakd_uot_lse_kernel();
    if (threaded) {
        OMP(omp parallel for schedule(static))
        for (int i0 = 0; i0 < n; i0 += 32)
            rows(n - i0 < 32 ? n - i0 : 32, px + i0, py + i0, &side, scale, out + i0);
    } else { /* no parallel construct at all: even an if(0) region costs a team setup */
        rows(n, px, py, &side, scale, out);
    }
}

static double damping(double eps, double rho) { return isinf(rho) ? 1.0 : 1.0 / (1.0 + eps / rho); }

typedef struct scratch {
    double *px, *py, *la, *ha, *ft;
    double *qx, *qy, *lb, *hb, *gt;
    double *ex;
} scratch;

/* LSE_i(l_i + k v_i). */
static double lse(int n, const double *l, const double *v, double k) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = l[i] + k * v[i] > mx ? l[i] + k * v[i] : mx;
    for (int i = 0; i < n; i++) s += exp(l[i] + k * v[i] - mx);
    return mx + log(s);
}

/* One Jacobi step at eps: (ft, gt) = T(g, f), averaged with (f, g). Then the translation step:
 * the plan is unchanged by (f + c, g - c), but the dual is not; its maximiser over c is
 *   c = rho/2 (log sum_i a_i exp(-f_i/rho) - log sum_j b_j exp(-g_j/rho)),
 * which is 0 at the optimum. Without it this mode contracts only by (1 + damp)/2 per iteration
 * (about 1 - 2 eps/rho), so at eps = 1e-6 the potentials, though not the plan, would stay far
 * from optimal. Returns max(|ft - f|, |gt - g|, |c|). */
static double step(int n, int m, scratch *s, double *f, double *g, double eps, double rho,
                   int threaded) {
    const double damp = damping(eps, rho);
    for (int i = 0; i < n; i++) s->ha[i] = s->la[i] + f[i] / eps;
    for (int j = 0; j < m; j++) s->hb[j] = s->lb[j] + g[j] / eps;
    side_update(n, s->px, s->py, m, s->qx, s->qy, s->hb, eps, damp, s->ft, s->ex, threaded);
    side_update(m, s->qx, s->qy, n, s->px, s->py, s->ha, eps, damp, s->gt, s->ex, threaded);
    double delta = 0;
    for (int i = 0; i < n; i++) {
        delta = fabs(s->ft[i] - f[i]) > delta ? fabs(s->ft[i] - f[i]) : delta;
        f[i] = 0.5 * (f[i] + s->ft[i]);
    }
    for (int j = 0; j < m; j++) {
        delta = fabs(s->gt[j] - g[j]) > delta ? fabs(s->gt[j] - g[j]) : delta;
        g[j] = 0.5 * (g[j] + s->gt[j]);
    }
    if (!isinf(rho)) {
        double c = 0.5 * rho * (lse(n, s->la, f, -1 / rho) - lse(m, s->lb, g, -1 / rho));
        for (int i = 0; i < n; i++) f[i] += c;
        for (int j = 0; j < m; j++) g[j] -= c;
        delta = fmax(delta, fabs(c));
    }
    return delta;
}

static void solve_one(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                      const float *y, const float *b, double *f, double *g, float *plan, double *w,
                      int threaded) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) ma += a[i];
    for (int j = 0; j < m; j++) mb += b[j];
    if (n == 0 || m == 0 || !(ma > 0) || !(mb > 0)) {
        for (int i = 0; i < n; i++) f[i] = 0;
        for (int j = 0; j < m; j++) g[j] = 0;
        if (plan) memset(plan, 0, sizeof(float) * (size_t)n * (size_t)m);
        return;
    }
    scratch s = {w, w + n, w + 2 * n, w + 3 * n, w + 4 * n, NULL, NULL, NULL, NULL, NULL, NULL};
    double *wq = w + 5 * (size_t)n;
    s.qx = wq;
    s.qy = wq + m;
    s.lb = wq + 2 * m;
    s.hb = wq + 3 * m;
    s.gt = wq + 4 * m;
    s.ex = wq + 5 * m;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < n; i++) {
        s.px[i] = x[2 * i];
        s.py[i] = x[2 * i + 1];
        s.la[i] = log((double)a[i]);
        for (int d = 0; d < 2; d++) {
            lo[d] = fmin(lo[d], x[2 * i + d]);
            hi[d] = fmax(hi[d], x[2 * i + d]);
        }
    }
    for (int j = 0; j < m; j++) {
        s.qx[j] = y[2 * j];
        s.qy[j] = y[2 * j + 1];
        s.lb[j] = log((double)b[j]);
        for (int d = 0; d < 2; d++) {
            lo[d] = fmin(lo[d], y[2 * j + d]);
            hi[d] = fmax(hi[d], y[2 * j + d]);
        }
    }
    const double diam = hypot(hi[0] - lo[0], hi[1] - lo[1]);
    const double rho = p->reach * p->reach, eps_t = p->blur * p->blur;

    /* First pair at the largest eps from zero potentials. */
    double eps = diam > p->blur ? diam * diam : eps_t;
    side_update(n, s.px, s.py, m, s.qx, s.qy, s.lb, eps, damping(eps, rho), f, s.ex, threaded);
    side_update(m, s.qx, s.qy, n, s.px, s.py, s.la, eps, damping(eps, rho), g, s.ex, threaded);
    for (double bl = diam; bl > p->blur; bl *= p->scaling) {
        eps = bl * bl;
        step(n, m, &s, f, g, eps, rho, threaded);
    }
    for (int it = 0; it < p->final_iters; it++) {
        double delta = step(n, m, &s, f, g, eps_t, rho, threaded);
        if (p->tol > 0 && delta <= p->tol * eps_t) break;
    }
    if (plan) {
        /* log pi_ij = [la_i + f_i/eps - k|x_i|^2] + [lb_j + g_j/eps - k|y_j|^2] + 2k x_i.y_j */
        const double k = 0.5 / eps_t;
        double *wj = s.ex, *sx = s.ex + m, *sy = s.ex + 2 * (size_t)m;
        for (int j = 0; j < m; j++) {
            wj[j] = s.lb[j] + g[j] / eps_t - k * (s.qx[j] * s.qx[j] + s.qy[j] * s.qy[j]);
            sx[j] = 2 * k * s.qx[j];
            sy[j] = 2 * k * s.qy[j];
        }
        const uakd_lse_side side = {m, s.qx, s.qy, NULL, k, wj, sx, sy};
        uakd_plan_row_fn row = uakd_uot_plan_kernel();
#define PLAN_ROW(i)                                                                                \
    row(s.la[i] + f[i] / eps_t - k * (s.px[i] * s.px[i] + s.py[i] * s.py[i]), s.px[i], s.py[i],    \
        &side, plan + (size_t)(i) * m)
        if (threaded) {
            OMP(omp parallel for schedule(static))
            for (int i = 0; i < n; i++) PLAN_ROW(i);
        } else {
            for (int i = 0; i < n; i++) PLAN_ROW(i);
        }
#undef PLAN_ROW
    }
}

static uakd_status check_masses(const char *side, int k, const float *w, int count, const float *pts) {
    for (int i = 0; i < count; i++) {
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return uakd_fail(UAKD_EINVAL, "uot: problem %d: %s mass %d = %g must be finite and >= 0",
                             k, side, i, (double)w[i]);
        if (!isfinite(pts[2 * i]) || !isfinite(pts[2 * i + 1]))
            return uakd_fail(UAKD_EINVAL, "uot: problem %d: %s point %d is not finite", k, side, i);
    }
    return UAKD_OK;
}

uakd_status uakd_uot_solve_batch(const uakd_uot_params *p, const uakd_uot_problem *probs,
                                 int count, const float *x, const float *a, const float *y,
                                 const float *b, double *f, double *g, float *plan, void *work,
                                 size_t work_bytes) {
    UAKD_TRY(uakd_uot_params_check(p));
    if (count < 0 || (count > 0 && !probs)) return uakd_fail(UAKD_EINVAL, "uot: bad problem list");
    size_t need = uakd_uot_workspace_size(probs, count);
    if (count > 0 && need == 0) return uakd_fail(UAKD_EINVAL, "uot: negative or overflowing problem sizes");
    if (work_bytes < need || (need > 0 && !work) || ((uintptr_t)work % sizeof(double)) != 0)
        return uakd_fail(UAKD_EINVAL,
                         "uot: workspace of %zu bytes is too small or misaligned (need %zu, "
                         "from uakd_uot_workspace_size)", work_bytes, need);
    size_t *offs = work;
    double *base = (double *)((char *)work + (size_t)count * sizeof(size_t));
    size_t acc = 0;
    for (int k = 0; k < count; k++) {
        const uakd_uot_problem *pr = &probs[k];
        if (pr->x_off < 0 || pr->y_off < 0 || pr->plan_off < 0)
            return uakd_fail(UAKD_EINVAL, "uot: problem %d has a negative offset", k);
        if ((pr->n > 0 && (!x || !a || !f)) || (pr->m > 0 && (!y || !b || !g)))
            return uakd_fail(UAKD_EINVAL, "uot: problem %d: NULL point, mass or potential array", k);
        UAKD_TRY(check_masses("student", k, a + pr->x_off, pr->n, x + 2 * (size_t)pr->x_off));
        UAKD_TRY(check_masses("teacher", k, b + pr->y_off, pr->m, y + 2 * (size_t)pr->y_off));
        offs[k] = acc;
        acc += WORK_PER_POINT * ((size_t)pr->n + (size_t)pr->m);
    }
    OMP(omp parallel for schedule(dynamic, 2) if (count > 1))
    for (int k = 0; k < count; k++) {
        const uakd_uot_problem *pr = &probs[k];
        solve_one(p, pr->n, x + 2 * (size_t)pr->x_off, a + pr->x_off, pr->m, y + 2 * (size_t)pr->y_off,
                  b + pr->y_off, f + pr->x_off, g + pr->y_off, plan ? plan + pr->plan_off : NULL,
                  base + offs[k], 0);
    }
    return UAKD_OK;
}

uakd_status uakd_uot_solve(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                           const float *y, const float *b, double *f, double *g, float *plan,
                           void *work, size_t work_bytes) {
    UAKD_TRY(uakd_uot_params_check(p));
    if (n < 0 || m < 0) return uakd_fail(UAKD_EINVAL, "uot: negative problem size %d x %d", n, m);
    if ((n > 0 && (!x || !a || !f)) || (m > 0 && (!y || !b || !g)))
        return uakd_fail(UAKD_EINVAL, "uot: NULL point, mass or potential array");
    size_t need = uakd_uot_workspace_size_single(n, m);
    if (work_bytes < need || !work || ((uintptr_t)work % sizeof(double)) != 0)
        return uakd_fail(UAKD_EINVAL, "uot: workspace of %zu bytes is too small or misaligned (need %zu)",
                         work_bytes, need);
    UAKD_TRY(check_masses("student", 0, a, n, x));
    UAKD_TRY(check_masses("teacher", 0, b, m, y));
    double *base = (double *)((char *)work + sizeof(size_t));
    solve_one(p, n, x, a, m, y, b, f, g, plan, base, (int64_t)n * m >= 32768);
    return UAKD_OK;
}

static double total(const float *w, int count) {
    double s = 0;
    for (int i = 0; i < count; i++) s += w[i];
    return s;
}

static double phi(double t, double rho) { return isinf(rho) ? t : -rho * expm1(-t / rho); }

double uakd_uot_dual_value(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                           const float *y, const float *b, const double *f, const double *g) {
    const double rho = p->reach * p->reach, eps = p->blur * p->blur;
    double ma = total(a, n), mb = total(b, m);
    if (n == 0 || m == 0 || !(ma > 0) || !(mb > 0)) return isinf(rho) ? 0.0 : rho * (ma + mb);
    double v = 0;
    for (int i = 0; i < n; i++) v += a[i] * phi(f[i], rho);
    for (int j = 0; j < m; j++) v += b[j] * phi(g[j], rho);
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            if (a[i] == 0 || b[j] == 0) continue;
            double dx = (double)x[2 * i] - y[2 * j], dy = (double)x[2 * i + 1] - y[2 * j + 1];
            s += (double)a[i] * b[j] * expm1((f[i] + g[j] - 0.5 * (dx * dx + dy * dy)) / eps);
        }
    return v - eps * s;
}

/* rho KL(p | q) with the 0 log 0 = 0 convention. */
static double kl_term(double pv, double q, double rho) {
    if (pv <= 0) return rho * q;
    return rho * (pv * log(pv / q) - pv + q);
}

double uakd_uot_primal_value(const uakd_uot_params *p, int n, const float *x, const float *a,
                             int m, const float *y, const float *b, const double *f,
                             const double *g) {
    const double rho = p->reach * p->reach, eps = p->blur * p->blur;
    double ma = total(a, n), mb = total(b, m);
    if (n == 0 || m == 0 || !(ma > 0) || !(mb > 0)) return isinf(rho) ? 0.0 : rho * (ma + mb);
    double v = 0;
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int j = 0; j < m; j++) {
            double ab = (double)a[i] * b[j];
            if (ab == 0) continue;
            double dx = (double)x[2 * i] - y[2 * j], dy = (double)x[2 * i + 1] - y[2 * j + 1];
            double c = 0.5 * (dx * dx + dy * dy), r = (f[i] + g[j] - c) / eps;
            double pi = ab * exp(r);
            row += pi;
            /* pi C + eps (pi log(pi / ab) - pi + ab) */
            v += pi * c + eps * (pi * r - pi + ab);
        }
        if (!isinf(rho)) v += kl_term(row, a[i], rho);
    }
    if (!isinf(rho))
        for (int j = 0; j < m; j++) {
            double col = 0;
            for (int i = 0; i < n; i++) {
                double dx = (double)x[2 * i] - y[2 * j], dy = (double)x[2 * i + 1] - y[2 * j + 1];
                double ab = (double)a[i] * b[j];
                if (ab > 0) col += ab * exp((f[i] + g[j] - 0.5 * (dx * dx + dy * dy)) / eps);
            }
            v += kl_term(col, b[j], rho);
        }
    return v;
}

void uakd_uot_plan_from_potentials(const uakd_uot_params *p, int n, const float *x, const float *a,
                                   int m, const float *y, const float *b, const double *f,
                                   const double *g, float *plan) {
    const double eps = p->blur * p->blur;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double dx = (double)x[2 * i] - y[2 * j], dy = (double)x[2 * i + 1] - y[2 * j + 1];
            double c = 0.5 * (dx * dx + dy * dy);
            plan[(size_t)i * m + j] = (float)((double)a[i] * b[j] * exp((f[i] + g[j] - c) / eps));
        }
}
