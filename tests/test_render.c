/* Tests of the rasteriser against analytic ray casting: coverage of known shapes, depth,
 * perspective-correct colour, z-buffering, near-plane clipping, back faces, Lambert shading, the
 * lens-distortion warp, polygon filling; and its speed on a 6k-triangle mesh at 640x480. */
#include <time.h>

#include "test.h"
#include "uakd/render.h"
#include "uakd/rng.h"

static const uakd_pose identity = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}};
static const uakd_render_opts flat = {{{0, 0, -1}, 0, 1}, 0.01, 0, 1}; /* ambient 1: pure albedo */

static long count_id(const uakd_render_target *t, uint16_t id) {
    long n = 0;
    for (long k = 0; k < (long)t->width * t->height; k++) n += t->id[k] == id;
    return n;
}

/* A square of side 2h at depth z, facing the camera, as two triangles. */
static void square(float *xyz, int32_t *faces, double h, double z) {
    float v[12] = {(float)-h, (float)-h, (float)z, (float)h, (float)-h, (float)z,
                   (float)h,  (float)h,  (float)z, (float)-h, (float)h, (float)z};
    int32_t f[6] = {0, 1, 2, 0, 2, 3};
    memcpy(xyz, v, sizeof v);
    memcpy(faces, f, sizeof f);
}

static void test_square_coverage_and_depth(void) {
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 160, 120));
    float xyz[12];
    int32_t faces[6];
    square(xyz, faces, 0.5, 2.0);
    uakd_mesh m = {4, 2, xyz, NULL, NULL, faces};
    /* u = 100 X / 2 + 80.3: X in [-0.5, 0.5] -> u in [55.3, 105.3], covering pixel centres 56..105 */
    uakd_camera cam = {100, 100, 80.3, 60.4, {0}};
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &flat));
    long wrong = 0;
    for (int j = 0; j < t.height; j++)
        for (int i = 0; i < t.width; i++) {
            int inside = i >= 56 && i <= 105 && j >= 36 && j <= 85;
            size_t k = (size_t)j * t.width + i;
            wrong += inside != (t.id[k] == 1);
            if (inside && t.depth[k] != 2.0f) wrong++;
            if (!inside && !isinf(t.depth[k])) wrong++;
        }
    CHECK_MSG(wrong == 0, "%ld pixels differ from the analytic square", wrong);
    CHECK(count_id(&t, 1) == 50 * 50);
    uakd_render_target_free(&t);
}

/* Colour interpolated on a steeply tilted triangle equals the 3D barycentric colour of the point
 * the pixel's ray hits (within rounding), while screen-space affine interpolation would not. */
static void test_perspective_correct_colour(void) {
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 160, 120));
    float xyz[9] = {-1, -1, 1, 1.5f, -0.5f, 6, -0.5f, 2, 3};
    uint8_t rgb[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    int32_t faces[3] = {0, 1, 2};
    uakd_mesh m = {3, 1, xyz, NULL, rgb, faces};
    uakd_camera cam = {100, 100, 80, 60, {0}};
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &flat));
    double P[3][3], n[3], e1[3], e2[3];
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++) P[k][c] = xyz[3 * k + c];
    for (int c = 0; c < 3; c++) {
        e1[c] = P[1][c] - P[0][c];
        e2[c] = P[2][c] - P[0][c];
    }
    n[0] = e1[1] * e2[2] - e1[2] * e2[1];
    n[1] = e1[2] * e2[0] - e1[0] * e2[2];
    n[2] = e1[0] * e2[1] - e1[1] * e2[0];
    double proj[3][2];
    for (int k = 0; k < 3; k++) {
        proj[k][0] = 100 * P[k][0] / P[k][2] + 80;
        proj[k][1] = 100 * P[k][1] / P[k][2] + 60;
    }
    long checked = 0, bad = 0;
    double max_err = 0, max_affine_err = 0;
    for (int j = 0; j < t.height; j++)
        for (int i = 0; i < t.width; i++) {
            double d[3] = {(i - 80) / 100.0, (j - 60) / 100.0, 1};
            double s = (n[0] * P[0][0] + n[1] * P[0][1] + n[2] * P[0][2]) / (n[0] * d[0] + n[1] * d[1] + n[2] * d[2]);
            double X[3] = {s * d[0], s * d[1], s * d[2]};
            /* 3D barycentrics by areas */
            double b[3], tot = 0;
            for (int k = 0; k < 3; k++) {
                const double *A = P[(k + 1) % 3], *B = P[(k + 2) % 3];
                double u[3] = {A[0] - X[0], A[1] - X[1], A[2] - X[2]}, v[3] = {B[0] - X[0], B[1] - X[1], B[2] - X[2]};
                double cr[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
                b[k] = (cr[0] * n[0] + cr[1] * n[1] + cr[2] * n[2]);
                tot += b[k];
            }
            for (int k = 0; k < 3; k++) b[k] /= tot;
            if (!(s > 0 && b[0] >= 0.01 && b[1] >= 0.01 && b[2] >= 0.01)) continue; /* NaN on the horizon */
            size_t p = (size_t)j * t.width + i;
            if (t.id[p] != 1) {
                bad++;
                continue;
            }
            checked++;
            CHECK_NEAR(t.depth[p], X[2], 1e-5 * X[2]);
            /* screen-space (affine) barycentrics, for contrast */
            double a[3], atot = 0;
            for (int k = 0; k < 3; k++) {
                const double *A = proj[(k + 1) % 3], *B = proj[(k + 2) % 3];
                a[k] = (A[0] - i) * (B[1] - j) - (A[1] - j) * (B[0] - i);
                atot += a[k];
            }
            for (int c = 0; c < 3; c++) {
                max_err = fmax(max_err, fabs(t.rgb[3 * p + c] - 255 * b[c]));
                max_affine_err = fmax(max_affine_err, fabs(255 * a[c] / atot - 255 * b[c]));
            }
        }
    CHECK(bad == 0);
    CHECK(checked > 1000);
    CHECK_MSG(max_err <= 0.51, "max colour error %.3f", max_err);
    CHECK_MSG(max_affine_err > 20, "the test triangle is not tilted enough (affine error %.2f)", max_affine_err);
    uakd_render_target_free(&t);
}

static void test_zbuffer_order_independent(void) {
    uakd_camera cam = {100, 100, 80.3, 60.4, {0}};
    float near_xyz[12], far_xyz[12];
    int32_t f1[6], f2[6];
    square(near_xyz, f1, 0.3, 2.0);
    square(far_xyz, f2, 0.5, 2.5);
    uakd_mesh near_m = {4, 2, near_xyz, NULL, NULL, f1}, far_m = {4, 2, far_xyz, NULL, NULL, f2};
    uakd_render_opts o1 = flat, o2 = flat;
    o1.id = 1;
    o2.id = 2;
    long counts[2][2];
    for (int order = 0; order < 2; order++) {
        uakd_render_target t;
        CHECK_OK(uakd_render_target_alloc(&t, 160, 120));
        if (order == 0) {
            CHECK_OK(uakd_render_mesh(&t, &near_m, &identity, &cam, &o1));
            CHECK_OK(uakd_render_mesh(&t, &far_m, &identity, &cam, &o2));
        } else {
            CHECK_OK(uakd_render_mesh(&t, &far_m, &identity, &cam, &o2));
            CHECK_OK(uakd_render_mesh(&t, &near_m, &identity, &cam, &o1));
        }
        counts[order][0] = count_id(&t, 1);
        counts[order][1] = count_id(&t, 2);
        uakd_render_target_free(&t);
    }
    /* near: 0.3 * 50 = 15 -> u in [65.3, 95.3]: 30 x 30; far: 0.5 * 40 = 20 -> [60.3, 100.3]: 40 x 40 */
    CHECK(counts[0][0] == 900 && counts[1][0] == 900);
    CHECK(counts[0][1] == 1600 - 900 && counts[1][1] == 1600 - 900);
}

/* A floor plane y = 1 from z = -3 (behind the camera) to z = 8: clipped at z_near, its coverage
 * must match the analytic ray hit wherever a pixel is not within a pixel of the border. */
static void test_near_plane_clipping(void) {
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 160, 120));
    float xyz[12] = {-2, 1, -3, 2, 1, -3, 2, 1, 8, -2, 1, 8};
    int32_t faces[6] = {0, 1, 2, 0, 2, 3};
    uakd_mesh m = {4, 2, xyz, NULL, NULL, faces};
    uakd_camera cam = {100, 100, 80, 60, {0}};
    uakd_render_opts o = flat;
    o.z_near = 0.5;
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &o));
    long wrong = 0, covered = 0;
    for (int j = 1; j < t.height - 1; j++)
        for (int i = 1; i < t.width - 1; i++) {
            int hit[5];
            int di[5] = {0, 1, -1, 0, 0}, dj[5] = {0, 0, 0, 1, -1};
            for (int k = 0; k < 5; k++) {
                double dx = (i + di[k] - 80) / 100.0, dy = (j + dj[k] - 60) / 100.0;
                double z = dy > 0 ? 1 / dy : -1; /* ray (dx, dy, 1) s hits y = 1 at s = 1 / dy */
                hit[k] = z >= 0.5 && z <= 8 && fabs(dx * z) <= 2;
            }
            if (hit[0] != hit[1] || hit[0] != hit[2] || hit[0] != hit[3] || hit[0] != hit[4]) continue;
            size_t p = (size_t)j * t.width + i;
            wrong += hit[0] != (t.id[p] == 1);
            if (hit[0]) {
                covered++;
                double z = 100.0 / (j - 60);
                if (fabs(t.depth[p] - z) > 1e-5 * z) wrong++;
            }
        }
    CHECK_MSG(wrong == 0, "%ld pixels differ from the clipped plane", wrong);
    CHECK(covered > 3000);
    uakd_render_target_free(&t);
}

static void test_back_faces_and_lambert(void) {
    uakd_camera cam = {100, 100, 80.3, 60.4, {0}};
    float xyz[12];
    int32_t faces[6];
    square(xyz, faces, 0.5, 2.0);
    /* winding 0,1,2 with y down: (v1-v0) x (v2-v0) = +z, pointing away from the camera */
    uint8_t rgb[12] = {200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200};
    uakd_mesh m = {4, 2, xyz, NULL, rgb, faces};
    uakd_render_opts o = {{{0, 0, -1}, 0.5, 0.2}, 0.01, 1, 1};
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 160, 120));
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &o));
    CHECK(count_id(&t, 1) == 0);
    int32_t flipped[6] = {0, 2, 1, 0, 3, 2};
    m.faces = flipped;
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &o));
    CHECK(count_id(&t, 1) == 2500);
    size_t c = (size_t)60 * t.width + 80;
    CHECK(t.rgb[3 * c] == 140); /* 200 * (0.2 + 0.5 * 1) */
    /* light at 60 degrees from the normal, both sides drawn (two-sided lighting) */
    uakd_render_target_clear(&t);
    m.faces = faces;
    o.cull_back_faces = 0;
    o.light.dir[0] = sin(M_PI / 3);
    o.light.dir[2] = -cos(M_PI / 3);
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &o));
    CHECK(t.rgb[3 * c] == 90); /* 200 * (0.2 + 0.5 * 0.5) */
    /* per-vertex normals are used when present: normals facing the light give the full factor */
    float normals[12] = {0.8660254f, 0, -0.5f, 0.8660254f, 0, -0.5f, 0.8660254f, 0, -0.5f, 0.8660254f, 0, -0.5f};
    m.normals = normals;
    uakd_render_target_clear(&t);
    CHECK_OK(uakd_render_mesh(&t, &m, &identity, &cam, &o));
    CHECK(t.rgb[3 * c] == 140);
    uakd_render_target_free(&t);
}

static void test_rejects_bad_input(void) {
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 16, 12));
    float xyz[9] = {0, 0, 1, 1, 0, 1, 0, 1, 1};
    int32_t faces[3] = {0, 1, 3};
    uakd_mesh m = {3, 1, xyz, NULL, NULL, faces};
    uakd_camera cam = {10, 10, 8, 6, {0}};
    CHECK_FAILS(uakd_render_mesh(&t, &m, &identity, &cam, &flat), UAKD_EINVAL);
    faces[2] = 2;
    cam.dist[0] = -0.1;
    CHECK_FAILS(uakd_render_mesh(&t, &m, &identity, &cam, &flat), UAKD_EINVAL);
    uakd_render_target_free(&t);
    CHECK_FAILS(uakd_render_target_alloc(&t, 0, 10), UAKD_EINVAL);
}

/* A small square rendered through the SPEED+ lens (scaled to 480x300) lands where the distorted
 * projection of its centre says, and the map's canvas covers the whole view. */
static void test_distortion_warp(void) {
    uakd_camera cam = {2988.5795 / 4, 2988.3401 / 4, 240, 150, {-0.22383, 0.51410, -0.000665, -0.000214, -0.13124}};
    uakd_distort_map map;
    CHECK_OK(uakd_distort_map_new(&cam, 480, 300, &map));
    CHECK(map.canvas_width > 480 && map.canvas_height > 300);
    long outside = 0;
    for (long k = 0; k < 480L * 300; k++) outside += map.src[k] < 0;
    CHECK(outside == 0);
    uakd_render_target canvas, out;
    CHECK_OK(uakd_render_target_alloc(&canvas, map.canvas_width, map.canvas_height));
    CHECK_OK(uakd_render_target_alloc(&out, 480, 300));
    float xyz[12];
    int32_t faces[6];
    square(xyz, faces, 0.1, 5.0);
    uakd_mesh m = {4, 2, xyz, NULL, NULL, faces};
    uakd_pose pose = identity;
    pose.t[0] = -1.4; /* near the image corner, where distortion is largest */
    pose.t[1] = -0.85;
    CHECK_OK(uakd_render_mesh(&canvas, &m, &pose, &map.canvas_cam, &flat));
    CHECK_OK(uakd_distort_apply(&map, &canvas, &out));
    double su = 0, sv = 0;
    long n = 0;
    int bb[4] = {480, 300, -1, -1};
    for (int j = 0; j < 300; j++)
        for (int i = 0; i < 480; i++)
            if (out.id[j * 480 + i]) {
                su += i;
                sv += j;
                n++;
                bb[0] = i < bb[0] ? i : bb[0];
                bb[1] = j < bb[1] ? j : bb[1];
                bb[2] = i > bb[2] ? i : bb[2];
                bb[3] = j > bb[3] ? j : bb[3];
            }
    /* the covered pixels span the distorted projections of the corners (nearest-neighbour twice: within 1.5 pixels) */
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < 4; k++) {
        double C[3] = {xyz[3 * k], xyz[3 * k + 1], xyz[3 * k + 2]}, c[2];
        uakd_camera_project(&cam, &pose, C, c);
        for (int d = 0; d < 2; d++) {
            lo[d] = fmin(lo[d], c[d]);
            hi[d] = fmax(hi[d], c[d]);
        }
    }
    CHECK_NEAR(bb[0], lo[0], 1.5);
    CHECK_NEAR(bb[1], lo[1], 1.5);
    CHECK_NEAR(bb[2], hi[0], 1.5);
    CHECK_NEAR(bb[3], hi[1], 1.5);
    double X[3] = {0, 0, 5}, uv[2], uv_pin[2];
    uakd_camera_project(&cam, &pose, X, uv);
    uakd_camera pin = cam;
    memset(pin.dist, 0, sizeof pin.dist);
    uakd_camera_project(&pin, &pose, X, uv_pin);
    CHECK(n > 20);
    CHECK_NEAR(su / n, uv[0], 0.6);
    CHECK_NEAR(sv / n, uv[1], 0.6);
    CHECK(fabs(uv[0] - uv_pin[0]) + fabs(uv[1] - uv_pin[1]) > 3); /* the lens matters here */
    CHECK_FAILS(uakd_distort_apply(&map, &canvas, &canvas), UAKD_EINVAL);
    uakd_render_target_free(&canvas);
    uakd_render_target_free(&out);
    uakd_distort_map_free(&map);
}

static void test_fill_polygon(void) {
    uakd_image im;
    CHECK_OK(uakd_image_alloc(&im, 20, 10, 3));
    uint16_t ids[200] = {0};
    double rect[4][2] = {{2.5, 3.5}, {10.5, 3.5}, {10.5, 7.5}, {2.5, 7.5}};
    uint8_t col[3] = {1, 2, 3};
    CHECK(uakd_fill_polygon(&im, rect, 4, col, ids, 7) == 8 * 4);
    CHECK(ids[4 * 20 + 3] == 7 && ids[7 * 20 + 10] == 7 && ids[3 * 20 + 3] == 0 && ids[4 * 20 + 11] == 0);
    CHECK(im.data[3 * (5 * 20 + 5) + 2] == 3);
    double tri[3][2] = {{-5, -5}, {40, -5}, {-5, 40}}; /* clipped: covers the whole image */
    CHECK(uakd_fill_polygon(&im, tri, 3, col, NULL, 0) == 200);
    uakd_image_free(&im);
}

/* A UV sphere of radius r with rings x segs quads (2 rings x segs triangles at the poles). */
static void sphere(float *xyz, uint8_t *rgb, int32_t *faces, int rings, int segs, double r) {
    int v = 0;
    for (int a = 0; a <= rings; a++)
        for (int b = 0; b < segs; b++, v++) {
            double th = M_PI * a / rings, ph = 2 * M_PI * b / segs;
            xyz[3 * v] = (float)(r * sin(th) * cos(ph));
            xyz[3 * v + 1] = (float)(r * sin(th) * sin(ph));
            xyz[3 * v + 2] = (float)(r * cos(th));
            rgb[3 * v] = (uint8_t)(40 + 200 * a / rings);
            rgb[3 * v + 1] = (uint8_t)(40 + 200 * b / segs);
            rgb[3 * v + 2] = 120;
        }
    int f = 0;
    for (int a = 0; a < rings; a++)
        for (int b = 0; b < segs; b++) {
            int p = a * segs + b, q = a * segs + (b + 1) % segs;
            int32_t t[6] = {p, p + segs, q + segs, p, q + segs, q};
            memcpy(faces + 3 * f, t, sizeof t);
            f += 2;
        }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Silhouette area of a sphere (disc of radius f r / sqrt(z^2 - r^2) on the optical axis) within
 * 1%, and the rendering speed at 640x480 for 6000 triangles (printed; must exceed 50 images per
 * CPU second on one core without sanitizers, the target for two cores). */
static void test_sphere_area_and_speed(void) {
    enum { RINGS = 60, SEGS = 50 };
    static float xyz[(RINGS + 1) * SEGS * 3];
    static uint8_t rgb[(RINGS + 1) * SEGS * 3];
    static int32_t faces[RINGS * SEGS * 6];
    sphere(xyz, rgb, faces, RINGS, SEGS, 100);
    uakd_mesh m = {(RINGS + 1) * SEGS, RINGS * SEGS * 2, xyz, NULL, rgb, faces};
    uakd_camera cam = {572.4114, 573.57043, 325.2611, 242.04899, {0}};
    uakd_render_target t;
    CHECK_OK(uakd_render_target_alloc(&t, 640, 480));
    uakd_pose pose = identity;
    pose.t[2] = 600;
    uakd_render_opts o = {{{0, 0, -1}, 0.6, 0.3}, 1, 0, 1};
    CHECK_OK(uakd_render_mesh(&t, &m, &pose, &cam, &o));
    double rad = 100 / sqrt(600.0 * 600 - 100 * 100);
    double expect = M_PI * cam.fx * rad * cam.fy * rad; /* ellipse with both focal lengths */
    /* the polygonal sphere is slightly smaller than the true one: inscribed, cos(pi / SEGS) */
    CHECK_NEAR(count_id(&t, 1), expect, 0.01 * expect);

    uakd_rng rng;
    uakd_rng_seed(&rng, 3);
    int frames = 60;
    double t0 = now_s();
    clock_t c0 = clock();
    for (int k = 0; k < frames; k++) {
        uakd_render_target_clear(&t);
        double q[4];
        for (int i = 0; i < 4; i++) q[i] = uakd_rng_normal(&rng); /* normalised by quat_to_rot */
        uakd_quat_to_rot(q, pose.R);
        pose.t[0] = uakd_rng_range(&rng, -100, 100);
        pose.t[2] = uakd_rng_range(&rng, 600, 1200);
        CHECK_OK(uakd_render_mesh(&t, &m, &pose, &cam, &o));
    }
    double secs = now_s() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    fprintf(stderr, "render speed: %.0f images/s wall, %.0f per CPU second, 640x480, %d triangles, one thread\n",
            frames / secs, frames / cpu, m.num_faces);
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(frames / cpu > 50); /* CPU time: robust to other jobs on the machine */
#endif
    uakd_render_target_free(&t);
}

int main(void) {
    RUN(test_square_coverage_and_depth);
    RUN(test_perspective_correct_colour);
    RUN(test_zbuffer_order_independent);
    RUN(test_near_plane_clipping);
    RUN(test_back_faces_and_lambert);
    RUN(test_rejects_bad_input);
    RUN(test_distortion_warp);
    RUN(test_fill_polygon);
    RUN(test_sphere_area_and_speed);
    return TEST_END();
}
