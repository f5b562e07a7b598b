/* Z-buffered triangle rasteriser with perspective-correct vertex colours and Lambert shading.
 *
 * Each vertex goes to the camera frame (x = R X + t), is shaded (c * (ambient + intensity *
 * max(0, n.l)), n flipped towards the camera), and triangles are clipped against z = z_near
 * (Sutherland-Hodgman on one plane: 1 or 2 triangles). Projected vertices are snapped to 1/16
 * pixel and covered pixel centres found with exact integer edge functions
 *   E_ab(p) = (b.x - a.x)(p.y - a.y) - (b.y - a.y)(p.x - a.x),
 * with a tie rule (a pixel on an edge belongs to the side whose edge gradient g has g.x > 0, or
 * g.x = 0 and g.y > 0) so that triangles sharing an edge never both cover a pixel, nor leave a
 * gap. Screen-space barycentrics b_i interpolate 1/z and c/z linearly; depth = 1 / sum(b_i / z_i)
 * and colour = depth * sum(b_i c_i / z_i) are then exact for attributes affine on the triangle. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/render.h"

#define SUB 16                   /* sub-pixel positions per pixel */
#define MAX_PIXEL (16777216.0)   /* 2^24: larger projections are skipped (int64 edge functions) */

uakd_status uakd_render_target_alloc(uakd_render_target *t, int width, int height) {
    memset(t, 0, sizeof *t);
    if (width <= 0 || height <= 0 || width > 65536 || height > 65536)
        return uakd_fail(UAKD_EINVAL, "render target: size %dx%d must be in 1..65536", width, height);
    size_t n = (size_t)width * (size_t)height;
    t->rgb = malloc(n * 3);
    t->depth = malloc(n * sizeof(float));
    t->id = malloc(n * sizeof(uint16_t));
    if (!t->rgb || !t->depth || !t->id) {
        uakd_render_target_free(t);
        return uakd_fail(UAKD_ENOMEM, "render target: cannot allocate %dx%d buffers", width, height);
    }
    t->width = width;
    t->height = height;
    uakd_render_target_clear(t);
    return UAKD_OK;
}

void uakd_render_target_free(uakd_render_target *t) {
    free(t->rgb);
    free(t->depth);
    free(t->id);
    memset(t, 0, sizeof *t);
}

void uakd_render_target_clear(uakd_render_target *t) {
    size_t n = (size_t)t->width * (size_t)t->height;
    memset(t->rgb, 0, n * 3);
    memset(t->id, 0, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) t->depth[i] = INFINITY;
}

/* A vertex in the camera frame with its colour (shaded, or albedo when shading is per face). */
typedef struct cvert {
    double p[3];
    double c[3];
} cvert;

typedef struct raster_ctx {
    uakd_render_target *t;
    double fx, fy, cx, cy;
    uint16_t id;
} raster_ctx;

static double dot3(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static double shade_factor(const uakd_light *l, const double n[3], const double pos[3]) {
    double len = sqrt(dot3(n, n));
    if (!(len > 0)) return l->ambient;
    double d = dot3(n, l->dir) / len;
    if (dot3(n, pos) > 0) d = -d; /* normal faces away from the camera: light the visible side */
    return l->ambient + l->intensity * (d > 0 ? d : 0);
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Whether pixels exactly on edge a->b (interior on the positive side) belong to this triangle. */
static int64_t edge_bias(int64_t ax, int64_t ay, int64_t bx, int64_t by) {
    int64_t gx = -(by - ay), gy = bx - ax;
    return (gx > 0 || (gx == 0 && gy > 0)) ? 0 : -1;
}

static void raster(const raster_ctx *r, const cvert *v0, const cvert *v1, const cvert *v2) {
    const cvert *v[3] = {v0, v1, v2};
    double x[3], y[3];
    int64_t X[3], Y[3];
    for (int i = 0; i < 3; i++) {
        x[i] = r->fx * v[i]->p[0] / v[i]->p[2] + r->cx;
        y[i] = r->fy * v[i]->p[1] / v[i]->p[2] + r->cy;
        if (!(fabs(x[i]) < MAX_PIXEL && fabs(y[i]) < MAX_PIXEL)) return;
        X[i] = llround(x[i] * SUB);
        Y[i] = llround(y[i] * SUB);
    }
    int64_t area = (X[1] - X[0]) * (Y[2] - Y[0]) - (Y[1] - Y[0]) * (X[2] - X[0]);
    if (area == 0) return;
    if (area < 0) { /* make the winding positive: swap vertices 1 and 2 */
        const cvert *tv = v[1]; v[1] = v[2]; v[2] = tv;
        int64_t tX = X[1]; X[1] = X[2]; X[2] = tX;
        int64_t tY = Y[1]; Y[1] = Y[2]; Y[2] = tY;
        double tx = x[1]; x[1] = x[2]; x[2] = tx;
        double ty = y[1]; y[1] = y[2]; y[2] = ty;
        area = -area;
    }
    int W = r->t->width, H = r->t->height;
    int64_t minX = X[0] < X[1] ? (X[0] < X[2] ? X[0] : X[2]) : (X[1] < X[2] ? X[1] : X[2]);
    int64_t maxX = X[0] > X[1] ? (X[0] > X[2] ? X[0] : X[2]) : (X[1] > X[2] ? X[1] : X[2]);
    int64_t minY = Y[0] < Y[1] ? (Y[0] < Y[2] ? Y[0] : Y[2]) : (Y[1] < Y[2] ? Y[1] : Y[2]);
    int64_t maxY = Y[0] > Y[1] ? (Y[0] > Y[2] ? Y[0] : Y[2]) : (Y[1] > Y[2] ? Y[1] : Y[2]);
    int64_t i0 = -floor_div(-minX, SUB), i1 = floor_div(maxX, SUB);
    int64_t j0 = -floor_div(-minY, SUB), j1 = floor_div(maxY, SUB);
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > W - 1) i1 = W - 1;
    if (j1 > H - 1) j1 = H - 1;
    if (i0 > i1 || j0 > j1) return;

    /* Coverage: w_k is the integer edge function of the edge opposite vertex k (w0 = E_12,
     * w1 = E_20, w2 = E_01) plus the tie-rule bias. Interpolation: the same edge functions of the
     * unsnapped coordinates in double, so that barycentrics are those of the true triangle. */
    int a[3] = {1, 2, 0}, b[3] = {2, 0, 1};
    int64_t dx[3], dy[3], row[3];
    double fdx[3], fdy[3], frow[3];
    for (int k = 0; k < 3; k++) {
        int64_t ax = X[a[k]], ay = Y[a[k]], bx = X[b[k]], by = Y[b[k]];
        dx[k] = -(by - ay) * SUB; /* change per pixel step in x */
        dy[k] = (bx - ax) * SUB;
        row[k] = (bx - ax) * (j0 * SUB - ay) - (by - ay) * (i0 * SUB - ax) + edge_bias(ax, ay, bx, by);
        double fax = x[a[k]], fay = y[a[k]], fbx = x[b[k]], fby = y[b[k]];
        fdx[k] = -(fby - fay);
        fdy[k] = fbx - fax;
        frow[k] = (fbx - fax) * ((double)j0 - fay) - (fby - fay) * ((double)i0 - fax);
    }
    double farea = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0]);
    if (farea == 0) return;
    double iz[3], cz[3][3];
    for (int k = 0; k < 3; k++) {
        iz[k] = 1.0 / v[k]->p[2];
        for (int c = 0; c < 3; c++) cz[k][c] = v[k]->c[c] * iz[k];
    }
    uakd_render_target *t = r->t;
    for (int64_t j = j0; j <= j1; j++) {
        int64_t w0 = row[0], w1 = row[1], w2 = row[2];
        size_t base = (size_t)j * (size_t)W;
        for (int64_t i = i0; i <= i1; i++) {
            if ((w0 | w1 | w2) >= 0) {
                double di = (double)(i - i0);
                double e0 = frow[0] + di * fdx[0], e1 = frow[1] + di * fdx[1], e2 = frow[2] + di * fdx[2];
                double s = 1.0 / (e0 + e1 + e2); /* = 1 / farea up to rounding: b sums to 1 */
                double b0 = e0 * s, b1 = e1 * s, b2 = e2 * s;
                double z = 1.0 / (b0 * iz[0] + b1 * iz[1] + b2 * iz[2]);
                size_t k = base + (size_t)i;
                if (z < t->depth[k]) {
                    t->depth[k] = (float)z;
                    t->id[k] = r->id;
                    for (int c = 0; c < 3; c++) {
                        double val = z * (b0 * cz[0][c] + b1 * cz[1][c] + b2 * cz[2][c]);
                        t->rgb[3 * k + c] = (uint8_t)(val <= 0 ? 0 : val >= 255 ? 255 : val + 0.5);
                    }
                }
            }
            w0 += dx[0]; w1 += dx[1]; w2 += dx[2];
        }
        for (int k = 0; k < 3; k++) {
            row[k] += dy[k];
            frow[k] += fdy[k];
        }
    }
}

static cvert lerp_vert(const cvert *a, const cvert *b, double s) {
    cvert o;
    for (int i = 0; i < 3; i++) {
        o.p[i] = a->p[i] + s * (b->p[i] - a->p[i]);
        o.c[i] = a->c[i] + s * (b->c[i] - a->c[i]);
    }
    return o;
}

/* Clips triangle v[0..2] against z >= z_near and rasterises the 0, 1 or 2 resulting triangles. */
static void clip_and_raster(const raster_ctx *r, const cvert v[3], double z_near) {
    int inside = (v[0].p[2] >= z_near) + (v[1].p[2] >= z_near) + (v[2].p[2] >= z_near);
    if (inside == 3) {
        raster(r, &v[0], &v[1], &v[2]);
        return;
    }
    if (inside == 0) return;
    cvert poly[4];
    int n = 0;
    for (int k = 0; k < 3; k++) {
        const cvert *a = &v[k], *b = &v[(k + 1) % 3];
        int ain = a->p[2] >= z_near, bin = b->p[2] >= z_near;
        if (ain) poly[n++] = *a;
        if (ain != bin) poly[n++] = lerp_vert(a, b, (z_near - a->p[2]) / (b->p[2] - a->p[2]));
    }
    for (int k = 1; k + 1 < n; k++) raster(r, &poly[0], &poly[k], &poly[k + 1]);
}

uakd_status uakd_render_mesh(uakd_render_target *t, const uakd_mesh *m, const uakd_pose *pose,
                             const uakd_camera *cam, const uakd_render_opts *opts) {
    for (int i = 0; i < 5; i++)
        if (cam->dist[i] != 0)
            return uakd_fail(UAKD_EINVAL, "render: camera has distortion coefficient %d = %g; render with a "
                                          "pinhole canvas (uakd_distort_map_new) and warp", i, cam->dist[i]);
    if (!(opts->z_near > 0)) return uakd_fail(UAKD_EINVAL, "render: z_near %g must be > 0", opts->z_near);
    if (!t->rgb || !t->depth || !t->id) return uakd_fail(UAKD_EINVAL, "render: target is not allocated");
    if (m->num_vertices < 0 || m->num_faces < 0 || (m->num_vertices > 0 && !m->xyz) || (m->num_faces > 0 && !m->faces))
        return uakd_fail(UAKD_EINVAL, "render: malformed mesh (%d vertices, %d faces)", m->num_vertices, m->num_faces);
    if (m->num_faces == 0) return UAKD_OK;
    cvert *cv = malloc((size_t)m->num_vertices * sizeof *cv);
    if (!cv) return uakd_fail(UAKD_ENOMEM, "render: cannot allocate %d vertices", m->num_vertices);

    for (int i = 0; i < m->num_vertices; i++) {
        double X[3] = {m->xyz[3 * i], m->xyz[3 * i + 1], m->xyz[3 * i + 2]};
        uakd_pose_apply(pose, X, cv[i].p);
        for (int c = 0; c < 3; c++) cv[i].c[c] = m->rgb ? m->rgb[3 * i + c] : 180;
        if (m->normals) {
            double n0[3] = {m->normals[3 * i], m->normals[3 * i + 1], m->normals[3 * i + 2]}, n[3];
            uakd_mat3_vec(pose->R, n0, n);
            double f = shade_factor(&opts->light, n, cv[i].p);
            for (int c = 0; c < 3; c++) cv[i].c[c] *= f;
        }
    }
    raster_ctx r = {t, cam->fx, cam->fy, cam->cx, cam->cy, opts->id};
    for (int f = 0; f < m->num_faces; f++) {
        const int32_t *idx = m->faces + 3 * f;
        if (idx[0] < 0 || idx[1] < 0 || idx[2] < 0 || idx[0] >= m->num_vertices || idx[1] >= m->num_vertices ||
            idx[2] >= m->num_vertices) {
            free(cv);
            return uakd_fail(UAKD_EINVAL, "render: face %d has a vertex index outside 0..%d", f, m->num_vertices - 1);
        }
        cvert v[3] = {cv[idx[0]], cv[idx[1]], cv[idx[2]]};
        double e1[3], e2[3], n[3];
        for (int c = 0; c < 3; c++) {
            e1[c] = v[1].p[c] - v[0].p[c];
            e2[c] = v[2].p[c] - v[0].p[c];
        }
        n[0] = e1[1] * e2[2] - e1[2] * e2[1];
        n[1] = e1[2] * e2[0] - e1[0] * e2[2];
        n[2] = e1[0] * e2[1] - e1[1] * e2[0];
        if (opts->cull_back_faces && dot3(n, v[0].p) >= 0) continue;
        if (!m->normals) {
            double s = shade_factor(&opts->light, n, v[0].p);
            for (int k = 0; k < 3; k++)
                for (int c = 0; c < 3; c++) v[k].c[c] *= s;
        }
        clip_and_raster(&r, v, opts->z_near);
    }
    free(cv);
    return UAKD_OK;
}

uakd_status uakd_distort_map_new(const uakd_camera *cam, int width, int height, uakd_distort_map *out) {
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > 65536 || height > 65536)
        return uakd_fail(UAKD_EINVAL, "distortion map: size %dx%d must be in 1..65536", width, height);
    if (!(cam->fx > 0 && cam->fy > 0))
        return uakd_fail(UAKD_EINVAL, "distortion map: focal lengths %g, %g must be > 0", cam->fx, cam->fy);
    size_t n = (size_t)width * (size_t)height;
    double *und = malloc(n * 2 * sizeof(double));
    out->src = malloc(n * sizeof(int32_t));
    if (!und || !out->src) {
        free(und);
        uakd_distort_map_free(out);
        return uakd_fail(UAKD_ENOMEM, "distortion map: cannot allocate %dx%d", width, height);
    }
    /* Undistort each output pixel centre: x <- x - (distort(x) - x_d), which converges when the
     * distortion's Jacobian is close to the identity (mild lens distortion). */
    double umin = INFINITY, umax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
    for (int j = 0; j < height; j++)
        for (int i = 0; i < width; i++) {
            double xd = (i - cam->cx) / cam->fx, yd = (j - cam->cy) / cam->fy, x = xd, y = yd, err = INFINITY;
            for (int it = 0; it < 200 && err > 1e-10; it++) {
                double uv[2];
                uakd_camera_distort_to_pixel(cam, x, y, uv);
                double ex = (uv[0] - cam->cx) / cam->fx - xd, ey = (uv[1] - cam->cy) / cam->fy - yd;
                x -= ex;
                y -= ey;
                err = fabs(ex) + fabs(ey);
            }
            if (!(err <= 1e-10)) {
                free(und);
                uakd_distort_map_free(out);
                return uakd_fail(UAKD_EDEGENERATE, "distortion map: cannot undistort pixel (%d, %d): the "
                                                   "distortion coefficients are too strong for this image size", i, j);
            }
            size_t k = (size_t)j * width + i;
            und[2 * k] = cam->fx * x + cam->cx;
            und[2 * k + 1] = cam->fy * y + cam->cy;
            umin = fmin(umin, und[2 * k]);
            umax = fmax(umax, und[2 * k]);
            vmin = fmin(vmin, und[2 * k + 1]);
            vmax = fmax(vmax, und[2 * k + 1]);
        }
    double u0 = floor(umin) - 1, v0 = floor(vmin) - 1;
    double cw = ceil(umax) + 1 - u0 + 1, ch = ceil(vmax) + 1 - v0 + 1;
    if (cw > 4.0 * width + 16 || ch > 4.0 * height + 16) {
        free(und);
        uakd_distort_map_free(out);
        return uakd_fail(UAKD_EDEGENERATE, "distortion map: the undistorted view (%.0fx%.0f) is far larger than "
                                           "the image (%dx%d); check the distortion coefficients", cw, ch, width, height);
    }
    out->width = width;
    out->height = height;
    out->canvas_width = (int)cw;
    out->canvas_height = (int)ch;
    out->canvas_cam = (uakd_camera){cam->fx, cam->fy, cam->cx - u0, cam->cy - v0, {0, 0, 0, 0, 0}};
    for (size_t k = 0; k < n; k++) {
        long ci = lround(und[2 * k] - u0), cj = lround(und[2 * k + 1] - v0);
        out->src[k] = (ci >= 0 && cj >= 0 && ci < out->canvas_width && cj < out->canvas_height)
                          ? (int32_t)(cj * out->canvas_width + ci) : -1;
    }
    free(und);
    return UAKD_OK;
}

void uakd_distort_map_free(uakd_distort_map *m) {
    free(m->src);
    memset(m, 0, sizeof *m);
}

uakd_status uakd_distort_apply(const uakd_distort_map *m, const uakd_render_target *canvas, uakd_render_target *out) {
    if (canvas->width != m->canvas_width || canvas->height != m->canvas_height || out->width != m->width ||
        out->height != m->height)
        return uakd_fail(UAKD_EINVAL, "distortion warp: canvas %dx%d / output %dx%d do not match the map (%dx%d / %dx%d)",
                         canvas->width, canvas->height, out->width, out->height, m->canvas_width, m->canvas_height,
                         m->width, m->height);
    size_t n = (size_t)m->width * (size_t)m->height;
    for (size_t k = 0; k < n; k++) {
        int32_t s = m->src[k];
        if (s < 0) {
            out->rgb[3 * k] = out->rgb[3 * k + 1] = out->rgb[3 * k + 2] = 0;
            out->depth[k] = INFINITY;
            out->id[k] = 0;
        } else {
            memcpy(out->rgb + 3 * k, canvas->rgb + 3 * (size_t)s, 3);
            out->depth[k] = canvas->depth[s];
            out->id[k] = canvas->id[s];
        }
    }
    return UAKD_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

long uakd_fill_polygon(uakd_image *im, const double (*pts)[2], int n, const uint8_t *colour, uint16_t *ids,
                       uint16_t id) {
    if (n < 3 || n > 64) return 0;
    double ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < n; k++) {
        ymin = fmin(ymin, pts[k][1]);
        ymax = fmax(ymax, pts[k][1]);
    }
    long j0 = (long)fmax(0, ceil(ymin)), j1 = (long)fmin(im->height - 1, floor(ymax));
    long filled = 0;
    double xs[64];
    for (long j = j0; j <= j1; j++) {
        int nx = 0;
        for (int k = 0; k < n; k++) { /* half-open crossing rule: each vertex counted once */
            const double *a = pts[k], *b = pts[(k + 1) % n];
            if ((a[1] <= j) != (b[1] <= j)) xs[nx++] = a[0] + (j - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
        }
        qsort(xs, (size_t)nx, sizeof xs[0], cmp_double);
        for (int k = 0; k + 1 < nx; k += 2) {
            long i0 = (long)fmax(0, ceil(xs[k])), i1 = (long)fmin(im->width, ceil(xs[k + 1]));
            for (long i = i0; i < i1; i++) {
                size_t p = (size_t)j * im->width + i;
                memcpy(im->data + p * im->channels, colour, (size_t)im->channels);
                if (ids) ids[p] = id;
                filled++;
            }
        }
    }
    return filled;
}
