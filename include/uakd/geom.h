/* Rigid poses, rotations and the pinhole camera with OpenCV distortion.
 *
 * Conventions: row-major 3x3 matrices; a pose maps model to camera, x_cam = R X + t; camera
 * frame x right, y down, z forward (OpenCV); quaternions are scalar-first unit (w, x, y, z),
 * Hamilton, active (SPEED+ convention). Everything is double precision. */
#ifndef UAKD_GEOM_H
#define UAKD_GEOM_H

#include "uakd/status.h"

typedef struct uakd_pose {
    double R[9]; /* row-major rotation, model -> camera */
    double t[3]; /* translation, same units as the model */
} uakd_pose;

typedef struct uakd_camera {
    double fx, fy, cx, cy;
    double dist[5]; /* OpenCV k1, k2, p1, p2, k3; all zero for an ideal pinhole */
} uakd_camera;

void uakd_mat3_mul(const double A[9], const double B[9], double out[9]);
void uakd_mat3_transpose(const double A[9], double out[9]);
void uakd_mat3_vec(const double A[9], const double v[3], double out[3]);
double uakd_mat3_det(const double A[9]);

/* x_cam = R X + t. */
void uakd_pose_apply(const uakd_pose *p, const double X[3], double out[3]);

/* Normalised image coordinates (x/z, y/z) -> pixels, with the camera's distortion applied. */
void uakd_camera_distort_to_pixel(const uakd_camera *cam, double xn, double yn, double uv[2]);
/* Projects model point X with pose p. Returns 0 when the point is at or behind the camera
 * (z <= 0; uv is then left untouched), 1 otherwise. */
int uakd_camera_project(const uakd_camera *cam, const uakd_pose *p, const double X[3], double uv[2]);

/* The rotation nearest to R in the Frobenius norm (SVD, det fixed to +1). moved, if not NULL,
 * receives max |out - R| so loaders can report how far real annotations were from SO(3).
 * Fails with UAKD_EDEGENERATE on non-finite input. */
uakd_status uakd_rot_orthonormalize(const double R[9], double out[9], double *moved);

/* Scalar-first unit quaternion <-> rotation matrix (q need not be normalised on input). */
void uakd_quat_to_rot(const double q[4], double R[9]);
void uakd_rot_to_quat(const double R[9], double q[4]);

/* Rodrigues: axis-angle vector r (axis times angle in radians) <-> rotation matrix. The inverse
 * returns an angle in [0, pi] and is accurate near 0 and pi. */
void uakd_rot_from_axis_angle(const double r[3], double R[9]);
void uakd_rot_to_axis_angle(const double R[9], double r[3]);
/* Rotation angle of R in [0, pi] (radians), and the angle of A^T B (the geodesic distance). */
double uakd_rot_angle(const double R[9]);
double uakd_rot_distance(const double A[9], const double B[9]);

/* out = a o b (x -> a(b(x))): R = Ra Rb, t = Ra tb + ta. out may alias a or b. */
void uakd_pose_compose(const uakd_pose *a, const uakd_pose *b, uakd_pose *out);
/* out = p^-1: R^T, -R^T t. out may alias p. */
void uakd_pose_inverse(const uakd_pose *p, uakd_pose *out);

/* Jacobian (row-major 2x2) of the distortion map in normalised coordinates at (x, y). */
void uakd_camera_distort_jacobian(const uakd_camera *cam, double x, double y, double J[4]);
/* Pixels -> undistorted normalised coordinates (x/z, y/z) for n points (uv and xy: n x 2; they
 * may alias). Inverts the distortion to machine precision (OpenCV's fixed-point iteration, then
 * Newton). Fails with UAKD_EDEGENERATE, naming the point, on non-finite input or where the
 * model cannot be inverted (far outside the calibrated field of view). */
uakd_status uakd_camera_undistort(const uakd_camera *cam, int n, const double *uv, double *xy);

#endif
