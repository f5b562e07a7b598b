/* Tests of PFKD region sampling and loss and of the FKD baseline loss against PyTorch
 * (torch.nn.functional.grid_sample, autograd; fixtures by scripts/ref_pfkd.py), the pixel-centre
 * convention, and a finite-difference check of the FKD gradient with its mask held fixed. */
#include <cjson/cJSON.h>

#include "test.h"
#include "uakd/fileio.h"
#include "uakd/layers.h"
#include "uakd/pfkd.h"
#include "uakd/rng.h"
#include "uakd/status.h"

static cJSON *fixture(void) {
    void *data = NULL;
    size_t size = 0;
    if (uakd_read_file("tests/data/pfkd/cases.json", 1 << 22, &data, &size) != UAKD_OK) return NULL;
    char *s = realloc(data, size + 1);
    if (!s) return free(data), NULL;
    s[size] = 0;
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static float *floats(const cJSON *obj, const char *key, int *count) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    int n = cJSON_GetArraySize(arr), k = 0;
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) v[k++] = (float)it->valuedouble;
    if (count) *count = n;
    return v;
}

static int geti(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valueint; }

/* A point at a cell centre (col s + s/2) samples exactly that cell; the region centre is sample
 * (r-1)/2 of each axis; a point half a cell off interpolates two cells. */
static void test_convention(void) {
    float feat[12], pts[2 * 9], out[9];
    for (int i = 0; i < 12; i++) feat[i] = (float)(i * i);
    const float xy[2] = {2 * 8 + 4, 1 * 8 + 4}; /* centre of cell (2, 1) at stride 8, W = 4, H = 3 */
    CHECK_OK(uakd_pfkd_sample(feat, 1, 3, 4, 8, 3, 1, xy, pts, out));
    CHECK_NEAR(out[4], feat[1 * 4 + 2], 0);
    CHECK_NEAR(out[0], feat[0 * 4 + 1], 0); /* (-1, -1) neighbour */
    CHECK_NEAR(out[5], feat[1 * 4 + 3], 0); /* (+1, 0) */
    const float xy2[2] = {2 * 8 + 8, 1 * 8 + 4}; /* between cells (2, 1) and (3, 1) */
    CHECK_OK(uakd_pfkd_sample(feat, 1, 3, 4, 8, 3, 1, xy2, pts, out));
    CHECK_NEAR(out[4], 0.5 * (feat[6] + feat[7]), 1e-5);
    CHECK_NEAR(out[5], 0.5 * feat[7], 1e-5); /* half of its neighbours lie outside: zero */
    CHECK_FAILS(uakd_pfkd_sample(feat, 1, 3, 4, 0, 3, 1, xy2, pts, out), UAKD_EINVAL);
}

/* The region samplers equal the engine's sample kernel bit for bit (regions partly or wholly
 * outside the map included), in both map layouts, forward and backward; r = 9 spans two tap
 * chunks and C = 67 two channel blocks. */
static void test_engine_identity(void) {
    enum { C = 67, H = 6, W = 7, S = 8, R = 9, RR = R * R, N = 4 };
    static float feat[C * H * W], hwc[H * W * C], xy[2 * N], pts[2 * N * RR], out[C * N * RR], ref[C * N * RR],
        sm[N * RR * C], dout[C * N * RR], dsm[N * RR * C], df[C * H * W], df_ref[C * H * W], df_hwc[H * W * C];
    uakd_rng rng;
    uakd_rng_seed(&rng, 7);
    for (int i = 0; i < C * H * W; i++) feat[i] = (float)uakd_rng_normal(&rng);
    for (int c = 0; c < C; c++)
        for (int p = 0; p < H * W; p++) hwc[p * C + c] = feat[c * H * W + p];
    for (int i = 0; i < N; i++)
        xy[2 * i] = (float)uakd_rng_range(&rng, -60, 110), xy[2 * i + 1] = (float)uakd_rng_range(&rng, -60, 100);
    for (int i = 0; i < C * N * RR; i++) dout[i] = (float)uakd_rng_normal(&rng);
    CHECK_OK(uakd_pfkd_sample(feat, C, H, W, S, R, N, xy, pts, out));
    uakd_sample_forward(1, C, H, W, N * RR, feat, pts, ref);
    CHECK(!memcmp(out, ref, sizeof out));
    CHECK_OK(uakd_pfkd_sample_hwc(hwc, C, H, W, S, R, N, xy, sm));
    int same = 1;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < N * RR; p++) {
            same &= sm[p * C + c] == ref[c * N * RR + p];
            dsm[p * C + c] = dout[c * N * RR + p];
        }
    CHECK(same);
    CHECK_OK(uakd_pfkd_sample_backward(feat, C, H, W, S, R, N, xy, dout, pts, df));
    uakd_sample_backward(1, C, H, W, N * RR, feat, pts, dout, df_ref, NULL);
    CHECK(!memcmp(df, df_ref, sizeof df));
    CHECK_OK(uakd_pfkd_sample_hwc_backward(C, H, W, S, R, N, xy, dsm, df_hwc));
    same = 1;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < H * W; p++) same &= df_hwc[p * C + c] == df_ref[c * H * W + p];
    CHECK(same);
}

static void test_pfkd_torch(void) {
    cJSON *j = fixture();
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(j, "pfkd"), *cs_it;
    int ncase = 0;
    cJSON_ArrayForEach(cs_it, cs) {
        const int c = geti(cs_it, "c"), r = geti(cs_it, "r"), n = geti(cs_it, "n"), m = geti(cs_it, "m"), rr = r * r;
        const cJSON *S = cJSON_GetObjectItemCaseSensitive(cs_it, "student"),
                    *T = cJSON_GetObjectItemCaseSensitive(cs_it, "teacher");
        const int hs = geti(S, "h"), ws = geti(S, "w"), ss = geti(S, "stride");
        const int ht = geti(T, "h"), wt = geti(T, "w"), st = geti(T, "stride");
        float *fs = floats(S, "feat", NULL), *xs = floats(S, "xy", NULL), *ft = floats(T, "feat", NULL),
              *xt = floats(T, "xy", NULL), *plan = floats(cs_it, "plan", NULL), *rs_ref = floats(cs_it, "rs", NULL),
              *rt_ref = floats(cs_it, "rt", NULL), *g_ref = floats(cs_it, "grad_fs", NULL);
        const double loss_ref = cJSON_GetObjectItemCaseSensitive(cs_it, "loss")->valuedouble;
        float *pts = malloc(sizeof(float) * 2 * (size_t)rr * (n > m ? n : m));
        float *rs = malloc(sizeof(float) * (size_t)c * n * rr), *rt = malloc(sizeof(float) * (size_t)c * m * rr);
        float *grs = calloc((size_t)c * n * rr, sizeof(float)), *gfs = malloc(sizeof(float) * (size_t)c * hs * ws);
        CHECK_OK(uakd_pfkd_sample(fs, c, hs, ws, ss, r, n, xs, pts, rs));
        CHECK_OK(uakd_pfkd_sample(ft, c, ht, wt, st, r, m, xt, pts, rt));
        double e = 0;
        for (int i = 0; i < c * n * rr; i++) e = fmax(e, fabs(rs[i] - rs_ref[i]));
        for (int i = 0; i < c * m * rr; i++) e = fmax(e, fabs(rt[i] - rt_ref[i]));
        CHECK_MSG(e < 1e-5, "case %d: region max error %g", ncase, e);
        int so[8], to[8];
        for (int i = 0; i < 8; i++) so[i] = to[i] = i * rr;
        const double loss = uakd_pfkd_loss(n, m, c, rr, rs, n * rr, so, rt, m * rr, to, plan, 1.0, grs);
        CHECK_NEAR(loss, loss_ref, 1e-5 * fmax(1, fabs(loss_ref)));
        CHECK_OK(uakd_pfkd_sample_backward(fs, c, hs, ws, ss, r, n, xs, grs, pts, gfs));
        e = 0;
        for (int i = 0; i < c * hs * ws; i++) e = fmax(e, fabs(gfs[i] - g_ref[i]));
        CHECK_MSG(e < 1e-5, "case %d: gradient max error %g", ncase, e);
        free(fs), free(xs), free(ft), free(xt), free(plan), free(rs_ref), free(rt_ref), free(g_ref);
        free(pts), free(rs), free(rt), free(grs), free(gfs);
        ncase++;
    }
    CHECK(ncase == 3);
    cJSON_Delete(j);
}

static void test_fkd_torch(void) {
    cJSON *j = fixture();
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *it;
    int ncase = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "fkd")) {
        const int c = geti(it, "c"), h = geti(it, "h"), w = geti(it, "w");
        const double temp = cJSON_GetObjectItemCaseSensitive(it, "temp")->valuedouble;
        float *ft = floats(it, "ft", NULL), *fs = floats(it, "fs", NULL), *g_ref = floats(it, "grad_fs", NULL);
        float *g = calloc((size_t)c * h * w, sizeof(float));
        double *work = malloc(sizeof(double) * 2 * (size_t)(h * w + c)), loss = 0;
        CHECK_OK(uakd_fkd_loss(c, h, w, ft, fs, temp, 1.0, g, work, &loss));
        const double ref = cJSON_GetObjectItemCaseSensitive(it, "loss")->valuedouble;
        CHECK_NEAR(loss, ref, 1e-6 * fmax(1, ref));
        double e = 0;
        for (int i = 0; i < c * h * w; i++) e = fmax(e, fabs(g[i] - g_ref[i]));
        CHECK_MSG(e < 1e-6, "fkd case %d: gradient max error %g", ncase, e);
        free(ft), free(fs), free(g_ref), free(g), free(work);
        ncase++;
    }
    CHECK(ncase == 2);
    float f[4] = {1, 2, 3, 4};
    double work[16], loss;
    CHECK_FAILS(uakd_fkd_loss(1, 2, 2, f, f, 0, 1, NULL, work, &loss), UAKD_EINVAL);
    cJSON_Delete(j);
}

int main(void) {
    RUN(test_convention);
    RUN(test_engine_identity);
    RUN(test_pfkd_torch);
    RUN(test_fkd_torch);
    return TEST_END();
}
