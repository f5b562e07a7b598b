/* Crops and augmentation with exact geometry (see uakd/augment.h for the full derivation):
 *   A = K' Rz K^-1, K' = [[sx fx, 0, cx'], [0, sy fy, cy'], [0, 0, 1]],
 *   [cx'; cy'] = o - diag(sx fx, sy fy) (Rz K^-1 c)_xy  so that the image point c lands on the
 *   output centre o = ((W - 1) / 2, (H - 1) / 2); the pose in the crop camera is (Rz R, Rz t).
 * A sample is: decode (at 1/d size when the warp shrinks by d or more; pixel p of the full image
 * is (p - (d - 1) / 2) / d there), bilinear warp, photometric ops, ImageNet normalisation to CHW,
 * and the visible mask (mask_visib warped with nearest neighbour, or the keypoint hull). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/augment.h"
#include "uakd/image.h"

static const double PI = 3.14159265358979323846;

void uakd_augment_config_default(uakd_augment_config *cfg, int train) {
    *cfg = (uakd_augment_config){
        .out_width = 256,
        .out_height = 256,
        .mode = UAKD_CROP_BOX,
        .box_scale = 1.5,
        .train = train,
        .zoom_scale_jitter = 0.25,
        .zoom_shift_jitter = 0.25,
        .shift = 0.05,
        .scale = 0.05,
        .rotation_deg = 10,
        .photometric_p = 0.5,
        .brightness = 0.2,
        .contrast = 0.2,
        .blur_sigma = 1.0,
        .noise_std = 0.03,
    };
}

uakd_status uakd_augment_config_check(const uakd_augment_config *c) {
    if (c->out_width < 8 || c->out_width > 4096 || c->out_height < 8 || c->out_height > 4096)
        return uakd_fail(UAKD_EINVAL, "augment: output size %dx%d must be within 8..4096", c->out_width, c->out_height);
    if (c->mode != UAKD_CROP_BOX && c->mode != UAKD_CROP_FULL)
        return uakd_fail(UAKD_EINVAL, "augment: unknown crop mode %d", (int)c->mode);
    if (!(c->box_scale > 0 && c->box_scale < 100)) return uakd_fail(UAKD_EINVAL, "augment: box_scale must be in (0, 100)");
    const double unit[] = {c->zoom_scale_jitter, c->zoom_shift_jitter, c->shift, c->scale, c->photometric_p};
    const char *names[] = {"zoom_scale_jitter", "zoom_shift_jitter", "shift", "scale", "photometric_p"};
    for (int i = 0; i < 5; i++)
        if (!(unit[i] >= 0 && unit[i] <= (i == 4 ? 1.0 : 0.99)))
            return uakd_fail(UAKD_EINVAL, "augment: %s = %g must be in [0, %s]", names[i], unit[i], i == 4 ? "1" : "0.99");
    if (!(c->rotation_deg >= 0 && c->rotation_deg <= 180))
        return uakd_fail(UAKD_EINVAL, "augment: rotation_deg must be in [0, 180]");
    if (!(c->brightness >= 0 && c->brightness <= 1 && c->contrast >= 0 && c->contrast <= 1))
        return uakd_fail(UAKD_EINVAL, "augment: brightness and contrast must be in [0, 1]");
    if (!(c->blur_sigma >= 0 && c->blur_sigma <= 5 && c->noise_std >= 0 && c->noise_std <= 1))
        return uakd_fail(UAKD_EINVAL, "augment: blur_sigma must be in [0, 5] and noise_std in [0, 1]");
    return UAKD_OK;
}

uakd_status uakd_crop_params_draw(const uakd_augment_config *cfg, const double box[4], int img_w, int img_h,
                                  uakd_rng *rng, uakd_crop_params *out) {
    UAKD_TRY(uakd_augment_config_check(cfg));
    if (cfg->train && !rng) return uakd_fail(UAKD_EINVAL, "augment: training crops need a random stream");
    const int tr = cfg->train;
    double j[7] = {1, 0, 0, 0, 0, 1, 0}; /* zoom factor, zoom shift x, y, shift x, y, scale, angle */
    if (tr) {
        j[0] = uakd_rng_range(rng, 1 - cfg->zoom_scale_jitter, 1 + cfg->zoom_scale_jitter);
        j[1] = uakd_rng_range(rng, -cfg->zoom_shift_jitter, cfg->zoom_shift_jitter);
        j[2] = uakd_rng_range(rng, -cfg->zoom_shift_jitter, cfg->zoom_shift_jitter);
        j[3] = uakd_rng_range(rng, -cfg->shift, cfg->shift);
        j[4] = uakd_rng_range(rng, -cfg->shift, cfg->shift);
        j[5] = uakd_rng_range(rng, 1 - cfg->scale, 1 + cfg->scale);
        j[6] = uakd_rng_range(rng, -cfg->rotation_deg, cfg->rotation_deg) * PI / 180;
    }
    if (cfg->mode == UAKD_CROP_FULL) {
        if (img_w <= 0 || img_h <= 0) return uakd_fail(UAKD_EINVAL, "augment: image size %dx%d", img_w, img_h);
        out->center[0] = (img_w - 1) / 2.0 + j[3] * img_w;
        out->center[1] = (img_h - 1) / 2.0 + j[4] * img_h;
        out->scale[0] = (double)cfg->out_width / img_w * j[5];
        out->scale[1] = (double)cfg->out_height / img_h * j[5];
        out->angle = j[6];
        return UAKD_OK;
    }
    if (!box) return uakd_fail(UAKD_EINVAL, "augment: box crop without a box");
    for (int k = 0; k < 4; k++)
        if (!isfinite(box[k])) return uakd_fail(UAKD_EINVAL, "augment: non-finite box");
    double w = fmax(box[2], 1.0), h = fmax(box[3], 1.0);
    double side = cfg->box_scale * fmax(w, h) * j[0];
    out->center[0] = box[0] + box[2] / 2 + j[1] * w + j[3] * side;
    out->center[1] = box[1] + box[3] / 2 + j[2] * h + j[4] * side;
    double s = (cfg->out_width < cfg->out_height ? cfg->out_width : cfg->out_height) / side * j[5];
    out->scale[0] = out->scale[1] = s;
    out->angle = j[6];
    return UAKD_OK;
}

void uakd_affine_apply(const double A[6], const double p[2], double out[2]) {
    double u = A[0] * p[0] + A[1] * p[1] + A[2], v = A[3] * p[0] + A[4] * p[1] + A[5];
    out[0] = u;
    out[1] = v;
}

uakd_status uakd_crop_geometry_make(const double K[9], const double dist[5], const uakd_crop_params *p,
                                    int out_w, int out_h, uakd_crop_geometry *g) {
    if (!(K[0] > 0 && K[4] > 0) || K[1] != 0 || K[3] != 0 || K[6] != 0 || K[7] != 0 || K[8] != 1)
        return uakd_fail(UAKD_EINVAL, "crop: camera matrix must be [fx 0 cx; 0 fy cy; 0 0 1] with fx, fy > 0");
    if (!(p->scale[0] > 0 && p->scale[1] > 0 && isfinite(p->scale[0]) && isfinite(p->scale[1]) &&
          isfinite(p->center[0]) && isfinite(p->center[1]) && isfinite(p->angle)))
        return uakd_fail(UAKD_EINVAL, "crop: scales must be positive and all parameters finite");
    if (out_w <= 0 || out_h <= 0) return uakd_fail(UAKD_EINVAL, "crop: output size %dx%d", out_w, out_h);
    if (p->angle != 0 && (dist[2] != 0 || dist[3] != 0))
        return uakd_fail(UAKD_EINVAL, "crop: in-plane rotation is not exact with tangential distortion (p1, p2); "
                                      "set rotation_deg to 0 for this camera");
    const double fx = K[0], fy = K[4], cx = K[2], cy = K[5];
    const double co = cos(p->angle), si = sin(p->angle);
    double n[2] = {(p->center[0] - cx) / fx, (p->center[1] - cy) / fy};
    double m[2] = {co * n[0] - si * n[1], si * n[0] + co * n[1]};
    double sfx = p->scale[0] * fx, sfy = p->scale[1] * fy;
    double ox = (out_w - 1) / 2.0, oy = (out_h - 1) / 2.0;
    double ncx = ox - sfx * m[0], ncy = oy - sfy * m[1];
    memset(g, 0, sizeof *g);
    g->width = out_w;
    g->height = out_h;
    double Kn[9] = {sfx, 0, ncx, 0, sfy, ncy, 0, 0, 1};
    memcpy(g->K, Kn, sizeof Kn);
    memcpy(g->dist, dist, 5 * sizeof *dist);
    double Rz[9] = {co, -si, 0, si, co, 0, 0, 0, 1};
    memcpy(g->Rz, Rz, sizeof Rz);
    /* A = K' Rz K^-1 with K^-1 = [1/fx 0 -cx/fx; 0 1/fy -cy/fy; 0 0 1] */
    double Kinv[9] = {1 / fx, 0, -cx / fx, 0, 1 / fy, -cy / fy, 0, 0, 1}, T[9];
    uakd_mat3_mul(Kn, Rz, T);
    uakd_mat3_mul(T, Kinv, T);
    memcpy(g->A, T, 6 * sizeof *T);
    double det = T[0] * T[4] - T[1] * T[3];
    if (!(fabs(det) > 0)) return uakd_fail(UAKD_EDEGENERATE, "crop: singular warp");
    double Li[4] = {T[4] / det, -T[1] / det, -T[3] / det, T[0] / det};
    g->Ainv[0] = Li[0];
    g->Ainv[1] = Li[1];
    g->Ainv[2] = -(Li[0] * T[2] + Li[1] * T[5]);
    g->Ainv[3] = Li[2];
    g->Ainv[4] = Li[3];
    g->Ainv[5] = -(Li[2] * T[2] + Li[3] * T[5]);
    return UAKD_OK;
}

void uakd_crop_pose(const uakd_crop_geometry *g, const uakd_pose *in, uakd_pose *out) {
    uakd_pose r;
    uakd_mat3_mul(g->Rz, in->R, r.R);
    uakd_mat3_vec(g->Rz, in->t, r.t);
    *out = r;
}

/* ---- sample preparation ---- */

void uakd_sample_scratch_free(uakd_sample_scratch *s) {
    if (!s) return;
    free(s->work);
    free(s->tmp);
    free(s->crop);
    s->work = s->tmp = NULL;
    s->crop = NULL;
    s->capacity = 0; /* the cache is not owned and stays attached */
}

static uakd_status scratch_reserve(uakd_sample_scratch *s, size_t pixels) {
    if (s->capacity >= pixels) return UAKD_OK;
    uakd_sample_scratch_free(s);
    s->work = malloc(pixels * 3 * sizeof(float));
    s->tmp = malloc(pixels * 3 * sizeof(float));
    s->crop = malloc(pixels * 3);
    if (!s->work || !s->tmp || !s->crop) {
        uakd_sample_scratch_free(s);
        return uakd_fail(UAKD_ENOMEM, "sample: out of memory for %zu pixels", pixels);
    }
    s->capacity = pixels;
    return UAKD_OK;
}

static uakd_camera camera_of(const double K[9], const double dist[5]) {
    uakd_camera c = {K[0], K[4], K[2], K[5], {0}};
    memcpy(c.dist, dist, sizeof c.dist);
    return c;
}

static uakd_status keypoint_box(const uakd_object_info *o, const uakd_camera *cam, const uakd_pose *pose,
                                double box[4], const char *name) {
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < o->num_keypoints; k++) {
        double uv[2];
        if (!uakd_camera_project(cam, pose, o->keypoints[k], uv))
            return uakd_fail(UAKD_EDEGENERATE, "%s: keypoint %d of object %d is behind the camera", name, k, o->obj_id);
        for (int a = 0; a < 2; a++) lo[a] = fmin(lo[a], uv[a]), hi[a] = fmax(hi[a], uv[a]);
    }
    box[0] = lo[0];
    box[1] = lo[1];
    box[2] = hi[0] - lo[0];
    box[3] = hi[1] - lo[1];
    return UAKD_OK;
}

/* Separable Gaussian blur of an h x w x 3 float image (edges clamped). */
static void blur(float *img, float *tmp, int w, int h, double sigma) {
    int r = (int)ceil(3 * sigma);
    if (r < 1) return;
    if (r > 15) r = 15;
    float k[31];
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] = (float)(k[i] / sum);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    v += k[i + r] * img[((size_t)y * w + xx) * 3 + c];
                }
                tmp[((size_t)y * w + x) * 3 + c] = v;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    v += k[i + r] * tmp[((size_t)yy * w + x) * 3 + c];
                }
                img[((size_t)y * w + x) * 3 + c] = v;
            }
}

/* Photometric ops on [0, 1] values (order and probabilities in augment.h). The random draws are
 * made whether or not an op fires, so each op's stream does not depend on the others. */
static void photometric(const uakd_augment_config *cfg, uakd_rng *rng, float *img, float *tmp, int w, int h) {
    size_t n = (size_t)w * h * 3;
    double p = cfg->photometric_p;
    int do_b = uakd_rng_uniform(rng) < p, do_c = uakd_rng_uniform(rng) < p;
    int do_blur = uakd_rng_uniform(rng) < p, do_n = uakd_rng_uniform(rng) < p;
    double b = uakd_rng_range(rng, -cfg->brightness, cfg->brightness);
    double c = uakd_rng_range(rng, 1 - cfg->contrast, 1 + cfg->contrast);
    double sigma = uakd_rng_uniform(rng) * cfg->blur_sigma;
    double nstd = uakd_rng_uniform(rng) * cfg->noise_std;
    if (do_b && b != 0)
        for (size_t i = 0; i < n; i++) img[i] += (float)b;
    if (do_c) {
        double mean = 0;
        for (size_t i = 0; i < n; i++) mean += img[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) img[i] = (float)(mean + (img[i] - mean) * c);
    }
    if (do_blur && sigma > 0.3) blur(img, tmp, w, h, sigma);
    if (do_n && nstd > 0)
        for (size_t i = 0; i < n; i += 2) { /* Box-Muller, both outputs of each pair */
            double rad = nstd * sqrt(-2.0 * log(1.0 - uakd_rng_uniform(rng))), ang = 2 * PI * uakd_rng_uniform(rng);
            img[i] += (float)(rad * cos(ang));
            if (i + 1 < n) img[i + 1] += (float)(rad * sin(ang));
        }
    for (size_t i = 0; i < n; i++) img[i] = img[i] < 0 ? 0 : img[i] > 1 ? 1 : img[i];
}

/* Convex hull (monotone chain) of n points; returns the number of hull vertices, counter-clockwise
 * in a y-up frame. */
static int convex_hull(double pts[][2], int n, double hull[][2]) {
    if (n < 3) return 0;
    for (int i = 1; i < n; i++) /* insertion sort by (x, y) */
        for (int j = i; j > 0 && (pts[j][0] < pts[j - 1][0] || (pts[j][0] == pts[j - 1][0] && pts[j][1] < pts[j - 1][1])); j--) {
            double t0 = pts[j][0], t1 = pts[j][1];
            pts[j][0] = pts[j - 1][0], pts[j][1] = pts[j - 1][1];
            pts[j - 1][0] = t0, pts[j - 1][1] = t1;
        }
    int k = 0;
    for (int pass = 0; pass < 2; pass++) {
        int start = k;
        for (int ii = 0; ii < n; ii++) {
            int i = pass == 0 ? ii : n - 1 - ii;
            while (k >= start + 2 &&
                   (hull[k - 1][0] - hull[k - 2][0]) * (pts[i][1] - hull[k - 2][1]) -
                           (hull[k - 1][1] - hull[k - 2][1]) * (pts[i][0] - hull[k - 2][0]) <= 0)
                k--;
            hull[k][0] = pts[i][0];
            hull[k][1] = pts[i][1];
            k++;
        }
        k--; /* the last point repeats the first of the other chain */
    }
    return k;
}

static int inside_hull(double hull[][2], int n, double x, double y) {
    if (n < 3) return 0;
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        if ((hull[j][0] - hull[i][0]) * (y - hull[i][1]) - (hull[j][1] - hull[i][1]) * (x - hull[i][0]) < 0) return 0;
    }
    return 1;
}

static uakd_status mask_from_file(const uakd_dataset *ds, const uakd_instance *in, const uakd_crop_geometry *g,
                                  uakd_image_cache *cache, uint8_t *mask) {
    uakd_image tmp, out = {g->width, g->height, 1, mask};
    const uakd_image *m;
    UAKD_TRY(uakd_image_cache_read(cache, in->mask_path, 1, 1, &tmp, &m));
    uakd_status st = UAKD_OK;
    if (m->width != ds->width || m->height != ds->height)
        st = uakd_fail(UAKD_EFORMAT, "%s: mask is %dx%d, the dataset's images are %dx%d", in->mask_path, m->width,
                       m->height, ds->width, ds->height);
    if (st == UAKD_OK) st = uakd_image_warp_affine(m, g->Ainv, 1, 0, &out);
    uakd_image_free(&tmp);
    for (size_t i = 0; st == UAKD_OK && i < (size_t)g->width * g->height; i++) mask[i] = mask[i] != 0;
    return st;
}

static void mask_from_hull(const uakd_object_info *o, const uakd_instance *in, const uakd_camera *cam,
                           const uakd_crop_geometry *g, uint8_t *mask) {
    double pts[UAKD_MAX_KEYPOINTS][2], hull[2 * UAKD_MAX_KEYPOINTS + 2][2];
    int n = 0;
    for (int k = 0; k < o->num_keypoints; k++)
        if (uakd_camera_project(cam, &in->pose, o->keypoints[k], pts[n])) n++;
    int nh = convex_hull(pts, n, hull);
    const double *bv = in->bbox_visib;
    for (int y = 0; y < g->height; y++)
        for (int x = 0; x < g->width; x++) {
            double p[2];
            uakd_affine_apply(g->Ainv, (double[2]){x, y}, p);
            int in_box = bv[2] > 0 && bv[3] > 0 && p[0] >= bv[0] && p[0] <= bv[0] + bv[2] && p[1] >= bv[1] &&
                         p[1] <= bv[1] + bv[3];
            mask[(size_t)y * g->width + x] = (uint8_t)(in_box && inside_hull(hull, nh, p[0], p[1]));
        }
}

uakd_status uakd_sample_prepare(const uakd_dataset *ds, int index, const uakd_augment_config *cfg,
                                const double box[4], uakd_rng *rng, uakd_sample_scratch *scratch, float *image,
                                uint8_t *mask, uakd_target *target) {
    if (!ds || index < 0 || index >= ds->num_instances)
        return uakd_fail(UAKD_EINVAL, "sample: index %d outside the dataset's %d instances", index,
                         ds ? ds->num_instances : 0);
    const uakd_instance *in = &ds->instances[index];
    const uakd_object_info *o = &ds->objects[in->object];
    uakd_camera cam = camera_of(in->K, ds->dist);
    const int W = cfg->out_width, H = cfg->out_height;
    UAKD_TRY(uakd_augment_config_check(cfg));
    UAKD_TRY(scratch_reserve(scratch, (size_t)W * H));

    uakd_target t;
    memset(&t, 0, sizeof t);
    t.instance = index;
    t.obj_id = in->obj_id;
    t.diameter = o->diameter;
    if (box) memcpy(t.box, box, sizeof t.box);
    else UAKD_TRY(keypoint_box(o, &cam, &in->pose, t.box, in->image_path));
    uakd_rng sample_rng = {{0}};
    if (cfg->train) {
        if (!rng) return uakd_fail(UAKD_EINVAL, "sample: training samples need a random stream");
        sample_rng = *rng;
    }
    uakd_crop_params cp;
    UAKD_TRY(uakd_crop_params_draw(cfg, t.box, ds->width, ds->height, cfg->train ? &sample_rng : NULL, &cp));
    UAKD_TRY(uakd_crop_geometry_make(in->K, ds->dist, &cp, W, H, &t.crop));
    uakd_crop_pose(&t.crop, &in->pose, &t.pose);
    uakd_camera crop_cam = camera_of(t.crop.K, t.crop.dist);
    t.num_keypoints = o->num_keypoints;
    for (int k = 0; k < o->num_keypoints; k++) {
        memcpy(t.kp3d[k], o->keypoints[k], sizeof t.kp3d[k]);
        if (!uakd_camera_project(&crop_cam, &t.pose, o->keypoints[k], t.kp2d[k]))
            return uakd_fail(UAKD_EDEGENERATE, "%s: keypoint %d is behind the camera", in->image_path, k);
    }

    /* decode at 1/d when the warp shrinks by at least d */
    const double *A = t.crop.A;
    double shrink = fmax(hypot(A[0], A[3]), hypot(A[1], A[4]));
    int d = 1;
    while (d < 8 && 2 * d * shrink <= 1.0) d *= 2;
    uakd_image tmp;
    const uakd_image *src;
    UAKD_TRY(uakd_image_cache_read(scratch->cache, in->image_path, 3, d, &tmp, &src));
    if (src->width != (ds->width + d - 1) / d || src->height != (ds->height + d - 1) / d) {
        uakd_status st = uakd_fail(UAKD_EFORMAT, "%s: image is %dx%d at 1/%d scale, expected %dx%d (the dataset's %dx%d)",
                                   in->image_path, src->width, src->height, d, (ds->width + d - 1) / d,
                                   (ds->height + d - 1) / d, ds->width, ds->height);
        uakd_image_free(&tmp);
        return st;
    }
    const double *Ai = t.crop.Ainv, off = (d - 1) / 2.0;
    double M[6] = {Ai[0] / d, Ai[1] / d, (Ai[2] - off) / d, Ai[3] / d, Ai[4] / d, (Ai[5] - off) / d};
    uakd_image crop = {W, H, 3, scratch->crop};
    uakd_status st = uakd_image_warp_affine(src, M, 0, 0, &crop);
    uakd_image_free(&tmp);
    UAKD_TRY(st);

    float *work = scratch->work;
    const size_t npix = (size_t)W * H;
    for (size_t i = 0; i < 3 * npix; i++) work[i] = scratch->crop[i] * (1.0f / 255.0f);
    if (cfg->train) photometric(cfg, &sample_rng, work, scratch->tmp, W, H);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < npix; i++) image[c * npix + i] = (work[3 * i + c] - mean[c]) / stdv[c];

    if (mask) {
        t.mask_from_file = in->mask_path != NULL;
        if (in->mask_path) UAKD_TRY(mask_from_file(ds, in, &t.crop, scratch->cache, mask));
        else mask_from_hull(o, in, &cam, &t.crop, mask);
    }
    if (cfg->train) *rng = sample_rng;
    *target = t;
    return UAKD_OK;
}
