/* Tests of PnP against OpenCV's answers (tests/data/pnp/cases.json and small.json, written by
 * scripts/ref_pnp.py) and on degenerate input.
 *
 * Tolerances: noise-free cases must give the truth to 1e-6 (rotation angle in radians, and
 * |t - t_true| / |t_true|). On noisy cases our solver minimises the same pixel reprojection error
 * as OpenCV's ITERATIVE, so on cases without outliers our RMSE may exceed the best OpenCV answer's
 * by at most 1e-6 px; pooled over the noisy cases of a camera (with or without outliers), our
 * mean rotation and translation errors may exceed the best OpenCV solver's by at most 5%. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/pnp.h"
#include "uakd/rng.h"

enum { MAXN = 200 };



typedef struct {
    uakd_camera cam;
    int n;
    double X[3 * MAXN], uv[2 * MAXN];
    unsigned char outlier[MAXN];
    uakd_pose truth;
} pnp_case;

static void load_case(const cJSON *c, pnp_case *pc) {
    double K[9];
    memset(pc, 0, sizeof *pc);
    test_json_flat(cJSON_GetObjectItem(c, "K"), K, 9);
    pc->cam = (uakd_camera){K[0], K[4], K[2], K[5], {0}};
    const cJSON *d = cJSON_GetObjectItem(c, "dist");
    if (d) test_json_flat(d, pc->cam.dist, 5);
    pc->n = test_json_flat(cJSON_GetObjectItem(c, "points3d"), pc->X, 3 * MAXN) / 3;
    CHECK(test_json_flat(cJSON_GetObjectItem(c, "points2d"), pc->uv, 2 * MAXN) == 2 * pc->n);
    test_json_flat(cJSON_GetObjectItem(c, "R_true"), pc->truth.R, 9);
    test_json_flat(cJSON_GetObjectItem(c, "t_true"), pc->truth.t, 3);
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(c, "outliers")) pc->outlier[o->valueint] = 1;
}

static double t_rel_err(const uakd_pose *p, const uakd_pose *truth) {
    double e = 0, n = 0;
    for (int i = 0; i < 3; i++) {
        e += (p->t[i] - truth->t[i]) * (p->t[i] - truth->t[i]);
        n += truth->t[i] * truth->t[i];
    }
    return sqrt(e / n);
}

/* RMSE over the true inliers; INFINITY when a point is behind the camera. */
static double inlier_rmse(const pnp_case *pc, const uakd_pose *p) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < pc->n; i++) {
        if (pc->outlier[i]) continue;
        double uv[2];
        if (!uakd_camera_project(&pc->cam, p, pc->X + 3 * i, uv)) return INFINITY;
        s += pow(uv[0] - pc->uv[2 * i], 2) + pow(uv[1] - pc->uv[2 * i + 1], 2);
        k++;
    }
    return sqrt(s / k);
}

static int opencv_pose(const cJSON *ans, uakd_pose *p) {
    if (!cJSON_IsTrue(cJSON_GetObjectItem(ans, "ok"))) return 0;
    test_json_flat(cJSON_GetObjectItem(ans, "R"), p->R, 9);
    test_json_flat(cJSON_GetObjectItem(ans, "t"), p->t, 3);
    return 1;
}

static uakd_status solve_case(const pnp_case *pc, int with_ransac, uakd_pnp_result *r, unsigned char *inl) {
    if (!with_ransac) {
        memset(inl, 1, (size_t)pc->n);
        return uakd_pnp_solve(&pc->cam, pc->n, pc->X, pc->uv, NULL, NULL, r);
    }
    uakd_ransac_options ro;
    uakd_ransac_default_options(&ro);
    ro.seed = 1;
    return uakd_pnp_ransac(&pc->cam, pc->n, pc->X, pc->uv, NULL, &ro, NULL, r, inl);
}

static void test_reference_cases(void) {
    cJSON *j = test_read_json("tests/data/pnp/cases.json");
    CHECK(j != NULL);
    if (!j) return;
    static const char *solvers[3] = {"epnp", "iterative", "ransac"};
    /* noisy cases pooled per [camera][with outliers]: sums of rotation and translation errors */
    double ours_r[2][2] = {{0}}, ours_t[2][2] = {{0}}, cv_r[2][2][3] = {{{0}}}, cv_t[2][2][3] = {{{0}}};
    int members[2][2] = {{0}}, cv_ok[2][2][3] = {{{0}}}, ncases = 0, exact = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        static pnp_case pc;
        load_case(c, &pc);
        int cam = !strcmp(cJSON_GetObjectItem(c, "camera")->valuestring, "speedplus");
        int has_outliers = cJSON_GetArraySize(cJSON_GetObjectItem(c, "outliers")) > 0;
        double noise = cJSON_GetObjectItem(c, "noise_px")->valuedouble;
        uakd_pnp_result r;
        unsigned char inl[MAXN];
        uakd_status st = solve_case(&pc, has_outliers, &r, inl);
        CHECK_MSG(st == UAKD_OK, "%s: %s", name, uakd_last_error());
        if (st != UAKD_OK) continue;
        ncases++;
        double er = uakd_rot_distance(r.pose.R, pc.truth.R), et = t_rel_err(&r.pose, &pc.truth);
        if (noise == 0) {
            CHECK_MSG(er < 1e-6 && et < 1e-6, "%s: noise-free error %.3g rad, %.3g relative", name, er, et);
            exact++;
        }
        if (has_outliers) {
            /* outliers are >= 30 px off: never inliers. An inlier is lost only when noise pushed it
             * beyond the 8 px threshold: its residual under the true pose must exceed 5 px. */
            int taken = 0, lost_wrongly = 0;
            for (int i = 0; i < pc.n; i++) {
                taken += inl[i] && pc.outlier[i];
                if (!inl[i] && !pc.outlier[i]) {
                    double uv[2];
                    uakd_camera_project(&pc.cam, &pc.truth, pc.X + 3 * i, uv);
                    lost_wrongly += hypot(uv[0] - pc.uv[2 * i], uv[1] - pc.uv[2 * i + 1]) < 5;
                }
            }
            CHECK_MSG(taken == 0 && lost_wrongly == 0, "%s: %d outliers taken, %d good inliers lost", name, taken,
                      lost_wrongly);
        }
        double best_rmse = INFINITY;
        for (int s = 0; s < 3; s++) {
            uakd_pose p;
            if (has_outliers && s != 2) continue; /* all-point solvers are not meant for outliers */
            if (!opencv_pose(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "opencv"), solvers[s]), &p)) continue;
            best_rmse = fmin(best_rmse, inlier_rmse(&pc, &p));
            if (noise == 0) continue;
            cv_ok[cam][has_outliers][s]++;
            cv_r[cam][has_outliers][s] += uakd_rot_distance(p.R, pc.truth.R);
            cv_t[cam][has_outliers][s] += t_rel_err(&p, &pc.truth);
        }
        /* without outliers, the same objective as ITERATIVE: never a worse minimum */
        if (!has_outliers)
            CHECK_MSG(r.rmse_px <= best_rmse + 1e-6, "%s: RMSE %.9g px vs OpenCV best %.9g", name, r.rmse_px, best_rmse);
        if (noise > 0) {
            members[cam][has_outliers]++;
            ours_r[cam][has_outliers] += er;
            ours_t[cam][has_outliers] += et;
        }
    }
    for (int cam = 0; cam < 2; cam++)
        for (int o = 0; o < 2; o++) {
            int m = members[cam][o];
            double best_r = INFINITY, best_t = INFINITY;
            for (int s = 0; s < 3; s++)
                if (cv_ok[cam][o][s] == m) { /* a solver that failed somewhere is not a candidate */
                    best_r = fmin(best_r, cv_r[cam][o][s] / m);
                    best_t = fmin(best_t, cv_t[cam][o][s] / m);
                }
            fprintf(stderr, "  %s%s: %d noisy cases, mean rotation error %.4g deg (OpenCV best %.4g), translation %.4g "
                            "(OpenCV best %.4g)\n", cam ? "speedplus" : "linemod", o ? " with outliers" : "", m,
                    ours_r[cam][o] / m * 180 / M_PI, best_r * 180 / M_PI, ours_t[cam][o] / m, best_t);
            CHECK(m == 18);
            CHECK(ours_r[cam][o] / m <= 1.05 * best_r + 1e-9);
            CHECK(ours_t[cam][o] / m <= 1.05 * best_t + 1e-9);
        }
    CHECK(ncases == 108 && exact == 36);
    cJSON_Delete(j);
}

/* 10 cm object at 0.5-1.5 m, 8 points, 1-3 px noise: OpenCV's ITERATIVE often returns a pose
 * behind the camera or turned by ~180 degrees as success. Ours (plain and RANSAC) returns a sound
 * pose (within 30 degrees, 50% depth, every point in front) or an error. */
static void test_small_objects_never_silent(void) {
    cJSON *j = test_read_json("tests/data/pnp/small.json");
    CHECK(j != NULL);
    if (!j) return;
    int cv_silent = 0, ours_silent = 0, ours_refused = 0, total = 0;
    double worst = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        static pnp_case pc;
        double K[9] = {572.4114, 0, 325.2611, 0, 573.57043, 242.04899, 0, 0, 1};
        load_case(c, &pc);
        pc.cam = (uakd_camera){K[0], K[4], K[2], K[5], {0}};
        total++;
        uakd_pose p;
        if (opencv_pose(cJSON_GetObjectItem(c, "opencv_iterative"), &p))
            cv_silent += uakd_rot_distance(p.R, pc.truth.R) > M_PI / 6 || !isfinite(inlier_rmse(&pc, &p));
        for (int with_ransac = 0; with_ransac < 2; with_ransac++) {
            uakd_pnp_result r;
            unsigned char inl[8];
            if (solve_case(&pc, with_ransac, &r, inl) != UAKD_OK) {
                ours_refused++;
                continue;
            }
            double e = uakd_rot_distance(r.pose.R, pc.truth.R);
            worst = fmax(worst, e);
            ours_silent += e > M_PI / 6 || !isfinite(inlier_rmse(&pc, &r.pose)) || t_rel_err(&r.pose, &pc.truth) > 0.5;
        }
    }
    fprintf(stderr, "  small objects: OpenCV ITERATIVE silent failures %d/%d; ours (solve and RANSAC) %d silent, %d "
                    "refused, worst "
"rotation error %.1f deg\n", cv_silent, total, ours_silent, ours_refused, worst * 180 / M_PI);
    CHECK(total == 100);
    CHECK(cv_silent >= 10); /* the fixture does show OpenCV's failure mode (27 of 100 when written) */
    CHECK(ours_silent == 0);
    CHECK(ours_refused <= 10); /* of 200 solves */
    cJSON_Delete(j);
}

static uakd_camera linemod(void) { return (uakd_camera){572.4114, 573.57043, 325.2611, 242.04899, {0}}; }

/* n points in a 200 mm cube seen from 1 m; uv exact. */
static void make_scene(uakd_rng *g, int n, double *X, double *uv, uakd_pose *p) {
    uakd_camera cam = linemod();
    double rv[3] = {uakd_rng_normal(g), uakd_rng_normal(g), uakd_rng_normal(g)};
    uakd_rot_from_axis_angle(rv, p->R);
    p->t[0] = 30;
    p->t[1] = -20;
    p->t[2] = 1000;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) X[3 * i + k] = uakd_rng_range(g, -100, 100);
        uakd_camera_project(&cam, p, X + 3 * i, uv + 2 * i);
    }
}

static void test_degenerate_input(void) {
    uakd_camera cam = linemod();
    uakd_rng g;
    uakd_rng_seed(&g, 5);
    double X[3 * 20], uv[2 * 20], w[20];
    uakd_pose truth;
    uakd_pnp_result r;
    make_scene(&g, 20, X, uv, &truth);
    CHECK_OK(uakd_pnp_solve(&cam, 20, X, uv, NULL, NULL, &r));
    CHECK(uakd_rot_distance(r.pose.R, truth.R) < 1e-9);
    CHECK_FAILS(uakd_pnp_solve(&cam, 3, X, uv, NULL, NULL, &r), UAKD_EDEGENERATE); /* n < 4 */
    for (int i = 0; i < 20; i++) w[i] = i < 3;
    CHECK_FAILS(uakd_pnp_solve(&cam, 20, X, uv, w, NULL, &r), UAKD_EDEGENERATE); /* 3 non-zero weights */
    w[5] = -1;
    CHECK_FAILS(uakd_pnp_solve(&cam, 20, X, uv, w, NULL, &r), UAKD_EINVAL);
    double keep = uv[7];
    uv[7] = NAN;
    CHECK_FAILS(uakd_pnp_solve(&cam, 20, X, uv, NULL, NULL, &r), UAKD_EDEGENERATE);
    uv[7] = keep;
    keep = X[4];
    X[4] = INFINITY;
    CHECK_FAILS(uakd_pnp_solve(&cam, 20, X, uv, NULL, NULL, &r), UAKD_EDEGENERATE);
    X[4] = keep;
    /* collinear model points */
    double L[3 * 8], Luv[2 * 8];
    for (int i = 0; i < 8; i++) {
        for (int k = 0; k < 3; k++) L[3 * i + k] = (i - 3.5) * (k + 1) * 10;
        uakd_camera_project(&cam, &truth, L + 3 * i, Luv + 2 * i);
    }
    CHECK_FAILS(uakd_pnp_solve(&cam, 8, L, Luv, NULL, NULL, &r), UAKD_EDEGENERATE);
    CHECK(strstr(uakd_last_error(), "collinear") != NULL);
    /* all points in one spot */
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 3; k++) L[3 * i + k] = 5;
    CHECK_FAILS(uakd_pnp_solve(&cam, 8, L, Luv, NULL, NULL, &r), UAKD_EDEGENERATE);
    /* an object straddling the camera plane: half of the points are behind the camera, their
     * "images" are the pinhole formula x/z, y/z applied anyway; no pose explains them in front */
    uakd_pose straddle = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}};
    for (int i = 0; i < 20; i++) {
        double P[3];
        uakd_pose_apply(&straddle, X + 3 * i, P);
        if (fabs(P[2]) < 5) P[2] = 5 * (P[2] < 0 ? -1 : 1);
        uv[2 * i] = cam.fx * P[0] / P[2] + cam.cx;
        uv[2 * i + 1] = cam.fy * P[1] / P[2] + cam.cy;
    }
    CHECK_FAILS(uakd_pnp_solve(&cam, 20, X, uv, NULL, NULL, &r), UAKD_EDEGENERATE);
    /* RANSAC on pure noise finds no consensus; bad options are rejected */
    for (int i = 0; i < 40; i++) uv[i] = uakd_rng_range(&g, 0, 640);
    uakd_ransac_options ro;
    uakd_ransac_default_options(&ro);
    ro.threshold_px = 1;
    CHECK_FAILS(uakd_pnp_ransac(&cam, 20, X, uv, NULL, &ro, NULL, &r, NULL), UAKD_EDEGENERATE);
    ro.confidence = 1;
    CHECK_FAILS(uakd_pnp_ransac(&cam, 20, X, uv, NULL, &ro, NULL, &r, NULL), UAKD_EINVAL);
}

static void test_planar_and_minimal(void) {
    uakd_camera cam = linemod();
    uakd_rng g;
    uakd_rng_seed(&g, 11);
    for (int trial = 0; trial < 20; trial++) {
        double X[3 * 6], uv[2 * 6];
        uakd_pose truth;
        int n = trial % 2 ? 4 : 6;
        make_scene(&g, n, X, uv, &truth);
        if (trial % 4 < 2) { /* planar: z = 0.3 x - 0.2 y */
            for (int i = 0; i < n; i++) {
                X[3 * i + 2] = 0.3 * X[3 * i] - 0.2 * X[3 * i + 1];
                uakd_camera_project(&cam, &truth, X + 3 * i, uv + 2 * i);
            }
        }
        uakd_pnp_result r;
        CHECK_OK(uakd_pnp_solve(&cam, n, X, uv, NULL, NULL, &r));
        CHECK_MSG(uakd_rot_distance(r.pose.R, truth.R) < 1e-6 && t_rel_err(&r.pose, &truth) < 1e-6,
                  "trial %d n %d: rotation error %.3g", trial, n, uakd_rot_distance(r.pose.R, truth.R));
    }
}

static void test_weights_and_determinism(void) {
    uakd_camera cam = linemod();
    uakd_rng g;
    uakd_rng_seed(&g, 21);
    double X[3 * 30], uv[2 * 30], w[30];
    uakd_pose truth;
    make_scene(&g, 30, X, uv, &truth);
    uv[0] += 40; /* one gross error, weight 0 removes it exactly */
    for (int i = 0; i < 30; i++) w[i] = i ? 1 : 0;
    uakd_pnp_result a, b;
    CHECK_OK(uakd_pnp_solve(&cam, 30, X, uv, w, NULL, &a));
    CHECK(uakd_rot_distance(a.pose.R, truth.R) < 1e-9 && a.num_inliers == 29);
    CHECK_OK(uakd_pnp_solve(&cam, 30, X, uv, NULL, NULL, &b));
    CHECK(uakd_rot_distance(b.pose.R, truth.R) > 1e-4);
    /* a tiny weight makes the point almost irrelevant */
    w[0] = 1e-8;
    CHECK_OK(uakd_pnp_solve(&cam, 30, X, uv, w, NULL, &b));
    CHECK(uakd_rot_distance(b.pose.R, truth.R) < 1e-6);
    /* RANSAC: same seed, same answer; the gross error is the only outlier */
    for (int i = 3; i < 9; i++) uv[2 * i + 1] -= 60;
    uakd_ransac_options ro;
    uakd_ransac_default_options(&ro);
    ro.seed = 99;
    unsigned char ia[30], ib[30];
    CHECK_OK(uakd_pnp_ransac(&cam, 30, X, uv, NULL, &ro, NULL, &a, ia));
    CHECK_OK(uakd_pnp_ransac(&cam, 30, X, uv, NULL, &ro, NULL, &b, ib));
    CHECK(!memcmp(&a.pose, &b.pose, sizeof a.pose) && !memcmp(ia, ib, 30) && a.samples == b.samples);
    CHECK(a.num_inliers == 23 && ia[0] == 0 && ia[3] == 0 && ia[8] == 0 && ia[9] == 1);
    CHECK(uakd_rot_distance(a.pose.R, truth.R) < 1e-9 && a.rmse_px < 1e-6);
}

int main(void) {
    RUN(test_reference_cases);
    RUN(test_small_objects_never_silent);
    RUN(test_degenerate_input);
    RUN(test_planar_and_minimal);
    RUN(test_weights_and_determinism);
    return TEST_END();
}
