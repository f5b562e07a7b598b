/* Unbalanced entropic optimal transport between small 2D point clouds (method.md section 5).
 *
 * For student points x_i with masses a_i (i < n) and teacher points y_j with masses b_j (j < m),
 * cost C_ij = |x_i - y_j|^2 / 2, the solver computes the dual potentials f (student side) and
 * g (teacher side) of
 *
 *   min_{pi >= 0} <pi, C> + eps KL(pi | a (x) b) + rho KL(pi 1 | a) + rho KL(pi^T 1 | b),
 *
 * eps = blur^2, rho = reach^2, KL(p | q) = sum p log(p/q) - p + q, and the plan
 *   pi_ij = a_i b_j exp((f_i + g_j - C_ij) / eps).
 * Masses are not normalised and may differ in total. Updates run in the log domain:
 *   f_i <- -damp eps LSE_j(log b_j + (g_j - C_ij) / eps),  damp = 1 / (1 + eps / rho),
 * symmetrically for g, both from the previous pair, then averaged with it, then shifted by the
 * closed-form best (f + c, g - c) (plan unchanged; the potentials converge even when
 * eps << rho, which the dual value and ADLP need). Eps-scaling starts at
 * blur = D (D = diagonal of the joint bounding box of the points) and multiplies blur by
 * `scaling` per iteration while it is above the target, then runs `final_iters` iterations at the
 * target eps (fewer when `tol` stops them). Inputs and the plan are float32; potentials and all
 * arithmetic are float64.
 *
 * Accuracy of the default schedule: each iteration contracts the "mass" modes of the potentials
 * (f + c on a cluster of student points, g - c on the teacher points it is matched to; the plan's
 * mass there depends on them) only by about 1 - eps/(2 rho). The closed-form step fixes the global
 * mode but not per-cluster ones, so with eps << rho the default 10 final iterations leave the plan
 * far from the optimum of the stated problem: on a 10 x 10 problem with points spread over 0.1 at
 * blur 1e-3 the largest plan entry is off by 0.58 (of 0.65) and sum pi |x - y|^2 is 0.0052
 * instead of 0.0117; about 3e4 final iterations converge it (tests/test_uot.c checks converged
 * solves against POT). The established ADLP/GeomLoss scheme has the same property.
 *
 * Batched use (many tiny problems, e.g. 8 keypoints x batch 16): describe each problem by its
 * sizes and offsets into shared arrays, ask uakd_uot_workspace_size for the scratch size once,
 * and call uakd_uot_solve_batch; it allocates nothing and runs problems in parallel (OpenMP). */
#ifndef UAKD_UOT_H
#define UAKD_UOT_H

#include <stddef.h>

#include "uakd/status.h"

typedef struct uakd_uot_params {
    double blur;     /* target blur, eps = blur^2 (normalised units); default 1e-3 */
    double reach;    /* rho = reach^2; default 0.5; INFINITY gives the balanced problem */
    double scaling;  /* blur factor per annealing iteration, in (0, 1); default 0.5 */
    int final_iters; /* iterations at the target eps (the maximum when tol > 0); default 10 */
    double tol;      /* 0 = off; else stop the final iterations once one more update would change
                        every potential by at most tol * eps (i.e. every row and column sum of the
                        plan by a factor within exp(+-tol)); default 0. The fast kernels' float32
                        exp leaves a noise floor of about 1e-8: tol below ~1e-7 may never be met
                        and then final_iters bounds the work */
} uakd_uot_params;

/* The defaults above. */
void uakd_uot_params_default(uakd_uot_params *p);

/* Checks ranges (blur > 0, reach > 0, 0 < scaling < 1, final_iters >= 1, tol >= 0). */
uakd_status uakd_uot_params_check(const uakd_uot_params *p);

/* One problem of a batch. Student point i is x[2 (x_off + i) .. +1] with mass a[x_off + i] and
 * potential f[x_off + i]; teacher point j is y[2 (y_off + j) .. +1], b[y_off + j], g[y_off + j];
 * the plan is plan[plan_off + i m + j] (row-major n x m). Problems may share inputs (same
 * offsets) but must not share outputs. n = 0 or m = 0 is allowed. */
typedef struct uakd_uot_problem {
    int n, m;
    int x_off, y_off, plan_off;
} uakd_uot_problem;

/* Fills x_off, y_off and plan_off of probs[0..count) one after another from their n and m and
 * returns the array lengths needed (points, not floats). Fails on negative sizes or overflow. */
uakd_status uakd_uot_layout(uakd_uot_problem *probs, int count, int *n_total, int *m_total,
                            int *plan_total);

/* Bytes of scratch uakd_uot_solve_batch needs for these problems (0 on size overflow). */
size_t uakd_uot_workspace_size(const uakd_uot_problem *probs, int count);

/* Solves every problem. x, y: points (2 floats each); a, b: masses (>= 0, finite); f, g:
 * potentials out; plan: NULL or the plans out. work: at least uakd_uot_workspace_size bytes,
 * aligned for double. A problem with n = 0, m = 0 or zero total mass on either side has the
 * zero plan and potentials set to 0 (its transport value is rho (m(a) + m(b)), see
 * uakd_uot_dual_value). Points of zero mass get zero plan rows/columns. */
uakd_status uakd_uot_solve_batch(const uakd_uot_params *p, const uakd_uot_problem *probs,
                                 int count, const float *x, const float *a, const float *y,
                                 const float *b, double *f, double *g, float *plan, void *work,
                                 size_t work_bytes);

/* One problem (e.g. 64 or 512 points), parallel over rows inside the problem. */
size_t uakd_uot_workspace_size_single(int n, int m);
uakd_status uakd_uot_solve(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                           const float *y, const float *b, double *f, double *g, float *plan,
                           void *work, size_t work_bytes);

/* The dual objective at potentials f, g (the transport value OT_eps(a, b) when they are optimal):
 *   sum_i a_i phi(f_i) + sum_j b_j phi(g_j) - eps sum_ij a_i b_j (exp((f_i + g_j - C_ij)/eps) - 1),
 *   phi(t) = rho (1 - exp(-t / rho))  (phi(t) = t when rho is infinite).
 * For n = 0 or m = 0 (or zero total mass on a side) it returns rho (m(a) + m(b)), the value of
 * the zero plan (0 when rho is infinite and both are empty). */
double uakd_uot_dual_value(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                           const float *y, const float *b, const double *f, const double *g);

/* The primal objective of the plan pi = a_i b_j exp((f_i + g_j - C_ij)/eps) given by the
 * potentials (equal to the dual value at the optimum). */
double uakd_uot_primal_value(const uakd_uot_params *p, int n, const float *x, const float *a,
                             int m, const float *y, const float *b, const double *f,
                             const double *g);

/* plan_ij = a_i b_j exp((f_i + g_j - C_ij)/eps) for given potentials (row-major n x m). */
void uakd_uot_plan_from_potentials(const uakd_uot_params *p, int n, const float *x, const float *a,
                                   int m, const float *y, const float *b, const double *f,
                                   const double *g, float *plan);

/* The log-sum-exp kernel (tests and benchmarks): BEST (default) is the fastest this CPU runs;
 * AVX2 or AVX512 fall back to the next slower one where the CPU lacks it; REFERENCE is plain C.
 * Not to be changed while a solve runs. */
typedef enum uakd_uot_kernel {
    UAKD_UOT_KERNEL_BEST = 0,
    UAKD_UOT_KERNEL_REFERENCE,
    UAKD_UOT_KERNEL_AVX2,
    UAKD_UOT_KERNEL_AVX512,
} uakd_uot_kernel;
void uakd_uot_select_kernel(uakd_uot_kernel k);
/* The kernel solves use now: "avx512", "avx2" or "reference". */
const char *uakd_uot_kernel_name(void);

#endif
