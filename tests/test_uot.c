/* Tests of the unbalanced Sinkhorn solver: plans against POT 0.8 (fixtures written by
 * scripts/ref_uot.py), a closed-form 1 x 1 case at the training eps, primal = dual at convergence,
 * the optimality conditions, batch = single, empty problems, and the kernels against each other. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/rng.h"
#include "uakd/status.h"
#include "uakd/uot.h"


static float *floats(const cJSON *arr, int *count) {
    int n = cJSON_GetArraySize(arr);
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) v[k++] = (float)it->valuedouble;
    *count = n;
    return v;
}

/* Solves one problem with the single-problem path into freshly allocated f, g, plan. */
static void solve(const uakd_uot_params *p, int n, const float *x, const float *a, int m,
                  const float *y, const float *b, double *f, double *g, float *plan) {
    size_t ws = uakd_uot_workspace_size_single(n, m);
    void *work = malloc(ws);
    CHECK_OK(uakd_uot_solve(p, n, x, a, m, y, b, f, g, plan, work, ws));
    free(work);
}

/* Plans agree with POT elementwise: |ours - pot| <= 1e-5 pot + 1e-7 max(pot). The converged
 * solve runs up to 200000 final iterations with tol = 1e-12 (below the AVX2 kernel's noise floor
 * of ~1e-8, so with that kernel all 200000 run; a few seconds at most for these sizes). */
static void test_matches_pot(void) {
    cJSON *root = test_read_json("tests/data/uot/pot_cases.json");
    CHECK_MSG(root != NULL, "cannot read tests/data/uot/pot_cases.json (run scripts/ref_uot.py)");
    if (!root) return;
    const cJSON *c;
    int ncases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        int n, m, nx, ny, np_;
        float *x = floats(cJSON_GetObjectItem(c, "x"), &nx);
        float *a = floats(cJSON_GetObjectItem(c, "a"), &n);
        float *y = floats(cJSON_GetObjectItem(c, "y"), &ny);
        float *b = floats(cJSON_GetObjectItem(c, "b"), &m);
        float *ref = floats(cJSON_GetObjectItem(c, "plan"), &np_);
        CHECK(nx == 2 * n && ny == 2 * m && np_ == n * m);
        uakd_uot_params p;
        uakd_uot_params_default(&p);
        p.blur = cJSON_GetObjectItem(c, "blur")->valuedouble;
        p.reach = cJSON_GetObjectItem(c, "reach")->valuedouble;
        p.final_iters = 200000;
        p.tol = 1e-12;
        double *f = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * m);
        float *plan = malloc(sizeof(float) * n * m);
        solve(&p, n, x, a, m, y, b, f, g, plan);
        double pmax = 0, worst = 0;
        for (int k = 0; k < n * m; k++) pmax = fmax(pmax, ref[k]);
        for (int k = 0; k < n * m; k++) {
            double err = fabs(plan[k] - ref[k]) / (1e-5 * ref[k] + 1e-7 * pmax);
            worst = fmax(worst, err);
        }
        CHECK_MSG(worst <= 1.0, "case %s: plan error %.3g x tolerance",
                  cJSON_GetObjectItem(c, "name")->valuestring, worst);
        free(x), free(a), free(y), free(b), free(ref), free(f), free(g), free(plan);
        ncases++;
    }
    CHECK(ncases == 11);
    cJSON_Delete(root);
}

/* 1 x 1: pi = a b exp((f + g - C)/eps), f = -rho log(pi/a), g = -rho log(pi/b) give
 * log pi = ((1 + rho/eps) log(a b) - C/eps) / (1 + 2 rho/eps). At the default eps = 1e-6. */
static void test_one_by_one_closed_form(void) {
    uakd_uot_params p;
    uakd_uot_params_default(&p);
    const float x[2] = {0.25f, 0.5f}, y[2] = {0.2510f, 0.4995f}, a[1] = {0.3f}, b[1] = {0.9f};
    const double eps = 1e-6, rho = 0.25;
    double dx = (double)x[0] - y[0], dy = (double)x[1] - y[1], C = 0.5 * (dx * dx + dy * dy);
    double lpi = ((1 + rho / eps) * log((double)a[0] * b[0]) - C / eps) / (1 + 2 * rho / eps);
    double f, g;
    float plan;
    solve(&p, 1, x, a, 1, y, b, &f, &g, &plan);
    CHECK_NEAR(plan, exp(lpi), 1e-6 * exp(lpi));
    CHECK_NEAR(f, -rho * (lpi - log(a[0])), 1e-9);
    CHECK_NEAR(g, -rho * (lpi - log(b[0])), 1e-9);
    /* identical points */
    solve(&p, 1, x, a, 1, x, b, &f, &g, &plan);
    lpi = (1 + rho / eps) * log((double)a[0] * b[0]) / (1 + 2 * rho / eps);
    CHECK_NEAR(plan, exp(lpi), 1e-6 * exp(lpi));
}

static void random_problem(uakd_rng *r, int n, int m, float *x, float *a, float *y, float *b,
                           double box) {
    for (int i = 0; i < 2 * n; i++) x[i] = (float)uakd_rng_range(r, 0, box);
    for (int j = 0; j < 2 * m; j++) y[j] = (float)uakd_rng_range(r, 0, box);
    for (int i = 0; i < n; i++) a[i] = (float)uakd_rng_range(r, 0.05, 1);
    for (int j = 0; j < m; j++) b[j] = (float)uakd_rng_range(r, 0.05, 1);
}

/* At convergence the duality gap vanishes and f_i = -rho log((pi 1)_i / a_i). */
static void test_primal_equals_dual_and_optimality(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 3);
    enum { N = 7, M = 5 };
    float x[2 * N], y[2 * M], a[N], b[M], plan[N * M];
    double f[N], g[M];
    random_problem(&r, N, M, x, a, y, b, 1.0);
    const double blurs[3] = {0.3, 0.1, 0.03};
    for (int t = 0; t < 3; t++) {
        uakd_uot_params p;
        uakd_uot_params_default(&p);
        p.blur = blurs[t];
        p.final_iters = 100000;
        p.tol = 1e-13;
        solve(&p, N, x, a, M, y, b, f, g, plan);
        double primal = uakd_uot_primal_value(&p, N, x, a, M, y, b, f, g);
        double dual = uakd_uot_dual_value(&p, N, x, a, M, y, b, f, g);
        CHECK_NEAR(primal, dual, 1e-9 * fabs(primal));
        CHECK(primal > 0);
        for (int i = 0; i < N; i++) {
            double row = 0;
            for (int j = 0; j < M; j++) row += plan[i * M + j];
            CHECK_NEAR(f[i], -0.25 * log(row / a[i]), 1e-5);
        }
    }
}

/* Batch of mixed sizes (including empty and zero-mass problems) equals the single path. */
static void test_batch_equals_single_and_empty(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 11);
    enum { P = 9 };
    uakd_uot_problem pr[P] = {{3, 4, 0, 0, 0}, {0, 5, 0, 0, 0}, {4, 0, 0, 0, 0}, {1, 1, 0, 0, 0},
                              {10, 10, 0, 0, 0}, {1, 7, 0, 0, 0}, {6, 1, 0, 0, 0}, {0, 0, 0, 0, 0},
                              {3, 3, 0, 0, 0}};
    int nt, mt, pt;
    CHECK_OK(uakd_uot_layout(pr, P, &nt, &mt, &pt));
    CHECK(nt == 28 && mt == 31 && pt == 12 + 1 + 100 + 7 + 6 + 9);
    float *x = malloc(sizeof(float) * 2 * nt), *y = malloc(sizeof(float) * 2 * mt);
    float *a = malloc(sizeof(float) * nt), *b = malloc(sizeof(float) * mt);
    float *plan = malloc(sizeof(float) * pt), *plan1 = malloc(sizeof(float) * pt);
    double *f = malloc(sizeof(double) * nt), *g = malloc(sizeof(double) * mt);
    double *f1 = malloc(sizeof(double) * nt), *g1 = malloc(sizeof(double) * mt);
    random_problem(&r, nt, mt, x, a, y, b, 1.0);
    for (int j = 0; j < 3; j++) b[pr[8].y_off + j] = 0; /* problem 8: teacher side massless */
    a[pr[0].x_off + 1] = 0;                             /* a zero-mass student point */
    uakd_uot_params p;
    uakd_uot_params_default(&p);
    size_t ws = uakd_uot_workspace_size(pr, P);
    void *work = malloc(ws);
    CHECK_OK(uakd_uot_solve_batch(&p, pr, P, x, a, y, b, f, g, plan, work, ws));
    CHECK_FAILS(uakd_uot_solve_batch(&p, pr, P, x, a, y, b, f, g, plan, work, ws - 8), UAKD_EINVAL);
    for (int k = 0; k < P; k++) {
        const uakd_uot_problem *q = &pr[k];
        solve(&p, q->n, x + 2 * q->x_off, a + q->x_off, q->m, y + 2 * q->y_off, b + q->y_off,
              f1 + q->x_off, g1 + q->y_off, plan1 + q->plan_off);
    }
    for (int i = 0; i < nt; i++) CHECK(f[i] == f1[i] && isfinite(f[i]));
    for (int j = 0; j < mt; j++) CHECK(g[j] == g1[j] && isfinite(g[j]));
    for (int k = 0; k < pt; k++) CHECK(plan[k] == plan1[k] && plan[k] >= 0 && isfinite(plan[k]));
    for (int j = 0; j < 4; j++) CHECK(plan[pr[0].plan_off + 4 + j] == 0); /* zero-mass row */
    for (int k = 0; k < 9; k++) CHECK(plan[pr[8].plan_off + k] == 0);
    /* empty problems: value of the zero plan */
    double ma = 0;
    for (int i = 0; i < 4; i++) ma += a[pr[2].x_off + i];
    CHECK_NEAR(uakd_uot_dual_value(&p, 4, x + 2 * pr[2].x_off, a + pr[2].x_off, 0, NULL, NULL,
                                   f + pr[2].x_off, NULL), 0.25 * ma, 1e-12);
    free(work), free(x), free(y), free(a), free(b), free(plan), free(plan1);
    free(f), free(g), free(f1), free(g1);
}

static void test_bad_input(void) {
    uakd_uot_params p;
    uakd_uot_params_default(&p);
    float x[2] = {0, 0}, a[1] = {-1}, b[1] = {1};
    double f, g;
    char work[256] __attribute__((aligned(8)));
    CHECK_FAILS(uakd_uot_solve(&p, 1, x, a, 1, x, b, &f, &g, NULL, work, sizeof work), UAKD_EINVAL);
    a[0] = 1;
    x[1] = NAN;
    CHECK_FAILS(uakd_uot_solve(&p, 1, x, a, 1, x, b, &f, &g, NULL, work, sizeof work), UAKD_EINVAL);
    p.scaling = 1;
    CHECK_FAILS(uakd_uot_params_check(&p), UAKD_EINVAL);
}

/* The fast kernels (AVX2, AVX-512 where the CPU has them) agree with the plain-C one (64 x 64 and
 * 512 x 300). With the default 10 final
 * iterations at eps = 1e-6 the solve is not converged and the kernels' 1e-7 differences early in
 * the eps-scaling still show in the potentials (~1e-3 eps) but the plans agree to 1e-5 of their
 * maximum; converged (blur 0.1), the potentials agree to 1e-4 eps (plan factors 1 +- 1e-4). */
static void test_kernels_agree(void) {
    static const uakd_uot_kernel kernels[3] = {UAKD_UOT_KERNEL_REFERENCE, UAKD_UOT_KERNEL_AVX2, UAKD_UOT_KERNEL_AVX512};
    uakd_rng r;
    uakd_rng_seed(&r, 5);
    const int sizes[4][2] = {{64, 64}, {512, 300}, {32, 24}, {48, 40}};
    for (int t = 0; t < 4; t++) {
        int n = sizes[t][0], m = sizes[t][1], converged = t >= 2;
        float *x = malloc(sizeof(float) * 2 * n), *y = malloc(sizeof(float) * 2 * m);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * m);
        double *f[3], *g[3];
        float *plan[3];
        const char *name[3];
        random_problem(&r, n, m, x, a, y, b, 1.0);
        uakd_uot_params p;
        uakd_uot_params_default(&p);
        if (converged) p.blur = 0.1, p.final_iters = 20000, p.tol = 1e-9;
        for (int k = 0; k < 3; k++) {
            f[k] = malloc(sizeof(double) * n), g[k] = malloc(sizeof(double) * m);
            plan[k] = malloc(sizeof(float) * n * m);
            uakd_uot_select_kernel(kernels[k]);
            name[k] = uakd_uot_kernel_name();
            solve(&p, n, x, a, m, y, b, f[k], g[k], plan[k]);
        }
        uakd_uot_select_kernel(UAKD_UOT_KERNEL_BEST);
        CHECK(!strcmp(name[0], "reference"));
        for (int k = 1; k < 3; k++) {
            double df = 0, dp = 0, pmax = 0;
            for (int i = 0; i < n; i++) df = fmax(df, fabs(f[k][i] - f[0][i]));
            for (int j = 0; j < m; j++) df = fmax(df, fabs(g[k][j] - g[0][j]));
            for (int q = 0; q < n * m; q++) {
                dp = fmax(dp, fabs(plan[k][q] - plan[0][q]));
                pmax = fmax(pmax, plan[0][q]);
            }
            double eps = p.blur * p.blur;
            fprintf(stderr, "  %d x %d %s, %s kernel: potentials differ by %.3g eps, plans by %.3g max\n", n, m,
                    converged ? "converged" : "default", name[k], df / eps, dp / pmax);
            if (converged) CHECK_MSG(df <= 1e-4 * eps, "%s: potentials differ by %.3g eps", name[k], df / eps);
            CHECK_MSG(dp <= 1e-5 * pmax, "%s: plans differ by %.3g max", name[k], dp / pmax);
        }
        for (int k = 0; k < 3; k++) free(f[k]), free(g[k]), free(plan[k]);
        free(x), free(y), free(a), free(b);
    }
}

int main(void) {
    RUN(test_matches_pot);
    RUN(test_one_by_one_closed_form);
    RUN(test_primal_equals_dual_and_optimality);
    RUN(test_batch_equals_single_and_empty);
    RUN(test_bad_input);
    RUN(test_kernels_agree);
    return TEST_END();
}
