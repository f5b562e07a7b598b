/* Axis-angle rotations, pose composition, angular distance and undistortion of image points.
 *
 * Rodrigues: for r = theta k (|k| = 1), R = I + sin(theta) [k]x + (1 - cos(theta)) [k]x^2; below
 * theta = 1e-8 the series I + [r]x + [r]x^2 / 2 is used. The inverse goes through the unit
 * quaternion (w, v) = (cos(theta/2), sin(theta/2) k) so it stays accurate at 0 and near pi:
 * theta = 2 atan2(|v|, w), r = theta v / |v|.
 * Angular distance of A and B: the angle of A^T B, 2 atan2(|v|, |w|) of its quaternion.
 * Undistortion inverts the OpenCV model x_d = D(x) (see geom_basic.c): OpenCV's fixed-point
 * iteration x <- (x_d - tangential(x)) / radial(x) gives a start, Newton's method with the 2x2
 * Jacobian of D finishes to machine precision. A root is accepted only if D's Jacobian determinant
 * stays positive along the segment from the principal point to it (no fold of the model). */
#include <math.h>
#include <string.h>

#include "uakd/geom.h"

void uakd_rot_from_axis_angle(const double r[3], double R[9]) {
    double th = sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    double a, b; /* R = I + a [r]x + b [r]x^2 */
    if (th < 1e-8) {
        a = 1;
        b = 0.5;
    } else {
        a = sin(th) / th;
        b = (1 - cos(th)) / (th * th);
    }
    double x = r[0], y = r[1], z = r[2];
    R[0] = 1 - b * (y * y + z * z); R[1] = -a * z + b * x * y;      R[2] = a * y + b * x * z;
    R[3] = a * z + b * x * y;      R[4] = 1 - b * (x * x + z * z);  R[5] = -a * x + b * y * z;
    R[6] = -a * y + b * x * z;     R[7] = a * x + b * y * z;       R[8] = 1 - b * (x * x + y * y);
}

void uakd_rot_to_axis_angle(const double R[9], double r[3]) {
    double q[4];
    uakd_rot_to_quat(R, q); /* q[0] >= 0 */
    double s = sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double th = 2 * atan2(s, q[0]);
    double f = s > 1e-300 ? th / s : 2; /* th / sin(th/2) -> 2 as th -> 0 */
    for (int i = 0; i < 3; i++) r[i] = f * q[i + 1];
}

double uakd_rot_angle(const double R[9]) {
    double q[4];
    uakd_rot_to_quat(R, q);
    return 2 * atan2(sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]), fabs(q[0]));
}

double uakd_rot_distance(const double A[9], const double B[9]) {
    double At[9], D[9];
    uakd_mat3_transpose(A, At);
    uakd_mat3_mul(At, B, D);
    return uakd_rot_angle(D);
}

void uakd_pose_compose(const uakd_pose *a, const uakd_pose *b, uakd_pose *out) {
    uakd_pose r;
    uakd_mat3_mul(a->R, b->R, r.R);
    uakd_mat3_vec(a->R, b->t, r.t);
    for (int i = 0; i < 3; i++) r.t[i] += a->t[i];
    *out = r;
}

void uakd_pose_inverse(const uakd_pose *p, uakd_pose *out) {
    uakd_pose r;
    uakd_mat3_transpose(p->R, r.R);
    uakd_mat3_vec(r.R, p->t, r.t);
    for (int i = 0; i < 3; i++) r.t[i] = -r.t[i];
    *out = r;
}

/* D(x, y) in normalised coordinates and its Jacobian J (row-major 2x2). */
static void distort(const double d[5], double x, double y, double out[2], double J[4]) {
    double r2 = x * x + y * y;
    double rad = 1 + d[0] * r2 + d[1] * r2 * r2 + d[4] * r2 * r2 * r2;
    double drad = d[0] + 2 * d[1] * r2 + 3 * d[4] * r2 * r2; /* d rad / d r2 */
    out[0] = x * rad + 2 * d[2] * x * y + d[3] * (r2 + 2 * x * x);
    out[1] = y * rad + d[2] * (r2 + 2 * y * y) + 2 * d[3] * x * y;
    if (J) {
        J[0] = rad + 2 * x * x * drad + 2 * d[2] * y + 6 * d[3] * x;
        J[1] = 2 * x * y * drad + 2 * d[2] * x + 2 * d[3] * y;
        J[2] = 2 * x * y * drad + 2 * d[2] * x + 2 * d[3] * y;
        J[3] = rad + 2 * y * y * drad + 6 * d[2] * y + 2 * d[3] * x;
    }
}

void uakd_camera_distort_jacobian(const uakd_camera *cam, double x, double y, double J[4]) {
    double o[2];
    distort(cam->dist, x, y, o, J);
}

uakd_status uakd_camera_undistort(const uakd_camera *cam, int n, const double *uv, double *xy) {
    const double *d = cam->dist;
    int ideal = d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0 && d[4] == 0;
    for (int i = 0; i < n; i++) {
        double xd = (uv[2 * i] - cam->cx) / cam->fx, yd = (uv[2 * i + 1] - cam->cy) / cam->fy;
        if (!isfinite(xd) || !isfinite(yd))
            return uakd_fail(UAKD_EDEGENERATE, "undistort: image point %d is not finite", i);
        if (ideal) {
            xy[2 * i] = xd;
            xy[2 * i + 1] = yd;
            continue;
        }
        double x = xd, y = yd, f[2], J[4];
        for (int it = 0; it < 5; it++) { /* OpenCV's fixed-point start */
            double r2 = x * x + y * y;
            double icd = 1 / (1 + d[0] * r2 + d[1] * r2 * r2 + d[4] * r2 * r2 * r2);
            double dx = 2 * d[2] * x * y + d[3] * (r2 + 2 * x * x), dy = d[2] * (r2 + 2 * y * y) + 2 * d[3] * x * y;
            x = (xd - dx) * icd;
            y = (yd - dy) * icd;
        }
        int ok = 0;
        for (int it = 0; it < 30 && !ok; it++) {
            distort(d, x, y, f, J);
            double ex = f[0] - xd, ey = f[1] - yd, det = J[0] * J[3] - J[1] * J[2];
            if (fabs(ex) + fabs(ey) < 1e-15 * (1 + fabs(xd) + fabs(yd))) ok = 1;
            if (!isfinite(det) || fabs(det) < 1e-12) break;
            x -= (J[3] * ex - J[1] * ey) / det;
            y -= (-J[2] * ex + J[0] * ey) / det;
        }
        if (!ok) {
            distort(d, x, y, f, NULL);
            ok = isfinite(x) && isfinite(y) && fabs(f[0] - xd) + fabs(f[1] - yd) < 1e-10;
        }
        for (int k = 1; k <= 8 && ok; k++) { /* a root past a fold of the model is not the physical one */
            distort(d, x * k / 8, y * k / 8, f, J);
            ok = J[0] * J[3] - J[1] * J[2] > 0;
        }
        if (!ok)
            return uakd_fail(UAKD_EDEGENERATE,
                             "undistort: image point %d (%g, %g) is outside the region where the distortion model "
                             "can be inverted", i, uv[2 * i], uv[2 * i + 1]);
        xy[2 * i] = x;
        xy[2 * i + 1] = y;
    }
    return UAKD_OK;
}
