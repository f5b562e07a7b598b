/* Tests of the basic geometry: quaternion round trips, SO(3) projection, distortion. */
#include "test.h"
#include "uakd/geom.h"
#include "uakd/rng.h"

static void test_quat_roundtrip(void) {
    uakd_rng r;
    uakd_rng_seed(&r, 7);
    for (int k = 0; k < 1000; k++) {
        double q[4], R[9], q2[4], Rt[9], I[9];
        for (int i = 0; i < 4; i++) q[i] = uakd_rng_normal(&r);
        double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        for (int i = 0; i < 4; i++) q[i] /= (q[0] < 0 ? -n : n);
        uakd_quat_to_rot(q, R);
        CHECK_NEAR(uakd_mat3_det(R), 1.0, 1e-12);
        uakd_mat3_transpose(R, Rt);
        uakd_mat3_mul(R, Rt, I);
        for (int i = 0; i < 9; i++) CHECK_NEAR(I[i], i % 4 == 0, 1e-12);
        uakd_rot_to_quat(R, q2);
        for (int i = 0; i < 4; i++) CHECK_NEAR(q2[i], q[i], 1e-10);
    }
    /* 90 degrees about z maps x to y (active rotation) */
    double qz[4] = {cos(M_PI / 4), 0, 0, sin(M_PI / 4)}, R[9], v[3] = {1, 0, 0}, o[3];
    uakd_quat_to_rot(qz, R);
    uakd_mat3_vec(R, v, o);
    CHECK_NEAR(o[0], 0, 1e-12);
    CHECK_NEAR(o[1], 1, 1e-12);
}

static void test_orthonormalize(void) {
    double R[9] = {1.01, 0.005, 0, -0.004, 0.99, 0.01, 0, -0.01, 1.0}, out[9], moved;
    CHECK_OK(uakd_rot_orthonormalize(R, out, &moved));
    CHECK_NEAR(uakd_mat3_det(out), 1.0, 1e-12);
    CHECK(moved > 0.005 && moved < 0.02);
    double bad[9] = {NAN};
    CHECK_FAILS(uakd_rot_orthonormalize(bad, out, NULL), UAKD_EDEGENERATE);
}

static void test_projection_with_distortion(void) {
    uakd_camera cam = {2988.5795, 2988.3401, 960, 600, {-0.22383, 0.51410, -0.000665, -0.000214, -0.13124}};
    uakd_pose p = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0.1, -0.2, 5}};
    double X[3] = {0.3, 0.2, 0.0}, uv[2];
    CHECK(uakd_camera_project(&cam, &p, X, uv));
    /* hand computation: x = 0.08, y = 0.0 */
    double x = 0.08, r2 = x * x, rad = 1 + cam.dist[0] * r2 + cam.dist[1] * r2 * r2 + cam.dist[4] * r2 * r2 * r2;
    CHECK_NEAR(uv[0], cam.fx * (x * rad + cam.dist[3] * (r2 + 2 * x * x)) + cam.cx, 1e-9);
    CHECK_NEAR(uv[1], cam.fy * (cam.dist[2] * r2) + cam.cy, 1e-9);
    double behind[3] = {0, 0, -10};
    CHECK(!uakd_camera_project(&cam, &p, behind, uv));
}

int main(void) {
    RUN(test_quat_roundtrip);
    RUN(test_orthonormalize);
    RUN(test_projection_with_distortion);
    return TEST_END();
}
