/* Tests of the distillation losses: masses by hand, UAKD against the closed-form 1 x 1 plan,
 * finite differences of the UAKD gradients (points: plan held fixed; logits: potentials held
 * fixed, the plan being linear in a_i then), and of the ADLP divergence (full re-solve at
 * convergence; the envelope theorem makes the potentials' variation drop out). */
#include "test.h"
#include "uakd/kd_loss.h"
#include "uakd/rng.h"
#include "uakd/status.h"

static void test_masses(void) {
    float d;
    CHECK_NEAR(uakd_kd_student_mass(0.0f, &d), 0.5, 1e-7);
    CHECK_NEAR(d, 0.25, 1e-7);
    CHECK_NEAR(uakd_kd_student_mass(2.0f, &d), 1 / (1 + exp(-2.0)), 1e-7);
    CHECK_NEAR(d, exp(-2.0) / ((1 + exp(-2.0)) * (1 + exp(-2.0))), 1e-7);
    CHECK_NEAR(uakd_kd_student_mass(-10.0f, &d), 1e-3, 1e-9);
    CHECK(d == 0.0f);
    CHECK_NEAR(uakd_kd_student_mass(10.0f, &d), 1 - 1e-3, 1e-7);
    CHECK(d == 0.0f);
    CHECK_NEAR(uakd_kd_teacher_mass(0.5f, 0.2f, 0.6f), 0.7, 1e-7);
    CHECK_NEAR(uakd_kd_teacher_mass(0.0f, 0.9f, 1.0f), 1.0, 0);
    CHECK_NEAR(uakd_kd_teacher_mass(1.0f, 0.25f, 0.1f), 0.75, 1e-7);
}

/* One image, one keypoint, 1 x 1 at the default eps: pi from the closed form of test_uot. */
static void test_uakd_one_by_one(void) {
    uakd_kd_ctx *ctx;
    CHECK_OK(uakd_kd_ctx_new(&ctx));
    const int n[1] = {1}, m[1] = {1};
    const float x[2] = {0.30f, 0.40f}, y[2] = {0.3012f, 0.3995f}, logit[1] = {0.4f}, tm[1] = {0.8f};
    uakd_kd_input in = {1, 1, n, m, x, logit, y, tm};
    uakd_kd_options o;
    uakd_kd_options_default(&o);
    o.weight = 5.0;
    double a = 1 / (1 + exp(-0.4)), b = tm[0], eps = 1e-6, rho = 0.25;
    double dx = (double)x[0] - y[0], dy = (double)x[1] - y[1], C = 0.5 * (dx * dx + dy * dy);
    double pi = exp(((1 + rho / eps) * log(a * b) - C / eps) / (1 + 2 * rho / eps));
    double loss;
    int valid;
    float gx[2] = {1, 1}, gl[1] = {0};
    CHECK_OK(uakd_kd_uakd(ctx, &o, &in, &loss, &valid, gx, gl));
    CHECK(valid == 1);
    CHECK_NEAR(loss, pi * 2 * C, 1e-5 * pi * 2 * C);
    CHECK_NEAR(gx[0], 1 + 5 * 2 * pi * dx, 1e-5);
    CHECK_NEAR(gx[1], 1 + 5 * 2 * pi * dy, 1e-5);
    /* dL/dlogit = pi |d|^2 / a * a (1 - a) */
    CHECK_NEAR(gl[0], 5 * pi * 2 * C * (1 - a), 1e-5 * 5 * pi * 2 * C);
    int pn, pm;
    const float *plan = uakd_kd_plan(ctx, 0, 0, &pn, &pm);
    CHECK(plan && pn == 1 && pm == 1);
    if (plan) CHECK_NEAR(plan[0], pi, 1e-5 * pi);
    CHECK(uakd_kd_plan(ctx, 1, 0, NULL, NULL) == NULL);
    /* detached mass: no logit gradient */
    o.detach_student_mass = 1;
    gl[0] = 0;
    CHECK_OK(uakd_kd_uakd(ctx, &o, &in, &loss, NULL, NULL, gl));
    CHECK(gl[0] == 0);
    uakd_kd_ctx_free(ctx);
}

enum { B = 4, K = 2 };
static const int NS[B] = {3, 4, 2, 0}, MS[B] = {2, 3, 0, 4};
#define NSUM 9
#define MSUM 9

typedef struct batch {
    float x[NSUM * K * 2], y[MSUM * K * 2], logit[NSUM], tm[MSUM * K];
    uakd_kd_input in;
} batch;

static void make_batch(batch *bt, uint64_t seed, double spread) {
    uakd_rng r;
    uakd_rng_seed(&r, seed);
    for (int i = 0; i < NSUM * K * 2; i++) bt->x[i] = (float)uakd_rng_range(&r, 0.4, 0.4 + spread);
    for (int j = 0; j < MSUM * K * 2; j++) bt->y[j] = (float)uakd_rng_range(&r, 0.4, 0.4 + spread);
    for (int i = 0; i < NSUM; i++) bt->logit[i] = (float)uakd_rng_range(&r, -2, 2);
    for (int j = 0; j < MSUM * K; j++) bt->tm[j] = (float)uakd_rng_range(&r, 0.1, 1);
    bt->in = (uakd_kd_input){B, K, NS, MS, bt->x, bt->logit, bt->y, bt->tm};
}

/* Gathers the points of (image b, keypoint k) of a [cells][K][2] array into out. */
static void gather(const float *pts, int first, int count, int k, float *out) {
    for (int i = 0; i < count; i++) {
        out[2 * i] = pts[((first + i) * K + k) * 2];
        out[2 * i + 1] = pts[((first + i) * K + k) * 2 + 1];
    }
}

/* UAKD loss of a batch with the plans of ctx held fixed (mode 0), or with its potentials held
 * fixed and the plans rebuilt from the current logits (mode 1). */
static double fixed_loss(const uakd_kd_ctx *ctx, const uakd_kd_options *o, const batch *bt, int mode) {
    double total = 0;
    int V = 0, xs = 0, ys = 0;
    for (int b = 0; b < B; b++) {
        V += NS[b] > 0 && MS[b] > 0;
        for (int k = 0; k < K; k++) {
            int n, m;
            const float *plan = uakd_kd_plan(ctx, b, k, &n, &m);
            float px[8], py[8], a[4], tb[4], pl[16];
            gather(bt->x, xs, n, k, px);
            gather(bt->y, ys, m, k, py);
            if (mode == 1) {
                const double *f, *g;
                CHECK_OK(uakd_kd_potentials(ctx, b, k, &f, &g));
                for (int i = 0; i < n; i++) a[i] = uakd_kd_student_mass(bt->logit[xs + i], NULL);
                for (int j = 0; j < m; j++) tb[j] = bt->tm[(ys + j) * K + k];
                uakd_uot_plan_from_potentials(&o->uot, n, px, a, m, py, tb, f, g, pl);
                plan = pl;
            }
            total += uakd_kd_plan_cost(n, px, m, py, plan, 0, NULL);
        }
        xs += NS[b];
        ys += MS[b];
    }
    return total / V;
}

static void test_uakd_gradients_fd(void) {
    uakd_kd_ctx *ctx;
    CHECK_OK(uakd_kd_ctx_new(&ctx));
    batch bt;
    make_batch(&bt, 21, 0.2);
    uakd_kd_options o;
    uakd_kd_options_default(&o);
    o.uot.blur = 0.05;
    double loss;
    int valid;
    float gx[NSUM * K * 2] = {0}, gl[NSUM] = {0};
    CHECK_OK(uakd_kd_uakd(ctx, &o, &bt.in, &loss, &valid, gx, gl));
    CHECK(valid == 2);
    CHECK_NEAR(loss, fixed_loss(ctx, &o, &bt, 0), 1e-12);
    CHECK(loss > 0);
    /* points: the loss is quadratic in x at a fixed plan, central differences are exact */
    const float h = 1e-3f;
    for (int q = 0; q < NSUM * K * 2; q++) {
        float keep = bt.x[q];
        bt.x[q] = keep + h;
        double up = fixed_loss(ctx, &o, &bt, 0);
        bt.x[q] = keep - h;
        double dn = fixed_loss(ctx, &o, &bt, 0);
        double hh = (double)(keep + h) - (double)(keep - h);
        bt.x[q] = keep;
        CHECK_NEAR(gx[q], (up - dn) / hh, 1e-4 * fabs(gx[q]) + 1e-6);
    }
    /* logits: potentials fixed, plan linear in a_i */
    for (int i = 0; i < NSUM; i++) {
        float keep = bt.logit[i];
        const float hl = 1e-2f;
        bt.logit[i] = keep + hl;
        double up = fixed_loss(ctx, &o, &bt, 1);
        bt.logit[i] = keep - hl;
        double dn = fixed_loss(ctx, &o, &bt, 1);
        bt.logit[i] = keep;
        double fd = (up - dn) / (2.0 * hl);
        CHECK_NEAR(gl[i], fd, 1e-3 * fabs(fd) + 1e-7);
    }
    /* students of images without teachers get nothing */
    for (int q = 7 * K * 2; q < NSUM * K * 2; q++) CHECK(gx[q] == 0);
    uakd_kd_ctx_free(ctx);
}

static double adlp_loss(uakd_kd_ctx *ctx, const uakd_kd_options *o, const batch *bt) {
    double loss = NAN;
    CHECK_OK(uakd_kd_adlp(ctx, o, &bt->in, &loss, NULL, NULL, NULL));
    return loss;
}

/* ADLP: gradients agree with central differences of the re-solved divergence; the divergence of
 * a batch against itself is 0 with zero gradient. */
static void test_adlp_gradients_fd(void) {
    uakd_kd_ctx *ctx;
    CHECK_OK(uakd_kd_ctx_new(&ctx));
    batch bt;
    make_batch(&bt, 33, 0.3);
    uakd_kd_options o;
    uakd_kd_options_default(&o);
    o.uot.blur = 0.1;
    o.uot.final_iters = 20000;
    o.uot.tol = 1e-7;
    double loss;
    float gx[NSUM * K * 2] = {0}, gl[NSUM] = {0};
    CHECK_OK(uakd_kd_adlp(ctx, &o, &bt.in, &loss, NULL, gx, gl));
    CHECK(loss > 0);
    CHECK(uakd_kd_plan(ctx, 0, 0, NULL, NULL) == NULL);
    for (int q = 0; q < 7 * K * 2; q += 3) { /* every third coordinate keeps the test quick */
        float keep = bt.x[q];
        const float h = 2e-3f;
        bt.x[q] = keep + h;
        double up = adlp_loss(ctx, &o, &bt);
        bt.x[q] = keep - h;
        double dn = adlp_loss(ctx, &o, &bt);
        double hh = (double)(keep + h) - (double)(keep - h);
        bt.x[q] = keep;
        double fd = (up - dn) / hh;
        CHECK_MSG(fabs(gx[q] - fd) <= 1e-3 * fabs(fd) + 2e-6, "x[%d]: %.8g vs fd %.8g", q, gx[q], fd);
    }
    for (int i = 0; i < 7; i++) {
        float keep = bt.logit[i];
        const float hl = 1e-2f;
        bt.logit[i] = keep + hl;
        double up = adlp_loss(ctx, &o, &bt);
        bt.logit[i] = keep - hl;
        double dn = adlp_loss(ctx, &o, &bt);
        bt.logit[i] = keep;
        double fd = (up - dn) / (2.0 * hl);
        CHECK_MSG(fabs(gl[i] - fd) <= 2e-3 * fabs(fd) + 2e-6, "logit[%d]: %.8g vs fd %.8g", i, gl[i], fd);
    }
    /* against itself: one image, teacher = student (points and masses) */
    const int n1[1] = {3};
    float a[3], tm[3 * K];
    for (int i = 0; i < 3; i++) {
        a[i] = uakd_kd_student_mass(bt.logit[i], NULL);
        for (int k = 0; k < K; k++) tm[i * K + k] = a[i];
    }
    uakd_kd_input self = {1, K, n1, n1, bt.x, bt.logit, bt.x, tm};
    float gs[3 * K * 2] = {0}, gls[3] = {0};
    CHECK_OK(uakd_kd_adlp(ctx, &o, &self, &loss, NULL, gs, gls));
    CHECK_NEAR(loss, 0, 1e-9);
    for (int q = 0; q < 3 * K * 2; q++) CHECK_NEAR(gs[q], 0, 1e-7);
    for (int i = 0; i < 3; i++) CHECK_NEAR(gls[i], 0, 1e-7);
    uakd_kd_ctx_free(ctx);
}

static void test_bad_and_empty(void) {
    uakd_kd_ctx *ctx;
    CHECK_OK(uakd_kd_ctx_new(&ctx));
    uakd_kd_options o;
    uakd_kd_options_default(&o);
    const int n[2] = {0, 2}, m[2] = {3, 0}, bad[1] = {-1};
    float pts[3 * 2] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, tm[3] = {1, 1, 1}, lg[2] = {0, 0};
    uakd_kd_input in = {2, 1, n, m, pts, lg, pts, tm};
    double loss = -1;
    int valid = -1;
    float gx[4] = {0};
    CHECK_OK(uakd_kd_uakd(ctx, &o, &in, &loss, &valid, gx, NULL));
    CHECK(loss == 0 && valid == 0 && gx[0] == 0);
    CHECK_OK(uakd_kd_adlp(ctx, &o, &in, &loss, &valid, gx, NULL));
    CHECK(loss == 0 && valid == 0);
    uakd_kd_input neg = {1, 1, bad, m, pts, lg, pts, tm};
    CHECK_FAILS(uakd_kd_uakd(ctx, &o, &neg, &loss, NULL, NULL, NULL), UAKD_EINVAL);
    lg[1] = NAN;
    CHECK_FAILS(uakd_kd_uakd(ctx, &o, &in, &loss, NULL, NULL, NULL), UAKD_EINVAL);
    uakd_kd_ctx_free(ctx);
}

int main(void) {
    RUN(test_masses);
    RUN(test_uakd_one_by_one);
    RUN(test_uakd_gradients_fd);
    RUN(test_adlp_gradients_fd);
    RUN(test_bad_and_empty);
    return TEST_END();
}
