/* Basic 3x3 algebra, pose application, pinhole projection with OpenCV's distortion model
 *   r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3,
 *   x' = x radial + 2 p1 x y + p2 (r2 + 2 x^2),  y' = y radial + p1 (r2 + 2 y^2) + 2 p2 x y,
 *   u = fx x' + cx, v = fy y' + cy,
 * nearest rotation by SVD (R = U diag(1, 1, det(U V^T)) V^T) and quaternion conversions. */
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "uakd/geom.h"

void uakd_mat3_mul(const double A[9], const double B[9], double out[9]) {
    double r[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] + A[3 * i + 2] * B[6 + j];
    memcpy(out, r, sizeof r);
}

void uakd_mat3_transpose(const double A[9], double out[9]) {
    double r[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[3 * j + i] = A[3 * i + j];
    memcpy(out, r, sizeof r);
}

void uakd_mat3_vec(const double A[9], const double v[3], double out[3]) {
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = A[3 * i] * v[0] + A[3 * i + 1] * v[1] + A[3 * i + 2] * v[2];
    memcpy(out, r, sizeof r);
}

double uakd_mat3_det(const double A[9]) {
    return A[0] * (A[4] * A[8] - A[5] * A[7]) - A[1] * (A[3] * A[8] - A[5] * A[6]) + A[2] * (A[3] * A[7] - A[4] * A[6]);
}

void uakd_pose_apply(const uakd_pose *p, const double X[3], double out[3]) {
    uakd_mat3_vec(p->R, X, out);
    for (int i = 0; i < 3; i++) out[i] += p->t[i];
}

void uakd_camera_distort_to_pixel(const uakd_camera *cam, double x, double y, double uv[2]) {
    const double *d = cam->dist;
    double r2 = x * x + y * y;
    double radial = 1 + d[0] * r2 + d[1] * r2 * r2 + d[4] * r2 * r2 * r2;
    double xd = x * radial + 2 * d[2] * x * y + d[3] * (r2 + 2 * x * x);
    double yd = y * radial + d[2] * (r2 + 2 * y * y) + 2 * d[3] * x * y;
    uv[0] = cam->fx * xd + cam->cx;
    uv[1] = cam->fy * yd + cam->cy;
}

int uakd_camera_project(const uakd_camera *cam, const uakd_pose *p, const double X[3], double uv[2]) {
    double c[3];
    uakd_pose_apply(p, X, c);
    if (!(c[2] > 0)) return 0;
    uakd_camera_distort_to_pixel(cam, c[0] / c[2], c[1] / c[2], uv);
    return 1;
}

uakd_status uakd_rot_orthonormalize(const double R[9], double out[9], double *moved) {
    for (int i = 0; i < 9; i++)
        if (!isfinite(R[i])) return uakd_fail(UAKD_EDEGENERATE, "rotation has a non-finite entry (index %d)", i);
    double a[9], s[3], u[9], vt[9], superb[2];
    memcpy(a, R, sizeof a);
    if (LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', 3, 3, a, 3, s, u, 3, vt, 3, superb) != 0)
        return uakd_fail(UAKD_EDEGENERATE, "rotation: SVD did not converge");
    double r[9];
    uakd_mat3_mul(u, vt, r);
    if (uakd_mat3_det(r) < 0) {
        for (int i = 0; i < 3; i++) u[3 * i + 2] = -u[3 * i + 2];
        uakd_mat3_mul(u, vt, r);
    }
    if (moved) {
        double m = 0;
        for (int i = 0; i < 9; i++) m = fmax(m, fabs(r[i] - R[i]));
        *moved = m;
    }
    memcpy(out, r, sizeof r);
    return UAKD_OK;
}

void uakd_quat_to_rot(const double q_in[4], double R[9]) {
    double n = sqrt(q_in[0] * q_in[0] + q_in[1] * q_in[1] + q_in[2] * q_in[2] + q_in[3] * q_in[3]);
    double w = q_in[0] / n, x = q_in[1] / n, y = q_in[2] / n, z = q_in[3] / n;
    R[0] = 1 - 2 * (y * y + z * z); R[1] = 2 * (x * y - w * z);     R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z);     R[4] = 1 - 2 * (x * x + z * z); R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y);     R[7] = 2 * (y * z + w * x);     R[8] = 1 - 2 * (x * x + y * y);
}

void uakd_rot_to_quat(const double R[9], double q[4]) {
    /* Shepperd's method: pivot on the largest of the four squared components. */
    double tr = R[0] + R[4] + R[8];
    if (tr > R[0] && tr > R[4] && tr > R[8]) {
        double s = 2 * sqrt(1 + tr);
        q[0] = s / 4; q[1] = (R[7] - R[5]) / s; q[2] = (R[2] - R[6]) / s; q[3] = (R[3] - R[1]) / s;
    } else if (R[0] > R[4] && R[0] > R[8]) {
        double s = 2 * sqrt(1 + R[0] - R[4] - R[8]);
        q[0] = (R[7] - R[5]) / s; q[1] = s / 4; q[2] = (R[1] + R[3]) / s; q[3] = (R[2] + R[6]) / s;
    } else if (R[4] > R[8]) {
        double s = 2 * sqrt(1 + R[4] - R[0] - R[8]);
        q[0] = (R[2] - R[6]) / s; q[1] = (R[1] + R[3]) / s; q[2] = s / 4; q[3] = (R[5] + R[7]) / s;
    } else {
        double s = 2 * sqrt(1 + R[8] - R[0] - R[4]);
        q[0] = (R[3] - R[1]) / s; q[1] = (R[2] + R[6]) / s; q[2] = (R[5] + R[7]) / s; q[3] = s / 4;
    }
    if (q[0] < 0)
        for (int i = 0; i < 4; i++) q[i] = -q[i];
}
