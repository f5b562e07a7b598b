/* Convolution: every fast implementation (the dispatch, im2col + OpenBLAS, the direct depthwise
 * kernel, oneDNN when built) against the reference on shapes covering stride, padding, groups and
 * depthwise, 1x1/3x3/5x5 and non-square kernels, odd sizes and a large batch; a hand-computed case;
 * the primitive cache across thread counts and release; the reference backward against finite
 * differences of the forward. */
#include "test.h"
#include "uakd/backend.h"
#include "uakd/conv.h"
#include "uakd/rng.h"

#include "../src/conv_fast.h" /* white-box: each fast implementation on its own */

static float *randn(uakd_rng *r, size_t n) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = (float)uakd_rng_normal(r);
    return p;
}

/* {n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w, groups} */
static const uakd_conv2d_desc shapes[] = {
    {2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1, 1},     /* 3x3, odd sizes, c_in = 3 like a stem */
    {1, 4, 8, 8, 6, 3, 3, 2, 2, 1, 1, 1},     /* 3x3 stride 2 */
    {2, 6, 5, 6, 6, 3, 3, 1, 1, 1, 1, 6},     /* depthwise 3x3 s1, small plane */
    {1, 4, 6, 6, 8, 1, 1, 1, 1, 0, 0, 2},     /* grouped 1x1 */
    {1, 5, 7, 7, 3, 5, 5, 2, 2, 2, 2, 1},     /* 5x5 stride 2 */
    {2, 8, 4, 4, 16, 1, 1, 1, 1, 0, 0, 1},    /* 1x1 (plain-layout GEMM path) */
    {3, 20, 9, 11, 20, 3, 3, 2, 2, 1, 1, 20}, /* depthwise 3x3 s2, odd sizes, 20 channels (not a block multiple) */
    {2, 24, 7, 9, 24, 5, 5, 1, 1, 2, 2, 24},  /* depthwise 5x5 (direct backward-weights) */
    {1, 3, 66, 67, 3, 3, 3, 1, 1, 1, 1, 3},   /* depthwise on a plane above 64x64 (direct kernel) */
    {1, 4, 67, 66, 4, 5, 5, 2, 2, 2, 2, 4},   /* depthwise 5x5 s2 on a large odd plane */
    {32, 4, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1},    /* large batch */
    {2, 7, 11, 13, 5, 3, 3, 2, 2, 1, 1, 1},   /* stride 2, odd sizes, odd channels */
    {1, 12, 6, 7, 18, 3, 3, 1, 1, 1, 1, 3},   /* grouped 3x3 (4 -> 6 channels per group) */
    {2, 17, 6, 5, 33, 1, 1, 2, 2, 0, 0, 1},   /* 1x1 stride 2 */
    {1, 16, 8, 8, 16, 3, 1, 1, 2, 1, 0, 1},   /* 3x1 kernel, unequal strides and pads */
    {1, 2, 3, 3, 4, 3, 3, 1, 1, 2, 2, 1},     /* padding larger than half the kernel */
    {1, 32, 10, 10, 64, 3, 3, 1, 1, 1, 1, 1}, /* wider channels (blocked layout with full blocks) */
};

static void sizes(const uakd_conv2d_desc *d, size_t *nx, size_t *nw, size_t *ny) {
    *nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    *nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
    *ny = (size_t)d->n * d->c_out * uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
}

/* max |a - b| relative to max(1, max |ref|): float sums in another order differ by ~1e-6 of the
 * magnitude of their terms; 1e-4 leaves room for sums of thousands of terms. */
static double rel_diff(const float *ref, const float *b, size_t n) {
    double m = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)ref[i] - b[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return isfinite(m) ? m / scale : INFINITY;
}

typedef uakd_status (*fwd_fn)(const uakd_conv2d_desc *, const float *, const float *, const float *, float *);
typedef uakd_status (*bwd_data_fn)(const uakd_conv2d_desc *, const float *, const float *, float *);
typedef uakd_status (*bwd_weights_fn)(const uakd_conv2d_desc *, const float *, const float *, float *, float *);

typedef struct impl {
    const char *name;
    fwd_fn fwd;
    bwd_data_fn bwd_data;
    bwd_weights_fn bwd_weights;
    int depthwise_only;
} impl;

static const impl impls[] = {
    {"dispatch", uakd_conv2d_forward, uakd_conv2d_backward_data, uakd_conv2d_backward_weights, 0},
    {"im2col", uakd_conv2d_forward_im2col, uakd_conv2d_backward_data_im2col, uakd_conv2d_backward_weights_im2col, 0},
    {"direct-dw", uakd_conv2d_forward_dw, uakd_conv2d_backward_data_dw, uakd_conv2d_backward_weights_dw, 1},
#ifdef UAKD_HAVE_DNNL
    {"onednn", uakd_conv2d_forward_dnnl, uakd_conv2d_backward_data_dnnl, uakd_conv2d_backward_weights_dnnl, 0},
#endif
};

/* Every fast implementation against the reference on every shape, with and without bias. Outputs
 * start as garbage (forward and backward-data must assign) and weight gradients start non-zero
 * (backward-weights must accumulate). Each shape runs twice to go through cached primitives. */
static void test_fast_matches_reference(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 1);
    uakd_set_backend(UAKD_BACKEND_FAST);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uakd_conv2d_desc *d = &shapes[s];
        CHECK_OK(uakd_conv2d_check(d));
        size_t nx, nw, ny;
        sizes(d, &nx, &nw, &ny);
        float *x = randn(&r, nx), *w = randn(&r, nw), *b = randn(&r, d->c_out), *dy = randn(&r, ny);
        float *dw_init = randn(&r, nw), *db_init = randn(&r, d->c_out);
        float *y0 = malloc(4 * ny), *dx0 = malloc(4 * nx), *dw0 = malloc(4 * nw), *db0 = malloc(4 * d->c_out);
        float *y1 = malloc(4 * ny), *dx1 = malloc(4 * nx), *dw1 = malloc(4 * nw), *db1 = malloc(4 * d->c_out);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *bb = with_bias ? b : NULL;
            float *dbb0 = with_bias ? db0 : NULL, *dbb1 = with_bias ? db1 : NULL;
            memcpy(dw0, dw_init, 4 * nw), memcpy(db0, db_init, 4 * d->c_out);
            uakd_conv2d_forward_ref(d, x, w, bb, y0);
            uakd_conv2d_backward_data_ref(d, dy, w, dx0);
            uakd_conv2d_backward_weights_ref(d, x, dy, dw0, dbb0);
            for (size_t k = 0; k < sizeof impls / sizeof impls[0]; k++) {
                const impl *m = &impls[k];
                if (m->depthwise_only && !uakd_conv2d_is_depthwise(d)) continue;
                for (int rep = 0; rep < 2; rep++) {
                    for (size_t i = 0; i < ny; i++) y1[i] = NAN;
                    for (size_t i = 0; i < nx; i++) dx1[i] = NAN;
                    memcpy(dw1, dw_init, 4 * nw), memcpy(db1, db_init, 4 * d->c_out);
                    CHECK_OK(m->fwd(d, x, w, bb, y1));
                    CHECK_OK(m->bwd_data(d, dy, w, dx1));
                    CHECK_OK(m->bwd_weights(d, x, dy, dw1, dbb1));
                    double e;
                    e = rel_diff(y0, y1, ny);
                    CHECK_MSG(e < 1e-4, "shape %zu %s bias %d: forward rel diff %g", s, m->name, with_bias, e);
                    e = rel_diff(dx0, dx1, nx);
                    CHECK_MSG(e < 1e-4, "shape %zu %s: backward-data rel diff %g", s, m->name, e);
                    e = rel_diff(dw0, dw1, nw);
                    CHECK_MSG(e < 1e-4, "shape %zu %s bias %d: backward-weights rel diff %g", s, m->name, with_bias, e);
                    e = rel_diff(with_bias ? db0 : db_init, db1, d->c_out);
                    CHECK_MSG(e < 1e-4, "shape %zu %s bias %d: bias grad rel diff %g", s, m->name, with_bias, e);
                }
            }
        }
        free(x), free(w), free(b), free(dy), free(dw_init), free(db_init);
        free(y0), free(y1), free(dx0), free(dx1), free(dw0), free(dw1), free(db0), free(db1);
    }
}

/* A 1x1 convolution by hand: y = w * x + b per pixel, and its gradients, on the fast backend. */
static void test_fast_hand_computed(void) {
    const uakd_conv2d_desc d = {1, 2, 1, 2, 1, 1, 1, 1, 1, 0, 0, 1};
    const float x[4] = {1, 2, 3, 4}; /* channel 0: (1, 2), channel 1: (3, 4) */
    const float w[2] = {10, 100}, b[1] = {0.5f}, dy[2] = {1, -1};
    float y[2], dx[4], dw[2] = {1, 1}, db[1] = {2};
    uakd_set_backend(UAKD_BACKEND_FAST);
    CHECK_OK(uakd_conv2d_forward(&d, x, w, b, y));
    CHECK_NEAR(y[0], 310.5, 1e-4);
    CHECK_NEAR(y[1], 420.5, 1e-4);
    CHECK_OK(uakd_conv2d_backward_data(&d, dy, w, dx));
    CHECK_NEAR(dx[0], 10, 1e-5);
    CHECK_NEAR(dx[1], -10, 1e-5);
    CHECK_NEAR(dx[2], 100, 1e-5);
    CHECK_NEAR(dx[3], -100, 1e-5);
    CHECK_OK(uakd_conv2d_backward_weights(&d, x, dy, dw, db));
    CHECK_NEAR(dw[0], 1 + (1 - 2), 1e-5); /* dw[c] += sum_j dy[j] * x[c, j] */
    CHECK_NEAR(dw[1], 1 + (3 - 4), 1e-5);
    CHECK_NEAR(db[0], 2 + (1 - 1), 1e-5);
}

/* The cache survives thread-count changes (one primitive per count) and an explicit release. */
static void test_threads_and_release(void) {
    const uakd_conv2d_desc d = {2, 16, 9, 9, 16, 3, 3, 1, 1, 1, 1, 1};
    uakd_rng r;
    uakd_rng_seed(&r, 3);
    size_t nx, nw, ny;
    sizes(&d, &nx, &nw, &ny);
    float *x = randn(&r, nx), *w = randn(&r, nw), *y0 = malloc(4 * ny), *y1 = malloc(4 * ny);
    uakd_conv2d_forward_ref(&d, x, w, NULL, y0);
    uakd_set_backend(UAKD_BACKEND_FAST);
    const int before = uakd_get_num_threads();
    for (int t = 1; t <= 2; t++) {
        uakd_set_num_threads(t);
        CHECK_OK(uakd_conv2d_forward(&d, x, w, NULL, y1));
        CHECK(rel_diff(y0, y1, ny) < 1e-4);
        uakd_backend_release();
        CHECK_OK(uakd_conv2d_forward(&d, x, w, NULL, y1));
        CHECK(rel_diff(y0, y1, ny) < 1e-4);
    }
    uakd_set_num_threads(before);
    free(x), free(w), free(y0), free(y1);
}

/* L = sum(y * dy); dL/dx and dL/dw by central differences (double-precision accumulation in the
 * reference keeps the float32 rounding of L small enough for a 1e-2 relative tolerance). */
static void test_reference_gradients(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uakd_conv2d_desc *d = &shapes[s];
        size_t nx, nw, ny;
        sizes(d, &nx, &nw, &ny);
        float *x = randn(&r, nx), *w = randn(&r, nw), *dy = randn(&r, ny), *y = calloc(ny, 4);
        float *dx = calloc(nx, 4), *dw = calloc(nw, 4);
        uakd_conv2d_backward_data_ref(d, dy, w, dx);
        uakd_conv2d_backward_weights_ref(d, x, dy, dw, NULL);
        const float h = 1e-2f;
        for (int t = 0; t < 5; t++) {
            float *v = t % 2 ? w : x, *g = t % 2 ? dw : dx;
            size_t i = uakd_rng_below(&r, t % 2 ? nw : nx);
            double lp = 0, lm = 0;
            float keep = v[i];
            v[i] = keep + h;
            uakd_conv2d_forward_ref(d, x, w, NULL, y);
            for (size_t k = 0; k < ny; k++) lp += (double)y[k] * dy[k];
            v[i] = keep - h;
            uakd_conv2d_forward_ref(d, x, w, NULL, y);
            for (size_t k = 0; k < ny; k++) lm += (double)y[k] * dy[k];
            v[i] = keep;
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(fabs(fd - g[i]) <= 1e-2 * fmax(1.0, fabs(fd)), "shape %zu %s[%zu]: fd %g analytic %g", s,
                      t % 2 ? "w" : "x", i, fd, g[i]);
        }
        free(x), free(w), free(dy), free(y), free(dx), free(dw);
    }
}

static void test_bad_descriptor(void) {
    uakd_conv2d_desc d = {1, 3, 4, 4, 4, 3, 3, 1, 1, 0, 0, 2};
    CHECK_FAILS(uakd_conv2d_check(&d), UAKD_EINVAL);
    uakd_conv2d_desc big = {1, 2, 2, 2, 2, 5, 5, 1, 1, 0, 0, 1};
    CHECK_FAILS(uakd_conv2d_check(&big), UAKD_EINVAL);
}

int main(void) {
    RUN(test_fast_matches_reference);
    RUN(test_fast_hand_computed);
    RUN(test_threads_and_release);
    RUN(test_reference_gradients);
    RUN(test_bad_descriptor);
    return TEST_END();
}
