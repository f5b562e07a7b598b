/* Convolution: the fast backend against the reference on several shapes (incl. stride, padding,
 * groups/depthwise), and the reference backward against finite differences of the forward. */
#include "test.h"
#include "uakd/backend.h"
#include "uakd/conv.h"
#include "uakd/rng.h"

static float *randn(uakd_rng *r, size_t n) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = (float)uakd_rng_normal(r);
    return p;
}

static const uakd_conv2d_desc shapes[] = {
    {2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1, 1},  {1, 4, 8, 8, 6, 3, 3, 2, 2, 1, 1, 1}, {2, 6, 5, 6, 6, 3, 3, 1, 1, 1, 1, 6},
    {1, 4, 6, 6, 8, 1, 1, 1, 1, 0, 0, 2},  {1, 5, 7, 7, 3, 5, 5, 2, 2, 2, 2, 1}, {2, 8, 4, 4, 16, 1, 1, 1, 1, 0, 0, 1},
};

static void max_diff(const float *a, const float *b, size_t n, double *out) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    *out = m;
}

static void test_fast_matches_reference(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 1);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uakd_conv2d_desc *d = &shapes[s];
        CHECK_OK(uakd_conv2d_check(d));
        size_t nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
        size_t nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
        size_t ny = (size_t)d->n * d->c_out * uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
        float *x = randn(&r, nx), *w = randn(&r, nw), *b = randn(&r, d->c_out), *dy = randn(&r, ny);
        float *y0 = calloc(ny, 4), *y1 = calloc(ny, 4), *dx0 = calloc(nx, 4), *dx1 = calloc(nx, 4);
        float *dw0 = calloc(nw, 4), *dw1 = calloc(nw, 4), *db0 = calloc(d->c_out, 4), *db1 = calloc(d->c_out, 4);
        uakd_set_backend(UAKD_BACKEND_REF);
        CHECK_OK(uakd_conv2d_forward(d, x, w, b, y0));
        CHECK_OK(uakd_conv2d_backward_data(d, dy, w, dx0));
        CHECK_OK(uakd_conv2d_backward_weights(d, x, dy, dw0, db0));
        uakd_set_backend(UAKD_BACKEND_FAST);
        CHECK_OK(uakd_conv2d_forward(d, x, w, b, y1));
        CHECK_OK(uakd_conv2d_backward_data(d, dy, w, dx1));
        CHECK_OK(uakd_conv2d_backward_weights(d, x, dy, dw1, db1));
        double e;
        max_diff(y0, y1, ny, &e);
        CHECK_MSG(e < 1e-4, "shape %zu forward max diff %g", s, e);
        max_diff(dx0, dx1, nx, &e);
        CHECK_MSG(e < 1e-4, "shape %zu backward-data max diff %g", s, e);
        max_diff(dw0, dw1, nw, &e);
        CHECK_MSG(e < 1e-3, "shape %zu backward-weights max diff %g", s, e);
        max_diff(db0, db1, d->c_out, &e);
        CHECK_MSG(e < 1e-3, "shape %zu bias grad max diff %g", s, e);
        free(x), free(w), free(b), free(dy), free(y0), free(y1), free(dx0), free(dx1);
        free(dw0), free(dw1), free(db0), free(db1);
    }
}

/* L = sum(y * dy); dL/dx and dL/dw by central differences (double-precision accumulation in the
 * reference keeps the float32 rounding of L small enough for a 1e-2 relative tolerance). */
static void test_reference_gradients(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const uakd_conv2d_desc *d = &shapes[s];
        size_t nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
        size_t nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
        size_t ny = (size_t)d->n * d->c_out * uakd_conv2d_out_h(d) * uakd_conv2d_out_w(d);
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
    RUN(test_reference_gradients);
    RUN(test_bad_descriptor);
    return TEST_END();
}
