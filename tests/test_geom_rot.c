/* Tests of axis-angle rotations, composition, angular distance and undistortion: hand cases and
 * OpenCV's answers (tests/data/pnp/geom_cv.json, written by scripts/ref_pnp.py). */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/geom.h"
#include "uakd/rng.h"



static void test_rodrigues_hand(void) {
    double r[3] = {0, 0, M_PI / 2}, R[9], v[3] = {1, 0, 0}, o[3];
    uakd_rot_from_axis_angle(r, R);
    uakd_mat3_vec(R, v, o); /* 90 degrees about z: x -> y */
    CHECK_NEAR(o[0], 0, 1e-15);
    CHECK_NEAR(o[1], 1, 1e-15);
    CHECK_NEAR(uakd_rot_angle(R), M_PI / 2, 1e-15);
    double back[3];
    uakd_rot_to_axis_angle(R, back);
    for (int i = 0; i < 3; i++) CHECK_NEAR(back[i], r[i], 1e-15);
    /* identity, and a 180-degree turn about x */
    double zero[3] = {0, 0, 0}, I[9];
    uakd_rot_from_axis_angle(zero, I);
    for (int i = 0; i < 9; i++) CHECK(I[i] == (i % 4 == 0));
    uakd_rot_to_axis_angle(I, back);
    CHECK(back[0] == 0 && back[1] == 0 && back[2] == 0);
    double Rx[9] = {1, 0, 0, 0, -1, 0, 0, 0, -1};
    uakd_rot_to_axis_angle(Rx, back);
    CHECK_NEAR(fabs(back[0]), M_PI, 1e-15);
    CHECK_NEAR(back[1], 0, 1e-15);
    /* distance: 30 degrees about y after anything */
    double a[3] = {0.3, -1.1, 0.7}, A[9], B[9], D[9], d[3] = {0, M_PI / 6, 0};
    uakd_rot_from_axis_angle(a, A);
    uakd_rot_from_axis_angle(d, D);
    uakd_mat3_mul(A, D, B);
    CHECK_NEAR(uakd_rot_distance(A, B), M_PI / 6, 1e-14);
    CHECK_NEAR(uakd_rot_distance(B, A), M_PI / 6, 1e-14);
    CHECK_NEAR(uakd_rot_distance(A, A), 0, 1e-15);
    /* a tiny angle keeps its precision (acos of the trace would lose it) */
    double tiny[3] = {1e-9, 0, 0};
    uakd_rot_from_axis_angle(tiny, D);
    uakd_mat3_mul(A, D, B);
    CHECK_NEAR(uakd_rot_distance(A, B), 1e-9, 1e-15);
}

static void test_compose_inverse(void) {
    uakd_rng g;
    uakd_rng_seed(&g, 3);
    for (int k = 0; k < 100; k++) {
        double ra[3], rb[3];
        uakd_pose a, b, ab, ai, id;
        for (int i = 0; i < 3; i++) {
            ra[i] = uakd_rng_normal(&g);
            rb[i] = uakd_rng_normal(&g);
            a.t[i] = uakd_rng_normal(&g);
            b.t[i] = uakd_rng_normal(&g);
        }
        uakd_rot_from_axis_angle(ra, a.R);
        uakd_rot_from_axis_angle(rb, b.R);
        uakd_pose_compose(&a, &b, &ab);
        double X[3] = {0.5, -2, 1}, y1[3], y2[3];
        uakd_pose_apply(&b, X, y1);
        uakd_pose_apply(&a, y1, y2);
        uakd_pose_apply(&ab, X, y1);
        for (int i = 0; i < 3; i++) CHECK_NEAR(y1[i], y2[i], 1e-13);
        uakd_pose_inverse(&a, &ai);
        uakd_pose_compose(&ai, &a, &id);
        for (int i = 0; i < 9; i++) CHECK_NEAR(id.R[i], i % 4 == 0, 1e-14);
        for (int i = 0; i < 3; i++) CHECK_NEAR(id.t[i], 0, 1e-14);
        /* round trip through axis-angle */
        double r2[3], R2[9];
        uakd_rot_to_axis_angle(a.R, r2);
        uakd_rot_from_axis_angle(r2, R2);
        CHECK_NEAR(uakd_rot_distance(a.R, R2), 0, 1e-14);
    }
}

static void test_opencv_fixtures(void) {
    cJSON *j = test_read_json("tests/data/pnp/geom_cv.json");
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *e;
    int count = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "rodrigues")) {
        double r[3], Rcv[9], R[9], back[3];
        CHECK(test_json_flat(cJSON_GetObjectItem(e, "rvec"), r, 3) == 3);
        CHECK(test_json_flat(cJSON_GetObjectItem(e, "R"), Rcv, 9) == 9);
        uakd_rot_from_axis_angle(r, R);
        for (int i = 0; i < 9; i++) CHECK_NEAR(R[i], Rcv[i], 1e-9); /* fixture has 10 digits */
        uakd_rot_to_axis_angle(R, back);
        double th = sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
        if (th < M_PI - 1e-3) {
            for (int i = 0; i < 3; i++) CHECK_NEAR(back[i], r[i], 1e-12 * (1 + th));
        } else { /* near pi the axis sign is free: compare the rotations */
            uakd_rot_from_axis_angle(back, Rcv);
            CHECK_NEAR(uakd_rot_distance(R, Rcv), 0, 1e-12);
        }
        count++;
    }
    CHECK(count == 16);

    const cJSON *pr = cJSON_GetObjectItem(j, "project");
    double K[9], X[60], uvcv[40];
    uakd_camera cam;
    uakd_pose p;
    test_json_flat(cJSON_GetObjectItem(pr, "K"), K, 9);
    cam = (uakd_camera){K[0], K[4], K[2], K[5], {0}};
    CHECK(test_json_flat(cJSON_GetObjectItem(pr, "dist"), cam.dist, 5) == 5);
    test_json_flat(cJSON_GetObjectItem(pr, "R"), p.R, 9);
    test_json_flat(cJSON_GetObjectItem(pr, "t"), p.t, 3);
    int n = test_json_flat(cJSON_GetObjectItem(pr, "points3d"), X, 60) / 3;
    CHECK(n == 20 && test_json_flat(cJSON_GetObjectItem(pr, "points2d"), uvcv, 40) == 40);
    for (int i = 0; i < n; i++) {
        double uv[2];
        CHECK(uakd_camera_project(&cam, &p, X + 3 * i, uv));
        CHECK_NEAR(uv[0], uvcv[2 * i], 1e-5); /* R and t rounded to 10 digits in the fixture */
        CHECK_NEAR(uv[1], uvcv[2 * i + 1], 1e-5);
    }

    const cJSON *un = cJSON_GetObjectItem(j, "undistort");
    double px[60], xcv[60], xy[60];
    n = test_json_flat(cJSON_GetObjectItem(un, "pixels"), px, 60) / 2;
    CHECK(n == 30 && test_json_flat(cJSON_GetObjectItem(un, "normalised"), xcv, 60) == 60);
    CHECK_OK(uakd_camera_undistort(&cam, n, px, xy));
    for (int i = 0; i < 2 * n; i++) CHECK_NEAR(xy[i], xcv[i], 1e-9);
    for (int i = 0; i < n; i++) { /* and they map back to the pixels */
        double back[2];
        uakd_camera_distort_to_pixel(&cam, xy[2 * i], xy[2 * i + 1], back);
        CHECK_NEAR(back[0], px[2 * i], 1e-9);
        CHECK_NEAR(back[1], px[2 * i + 1], 1e-9);
    }
    cJSON_Delete(j);
}

static void test_undistort_errors(void) {
    uakd_camera cam = {1000, 1000, 500, 500, {-0.5, 0, 0, 0, 0}}; /* folds over at r^2 = 2/3 */
    double in[2] = {NAN, 0}, out[2];
    CHECK_FAILS(uakd_camera_undistort(&cam, 1, in, out), UAKD_EDEGENERATE);
    double far[2] = {500 + 1000 * 5, 500}; /* beyond the largest distorted radius (0.544) */
    CHECK_FAILS(uakd_camera_undistort(&cam, 1, far, out), UAKD_EDEGENERATE);
    double ok[2] = {500 + 300, 500 - 200}, back[2];
    CHECK_OK(uakd_camera_undistort(&cam, 1, ok, out));
    uakd_camera_distort_to_pixel(&cam, out[0], out[1], back);
    CHECK_NEAR(back[0], ok[0], 1e-9);
    CHECK_NEAR(back[1], ok[1], 1e-9);
    /* the distortion Jacobian against central differences */
    uakd_camera c2 = {2988.5795, 2988.3401, 960, 600, {-0.22383, 0.51410, -0.000665, -0.000214, -0.13124}};
    double J[4], h = 1e-6, x = 0.21, y = -0.13, a[2], b[2];
    uakd_camera_distort_jacobian(&c2, x, y, J);
    for (int k = 0; k < 2; k++) {
        uakd_camera_distort_to_pixel(&c2, x + (k == 0) * h, y + (k == 1) * h, a);
        uakd_camera_distort_to_pixel(&c2, x - (k == 0) * h, y - (k == 1) * h, b);
        CHECK_NEAR((a[0] - b[0]) / (2 * h) / c2.fx, J[k], 1e-7);
        CHECK_NEAR((a[1] - b[1]) / (2 * h) / c2.fy, J[2 + k], 1e-7);
    }
}

int main(void) {
    RUN(test_rodrigues_hand);
    RUN(test_compose_inverse);
    RUN(test_opencv_fixtures);
    RUN(test_undistort_errors);
    return TEST_END();
}
