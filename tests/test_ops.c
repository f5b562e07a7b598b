/* The op-test harness: every layer op (conv through its backend dispatch, batch norm in both
 * modes, group norm, the four activations, max-pool, upsample, add, concat, GAP, channel
 * multiply, point sampling, scale, fast normalised fusion) over several shapes, each wrapped in a one-op network.
 *
 * For every case and on both backends (REF, FAST):
 *   1. gradient check: L = sum(y * r) for a random projection r; the analytic dL/dv from
 *      uakd_net_backward is compared with the central difference (L(v+h) - L(v-h)) / 2h, L summed
 *      in double, for a few random entries v of every input that requires a gradient and every
 *      trainable parameter: |fd - analytic| <= tol * max(1, |fd|).
 *      Tolerances (float32 forward, h = 1e-2, relative to max(1, |fd|)): 1e-2 for every op (the
 *      float32 rounding of L is ~1e-6 relative, the truncation error O(h^2) of smooth ops is
 *      ~1e-4; SiLU/sigmoid curvature stays below 1e-3 at h = 1e-2).
 *      Kink skip rule: an entry is skipped when its one-sided differences (L(v+h) - L(v))/h and
 *      (L(v) - L(v-h))/h differ by more than 10 tol max(1, |fd|) — a kink (ReLU/leaky at 0, a
 *      max-pool near-tie, a sampling point crossing an integer) lies within h. Skips are counted
 *      and a case fails if more than a third of its entries are skipped.
 *   2. fast vs reference: the outputs and all gradients of the FAST run equal those of the REF run
 *      within 1e-4 * max(1, |value|) (only convolution differs between the backends).
 * Plus hand-computed values: BN running statistics, max-pool ties, sampling and the gradient
 * join rule. */
#include "test.h"
#include "uakd/backend.h"
#include "uakd/net.h"

static const char *backend_label[2] = {"ref", "fast"};

typedef struct case_result {
    float *y, *grads; /* output, then concatenated input and parameter gradients */
    size_t ny, ngrads;
} case_result;

static double loss(uakd_net *net, int n, int out, const float *r) {
    CHECK_OK(uakd_net_forward(net, n, 1));
    const float *y = uakd_net_out(net, out);
    double l = 0;
    for (size_t i = 0; i < (size_t)n * uakd_net_shape(net, out, NULL, NULL, NULL); i++) l += (double)y[i] * r[i];
    return l;
}

/* FD-checks entries of v (count values) against g; returns how many were checked and skipped. */
static void fd_check(const char *label, uakd_net *net, int n, int out, const float *r, float *v, const float *g,
                     int64_t count, double tol, uakd_rng *rng, int *checked, int *skipped) {
    const float h = 1e-2f;
    const double l0 = loss(net, n, out, r);
    for (int t = 0; t < 4; t++) {
        const size_t i = (size_t)uakd_rng_below(rng, (uint64_t)count);
        const float keep = v[i];
        v[i] = keep + h;
        const double lp = loss(net, n, out, r);
        v[i] = keep - h;
        const double lm = loss(net, n, out, r);
        v[i] = keep;
        const double fd = (lp - lm) / (2 * h), scale = fmax(1.0, fabs(fd));
        if (fabs((lp - l0) / h - (l0 - lm) / h) > 10 * tol * scale) {
            (*skipped)++;
            continue;
        }
        (*checked)++;
        CHECK_MSG(fabs(fd - g[i]) <= tol * scale, "%s[%zu]: finite difference %.6g, analytic %.6g", label, i, fd, g[i]);
    }
}

/* Runs one case: net built for training with inputs already filled; `out` the layer checked. */
static case_result run_case(const char *name, uakd_net *net, int n, int out, double tol, uint64_t seed) {
    case_result res;
    uakd_rng rng;
    uakd_rng_seed(&rng, seed);
    const size_t ny = (size_t)n * uakd_net_shape(net, out, NULL, NULL, NULL);
    float *r = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < ny; i++) r[i] = (float)uakd_rng_normal(&rng);
    /* analytic gradients */
    uakd_net_zero_grad(net);
    CHECK_OK(uakd_net_forward(net, n, 1));
    memcpy(uakd_net_grad(net, out), r, sizeof(float) * ny);
    CHECK_OK(uakd_net_backward(net, 1, &out));
    res.ny = ny;
    res.y = malloc(sizeof(float) * ny);
    memcpy(res.y, uakd_net_out(net, out), sizeof(float) * ny);
    int64_t np;
    float *pg = uakd_net_grads(net, &np);
    size_t ng = (size_t)np;
    for (int i = 0; i < uakd_net_num_layers(net); i++)
        if (uakd_net_layer(net, i).kind == UAKD_LAYER_INPUT) ng += (size_t)n * uakd_net_shape(net, i, NULL, NULL, NULL);
    res.grads = malloc(sizeof(float) * (ng ? ng : 1));
    res.ngrads = ng;
    memcpy(res.grads, pg, sizeof(float) * (size_t)np);
    size_t at = (size_t)np;
    int checked = 0, skipped = 0;
    char label[160];
    for (int i = 0; i < uakd_net_num_layers(net); i++) {
        uakd_layer_info f = uakd_net_layer(net, i);
        if (f.kind != UAKD_LAYER_INPUT) continue;
        const size_t cnt = (size_t)n * uakd_net_shape(net, i, NULL, NULL, NULL);
        memcpy(res.grads + at, uakd_net_grad(net, i), sizeof(float) * cnt);
        snprintf(label, sizeof label, "%s/%s d%s", name, backend_label[uakd_get_backend()], f.name);
        fd_check(label, net, n, out, r, uakd_net_out(net, i), res.grads + at, (int64_t)cnt, tol, &rng, &checked,
                 &skipped);
        at += cnt;
    }
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        if (p->flags & UAKD_PARAM_BUFFER) continue;
        snprintf(label, sizeof label, "%s/%s d%s", name, backend_label[uakd_get_backend()], p->name);
        fd_check(label, net, n, out, r, p->data, res.grads + p->offset, p->count, tol, &rng, &checked, &skipped);
    }
    CHECK_MSG(skipped * 3 <= checked + skipped && checked > 0, "%s: %d of %d entries skipped as kinks", name, skipped,
              checked + skipped);
    free(r);
    return res;
}

/* Fills inputs (normal; layers named "pts*" uniform over [-1.5, extent + 0.5]) and parameters
 * (normal; buffers uniform in [0.5, 1.5]) from seed. */
static void fill(uakd_net *net, int n, uint64_t seed, float extent) {
    uakd_rng rng;
    uakd_rng_seed(&rng, seed);
    for (int i = 0; i < uakd_net_num_layers(net); i++) {
        uakd_layer_info f = uakd_net_layer(net, i);
        if (f.kind != UAKD_LAYER_INPUT) continue;
        float *x = uakd_net_out(net, i);
        const int pts = !strncmp(f.name, "pts", 3);
        for (size_t k = 0; k < (size_t)n * uakd_net_shape(net, i, NULL, NULL, NULL); k++)
            x[k] = pts ? (float)uakd_rng_range(&rng, -1.5, extent + 0.5) : (float)uakd_rng_normal(&rng);
    }
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        for (int64_t k = 0; k < p->count; k++)
            p->data[k] = (p->flags & UAKD_PARAM_BUFFER) ? (float)uakd_rng_range(&rng, 0.5, 1.5)
                                                         : (float)(0.5 * uakd_rng_normal(&rng) + 0.5);
    }
}

typedef int (*build_fn)(uakd_net *net, const int *dims);

/* Runs a case on both backends (same data) and compares them. */
static void harness(const char *name, build_fn build, const int *dims, int n, double tol) {
    case_result res[2];
    for (int b = 0; b < 2; b++) {
        uakd_set_backend(b ? UAKD_BACKEND_FAST : UAKD_BACKEND_REF);
        uakd_net *net = NULL;
        CHECK_OK(uakd_net_new(n, &net));
        int out = build(net, dims);
        CHECK_OK(uakd_net_build(net, 1));
        if (out < 0 || !uakd_net_out(net, 0)) {
            uakd_net_free(net);
            CHECK_MSG(0, "%s: build failed: %s", name, uakd_last_error());
            return;
        }
        int c, h, w;
        uakd_net_shape(net, 0, &c, &h, &w);
        fill(net, n, 17, (float)w);
        res[b] = run_case(name, net, n, out, tol, 99);
        uakd_net_free(net);
    }
    double e = 0;
    for (size_t i = 0; i < res[0].ny; i++) e = fmax(e, fabs(res[0].y[i] - res[1].y[i]) / fmax(1.0, fabs(res[0].y[i])));
    CHECK_MSG(e <= 1e-4, "%s: fast vs ref output differs by %g", name, e);
    e = 0;
    for (size_t i = 0; i < res[0].ngrads; i++)
        e = fmax(e, fabs(res[0].grads[i] - res[1].grads[i]) / fmax(1.0, fabs(res[0].grads[i])));
    CHECK_MSG(e <= 1e-4, "%s: fast vs ref gradients differ by %g", name, e);
    for (int b = 0; b < 2; b++) free(res[b].y), free(res[b].grads);
}

/* dims: c, h, w, then op-specific values */
static int in_x(uakd_net *net, const int *d) { return uakd_net_input(net, "x", d[0], d[1], d[2], 1); }

static int b_conv(uakd_net *net, const int *d) {
    return uakd_net_conv(net, "conv", in_x(net, d), d[3], d[4], d[5], d[6], d[7], d[8]);
}
static int b_bn(uakd_net *net, const int *d) { return uakd_net_batchnorm(net, "bn", in_x(net, d)); }
static int b_gn(uakd_net *net, const int *d) { return uakd_net_groupnorm(net, "gn", in_x(net, d), d[3]); }
static int b_act(uakd_net *net, const int *d) { return uakd_net_act(net, "act", in_x(net, d), (uakd_act)d[3], 0.1f); }
static int b_pool(uakd_net *net, const int *d) { return uakd_net_maxpool(net, "pool", in_x(net, d), d[3], d[4], d[5]); }
static int b_up(uakd_net *net, const int *d) { return uakd_net_upsample2(net, "up", in_x(net, d)); }
static int b_add(uakd_net *net, const int *d) {
    int a = in_x(net, d), b = uakd_net_input(net, "y", d[0], d[1], d[2], 1);
    return uakd_net_add(net, "add", a, b);
}
static int b_concat(uakd_net *net, const int *d) {
    int ids[3] = {in_x(net, d), uakd_net_input(net, "y", d[3], d[1], d[2], 1),
                  uakd_net_input(net, "z", d[4], d[1], d[2], 1)};
    return uakd_net_concat(net, "cat", 3, ids);
}
static int b_gap(uakd_net *net, const int *d) { return uakd_net_gap(net, "gap", in_x(net, d)); }
static int b_cmul(uakd_net *net, const int *d) {
    int x = in_x(net, d), s = uakd_net_input(net, "s", d[0], 1, 1, 1);
    return uakd_net_cmul(net, "cmul", x, s);
}
/* squeeze-and-excitation as the later networks use it: x * sigmoid(conv(silu(conv(gap(x))))) */
static int b_se(uakd_net *net, const int *d) {
    int x = in_x(net, d);
    int s = uakd_net_gap(net, "gap", x);
    s = uakd_net_conv(net, "se.reduce", s, 2, 1, 1, 0, 1, 1);
    s = uakd_net_act(net, "se.silu", s, UAKD_ACT_SILU, 0);
    s = uakd_net_conv(net, "se.expand", s, d[0], 1, 1, 0, 1, 1);
    s = uakd_net_act(net, "se.gate", s, UAKD_ACT_SIGMOID, 0);
    return uakd_net_cmul(net, "se.mul", x, s);
}
static int b_sample(uakd_net *net, const int *d) {
    int x = in_x(net, d), p = uakd_net_input(net, "pts", 1, d[3], 2, 1);
    return uakd_net_sample(net, "sample", x, p, d[3]);
}
static int b_scale(uakd_net *net, const int *d) { return uakd_net_scale(net, "scale", in_x(net, d)); }
/* d[3] inputs of the same shape, fused with normalised ReLU weights */
static int b_fuse(uakd_net *net, const int *d) {
    int ids[3] = {in_x(net, d), uakd_net_input(net, "y", d[0], d[1], d[2], 1), uakd_net_input(net, "z", d[0], d[1], d[2], 1)};
    return uakd_net_fuse(net, "fuse", d[3], ids);
}

static void test_conv_cases(void) {
    /* c, h, w, c_out, k, stride, pad, groups, bias */
    static const int cases[][9] = {{3, 7, 6, 4, 3, 1, 1, 1, 0}, {4, 8, 8, 6, 3, 2, 1, 1, 1}, {6, 5, 6, 6, 3, 1, 1, 6, 1},
                                   {4, 6, 6, 8, 1, 1, 0, 2, 0}, {8, 4, 4, 16, 1, 1, 0, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) harness("conv", b_conv, cases[i], 2, 1e-2);
}

static void test_norm_cases(void) {
    static const int bn[][3] = {{3, 4, 5}, {8, 3, 3}, {2, 5, 5}};
    for (int i = 0; i < 3; i++) harness("batchnorm", b_bn, bn[i], i == 2 ? 1 : 2, 1e-2);
    static const int gn[][4] = {{8, 3, 3, 4}, {6, 4, 4, 2}, {4, 3, 2, 1}, {4, 3, 3, 4}};
    for (int i = 0; i < 4; i++) harness("groupnorm", b_gn, gn[i], 2, 1e-2);
}

static void test_activation_cases(void) {
    for (int k = UAKD_ACT_RELU; k <= UAKD_ACT_SIGMOID; k++) {
        const int d[][4] = {{3, 4, 4, k}, {2, 1, 7, k}};
        for (int i = 0; i < 2; i++) harness("act", b_act, d[i], 2, 1e-2);
    }
}

static void test_resample_cases(void) {
    static const int pool[][6] = {{3, 6, 6, 2, 2, 0}, {2, 7, 7, 3, 2, 1}, {3, 5, 5, 2, 2, 0}, {2, 8, 6, 3, 2, 1}};
    for (int i = 0; i < 4; i++) harness("maxpool", b_pool, pool[i], 2, 1e-2);
    static const int up[][3] = {{3, 3, 4}, {1, 1, 1}};
    for (int i = 0; i < 2; i++) harness("upsample2", b_up, up[i], 2, 1e-2);
    static const int gap[][3] = {{4, 3, 5}, {2, 1, 1}};
    for (int i = 0; i < 2; i++) harness("gap", b_gap, gap[i], 2, 1e-2);
}

static void test_join_cases(void) {
    static const int add[][3] = {{3, 4, 4}, {1, 2, 3}};
    for (int i = 0; i < 2; i++) harness("add", b_add, add[i], 2, 1e-2);
    static const int cat[][5] = {{2, 3, 4, 1, 3}, {1, 2, 2, 4, 2}};
    for (int i = 0; i < 2; i++) harness("concat", b_concat, cat[i], 2, 1e-2);
    static const int cm[][3] = {{3, 4, 4}, {5, 2, 3}};
    for (int i = 0; i < 2; i++) harness("cmul", b_cmul, cm[i], 2, 1e-2);
    static const int se[3] = {4, 3, 3};
    harness("squeeze-excite", b_se, se, 2, 1e-2);
    static const int sc[3] = {3, 2, 2};
    harness("scale", b_scale, sc, 2, 1e-2);
    static const int fu[][4] = {{3, 2, 2, 2}, {2, 3, 4, 3}};
    for (int i = 0; i < 2; i++) harness("fuse", b_fuse, fu[i], 2, 1e-2);
}

static void test_sample_cases(void) {
    /* c, h, w, points */
    static const int s[][4] = {{3, 5, 6, 7}, {2, 4, 4, 12}, {1, 2, 3, 5}};
    for (int i = 0; i < 3; i++) harness("sample", b_sample, s[i], 2, 1e-2);
}

/* Running statistics after one training forward: mean and unbiased variance, momentum 0.1;
 * then an inference forward uses them. x over 2 images x 1 channel x 2 pixels = {1, 2, 3, 6}. */
static void test_batchnorm_running_stats(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(2, &net));
    int x = uakd_net_input(net, "x", 1, 1, 2, 0), bn = uakd_net_batchnorm(net, "bn", x);
    CHECK_OK(uakd_net_build(net, 1));
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    CHECK_OK(uakd_net_init(net, &rng));
    const float in[4] = {1, 2, 3, 6};
    memcpy(uakd_net_out(net, x), in, sizeof in);
    CHECK_OK(uakd_net_forward(net, 2, 1));
    /* mean 3, biased var 3.5, unbiased 14/3 */
    CHECK_NEAR(uakd_net_param_find(net, "bn.running_mean")->data[0], 0.3, 1e-6);
    CHECK_NEAR(uakd_net_param_find(net, "bn.running_var")->data[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-6);
    CHECK_NEAR(uakd_net_out(net, bn)[3], 3.0 / sqrt(3.5 + 1e-5), 1e-5);
    CHECK_OK(uakd_net_forward(net, 2, 0));
    const double rv = 0.9 + 0.1 * 14.0 / 3.0;
    CHECK_NEAR(uakd_net_out(net, bn)[3], (6 - 0.3) / sqrt(rv + 1e-5), 1e-5);
    uakd_net_free(net);
}

/* Batch statistics of data far from zero (1e4 + N(0,1)): the one-pass shifted sums agree with a
 * two-pass computation. */
static void test_batchnorm_offset_data(void) {
    enum { M = 2000 };
    static float x[M], y[M];
    uakd_rng rng;
    uakd_rng_seed(&rng, 8);
    for (int i = 0; i < M; i++) x[i] = (float)(1e4 + uakd_rng_normal(&rng));
    double mean = 0, var = 0;
    for (int i = 0; i < M; i++) mean += x[i];
    mean /= M;
    for (int i = 0; i < M; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= M;
    const float one = 1, zero = 0;
    float rm = 0, rv = 1, sm, si;
    uakd_bn_forward_train(2, 1, M / 2, x, &one, &zero, 1e-5f, 0.1f, &rm, &rv, y, &sm, &si);
    CHECK_NEAR(sm, mean, 1e-3);
    CHECK_NEAR(1.0 / ((double)si * si) - 1e-5, var, 1e-4 * var);
    CHECK_NEAR(y[7], (x[7] - mean) / sqrt(var + 1e-5), 1e-3);
}

/* Ties: a 2x2 window of equal values gives the whole gradient to its first (top-left) entry. */
static void test_maxpool_ties(void) {
    const float x[16] = {1, 1, 0, 5, 1, 1, 5, 5, 2, 0, 3, 3, 0, 2, 3, 3};
    float y[4], dx[16], dy[4] = {1, 2, 3, 4};
    int32_t arg[4];
    uakd_pool_desc d = {1, 1, 4, 4, 2, 2, 0};
    uakd_maxpool_forward(&d, x, y, arg);
    CHECK(y[0] == 1 && y[1] == 5 && y[2] == 2 && y[3] == 3);
    uakd_maxpool_backward(&d, arg, dy, dx);
    CHECK(dx[0] == 1 && dx[1] == 0 && dx[4] == 0 && dx[5] == 0);
    CHECK(dx[3] == 2 && dx[6] == 0 && dx[7] == 0);
    CHECK(dx[8] == 3 && dx[13] == 0 && dx[10] == 4 && dx[11] == 0);
    /* padded 3x3/s2 on a constant map: each window's first in-image cell wins */
    const float ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    uakd_pool_desc d3 = {1, 1, 4, 4, 3, 2, 1};
    uakd_maxpool_forward(&d3, ones, y, arg);
    CHECK(arg[0] == 0 && arg[1] == 1 && arg[2] == 4 && arg[3] == 5);
    CHECK(y[0] == 1 && y[3] == 1);
}

/* Bilinear sampling by hand on a 2x3 map f = [[1,2,3],[4,5,6]]. */
static void test_sample_values(void) {
    const float f[6] = {1, 2, 3, 4, 5, 6};
    const float pts[8] = {0.5f, 0.5f, 2.0f, 1.0f, -0.5f, 0.0f, 2.5f, 1.5f};
    float out[4], dpts[8], dout[4] = {1, 1, 1, 1}, df[6];
    uakd_sample_forward(1, 1, 2, 3, 4, f, pts, out);
    CHECK_NEAR(out[0], 3.0, 1e-6);  /* mean of 1, 2, 4, 5 */
    CHECK_NEAR(out[1], 6.0, 1e-6);  /* exactly on the last cell */
    CHECK_NEAR(out[2], 0.5, 1e-6);  /* half of cell (0,0), half outside (zero) */
    CHECK_NEAR(out[3], 1.5, 1e-6);  /* a quarter of cell (1,2) = 6/4 */
    uakd_sample_backward(1, 1, 2, 3, 4, f, pts, dout, df, dpts);
    CHECK_NEAR(dpts[0], 1.0, 1e-6); /* d/dx = f(x+1) - f(x) = 1 */
    CHECK_NEAR(dpts[1], 3.0, 1e-6); /* d/dy = one row down = 3 */
    CHECK_NEAR(dpts[4], 1.0, 1e-6); /* from 0 outside to 1 */
    CHECK_NEAR(df[0], 0.25 + 0.5, 1e-6);
    CHECK_NEAR(df[5], 1.0 + 0.25, 1e-6); /* on-cell point plus a quarter */
    CHECK_NEAR(df[2], 0.0, 1e-6);
}

/* The join rule: y = a + relu(a) and a seeded intermediate: da = dy + dy * [a > 0] + seed. */
static void test_gradient_join(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(1, &net));
    int a = uakd_net_input(net, "a", 1, 1, 4, 1);
    int s = uakd_net_scale(net, "s", a);
    int r = uakd_net_act(net, "r", s, UAKD_ACT_RELU, 0);
    int y = uakd_net_add(net, "y", s, r);
    CHECK_OK(uakd_net_build(net, 1));
    uakd_net_param_find(net, "s")->data[0] = 2.0f;
    const float in[4] = {-1, 2, -3, 4};
    memcpy(uakd_net_out(net, a), in, sizeof in);
    CHECK_OK(uakd_net_forward(net, 1, 1));
    uakd_net_zero_grad(net);
    for (int i = 0; i < 4; i++) uakd_net_grad(net, y)[i] = 1, uakd_net_grad(net, s)[i] = 10;
    int ids[2] = {y, s};
    CHECK_OK(uakd_net_backward(net, 2, ids));
    for (int i = 0; i < 4; i++) {
        const double ds = 10 + 1 + (in[i] > 0);
        CHECK_NEAR(uakd_net_grad(net, a)[i], 2 * ds, 1e-6);
    }
    /* ds/dscale = sum ds * a */
    double want = 0;
    for (int i = 0; i < 4; i++) want += (10 + 1 + (in[i] > 0)) * in[i];
    CHECK_NEAR(uakd_net_param_find(net, "s")->grad[0], want, 1e-5);
    uakd_net_free(net);
}

/* Fast normalised fusion by hand: p = (1, 3, -2) (the negative weight is cut to 0). */
static void test_fuse_values(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(1, &net));
    int ids[3] = {uakd_net_input(net, "a", 1, 1, 1, 0), uakd_net_input(net, "b", 1, 1, 1, 0),
                  uakd_net_input(net, "c", 1, 1, 1, 0)};
    int y = uakd_net_fuse(net, "w", 3, ids);
    CHECK_OK(uakd_net_build(net, 1));
    if (y < 0) {
        uakd_net_free(net);
        return;
    }
    float *p = uakd_net_param_find(net, "w")->data;
    p[0] = 1, p[1] = 3, p[2] = -2;
    uakd_net_out(net, 0)[0] = 2, uakd_net_out(net, 1)[0] = 4, uakd_net_out(net, 2)[0] = 100;
    CHECK_OK(uakd_net_forward(net, 1, 1));
    CHECK_NEAR(uakd_net_out(net, y)[0], (1 * 2 + 3 * 4) / (4 + 1e-4), 1e-6);
    uakd_net_free(net);
}

/* Results do not depend on the thread count: every non-conv op with 1 and 2 threads, bitwise. */
static void test_thread_invariance(void) {
    float *res[2] = {NULL, NULL};
    int64_t np = 0;
    size_t nx = 0;
    uakd_set_backend(UAKD_BACKEND_REF);
    for (int t = 0; t < 2; t++) {
        uakd_set_num_threads(t + 1);
        uakd_net *net = NULL;
        CHECK_OK(uakd_net_new(3, &net));
        int x = uakd_net_input(net, "x", 8, 48, 48, 1), p = uakd_net_input(net, "pts", 1, 200, 2, 1);
        int a = uakd_net_act(net, "a", uakd_net_batchnorm(net, "bn", x), UAKD_ACT_LEAKY, 0.1f);
        int g = uakd_net_act(net, "g", uakd_net_groupnorm(net, "gn", a, 4), UAKD_ACT_SILU, 0);
        int m = uakd_net_maxpool(net, "m", g, 3, 2, 1);
        int u = uakd_net_add(net, "u", uakd_net_upsample2(net, "up", m), a);
        const int fin[2] = {u, a};
        int f = uakd_net_fuse(net, "f", 2, fin);
        int s = uakd_net_act(net, "s", uakd_net_gap(net, "gap", f), UAKD_ACT_SIGMOID, 0);
        int out = uakd_net_sample(net, "sample", uakd_net_cmul(net, "cm", f, s), p, 200);
        CHECK_OK(uakd_net_build(net, 1));
        if (out < 0 || !uakd_net_out(net, 0)) {
            uakd_net_free(net);
            break;
        }
        fill(net, 3, 5, 48.0f);
        CHECK_OK(uakd_net_forward(net, 3, 1));
        uakd_net_zero_grad(net);
        for (int i = 0; i < 3 * 8 * 200; i++) uakd_net_grad(net, out)[i] = uakd_net_out(net, out)[i];
        CHECK_OK(uakd_net_backward(net, 1, &out));
        uakd_net_grads(net, &np);
        nx = 3 * 8 * 48 * 48;
        res[t] = malloc(sizeof(float) * ((size_t)np + nx + 1200));
        memcpy(res[t], uakd_net_grads(net, NULL), sizeof(float) * np);
        memcpy(res[t] + np, uakd_net_grad(net, x), sizeof(float) * nx);
        memcpy(res[t] + np + nx, uakd_net_grad(net, p), sizeof(float) * 1200);
        uakd_net_free(net);
    }
    CHECK(res[0] && res[1] && !memcmp(res[0], res[1], sizeof(float) * ((size_t)np + nx + 1200)));
    free(res[0]), free(res[1]);
    uakd_set_num_threads(0);
}

int main(void) {
    RUN(test_conv_cases);
    RUN(test_norm_cases);
    RUN(test_activation_cases);
    RUN(test_resample_cases);
    RUN(test_join_cases);
    RUN(test_sample_cases);
    RUN(test_batchnorm_running_stats);
    RUN(test_batchnorm_offset_data);
    RUN(test_maxpool_ties);
    RUN(test_sample_values);
    RUN(test_gradient_join);
    RUN(test_thread_invariance);
    RUN(test_fuse_values);
    return TEST_END();
}
