/* One synthetic image: random objects at random poses, lit by a random light, rendered through
 * the dataset camera over a random background, then occluders, noise and blur.
 *
 * Rotation: R(q) of a unit quaternion q = g / |g|, g ~ N(0, I_4): uniform on SO(3). Translation:
 * t = z K^-1 (u, v, 1) - R c puts the box centre c at depth z ~ U(zmin, zmax) and at pixel
 * (u, v) ~ U(image) (pinhole inverse; the acceptance test uses the full distorted projection of
 * the 8 box corners, whose hull contains the object's projection). Cameras with distortion are
 * rendered on a pinhole canvas and warped (uakd_distort_map). Per instance: px_count_all and
 * bbox_obj from its silhouette alone, px_count_visib and bbox_visib from the final visible map. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "uakd/render.h"
#include "uakd/synth.h"

static const uakd_camera linemod_cam = {572.4114, 573.57043, 325.2611, 242.04899, {0, 0, 0, 0, 0}};
static const uakd_camera speedplus_cam = {2988.5795163815555, 2988.3401159176124, 960, 600,
                                          {-0.22383016606510672, 0.51409797089106379, -0.00066499611998340662,
                                           -0.00021404771667484594, -0.13124227429077406}};

void uakd_synth_config_default(uakd_synth_config *c, uakd_synth_format format) {
    memset(c, 0, sizeof *c);
    c->format = format;
    c->count = 100;
    c->val_fraction = 0.2;
    c->width = format == UAKD_SYNTH_BOP ? 640 : 1920;
    c->height = format == UAKD_SYNTH_BOP ? 480 : 1200;
    c->depth_min = format == UAKD_SYNTH_BOP ? 600 : 3;
    c->depth_max = format == UAKD_SYNTH_BOP ? 1200 : 10;
    c->min_elevation_deg = -1000;
    c->max_roll_deg = 15;
    c->seed = 1;
    c->per_image = 1;
    c->noise_sigma = 2;
    c->blur_prob = 0.3;
    c->jpeg_quality = 95;
}

void uakd_synth_camera(const uakd_synth_config *c, uakd_camera *cam) {
    int bop = c->format == UAKD_SYNTH_BOP;
    *cam = bop ? linemod_cam : speedplus_cam;
    double sx = (double)c->width / (bop ? 640 : 1920), sy = (double)c->height / (bop ? 480 : 1200);
    cam->fx *= sx;
    cam->fy *= sy;
    cam->cx = (cam->cx + 0.5) * sx - 0.5;
    cam->cy = (cam->cy + 0.5) * sy - 0.5;
}

/* obj_NNNNNN.ply -> NNNNNN, else 0. */
static int bop_id_from_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int id = 0, len = 0;
    if (sscanf(base, "obj_%6d.ply%n", &id, &len) == 1 && len == (int)strlen(base) && id > 0) return id;
    return 0;
}

void uakd_synth_objects_free(uakd_synth_object *objs, int num) {
    if (!objs) return;
    for (int i = 0; i < num; i++) uakd_mesh_free(&objs[i].mesh);
    free(objs);
}

uakd_status uakd_synth_objects_load(const uakd_synth_config *c, uakd_synth_object **objs, int *num) {
    *objs = NULL;
    *num = 0;
    if (c->num_meshes < 0 || c->num_meshes > UAKD_SYNTH_MAX_MESHES)
        return uakd_fail(UAKD_EINVAL, "synth: %d meshes given; at most %d", c->num_meshes, UAKD_SYNTH_MAX_MESHES);
    int n = c->num_meshes > 0 ? c->num_meshes : 1;
    uakd_synth_object *o = calloc((size_t)n, sizeof *o);
    if (!o) return uakd_fail(UAKD_ENOMEM, "synth: out of memory for %d objects", n);
    uakd_status st = UAKD_OK;
    for (int i = 0; i < n && st == UAKD_OK; i++) {
        if (c->num_meshes > 0) {
            st = uakd_mesh_read_ply(c->mesh_paths[i], &o[i].mesh);
            int id = bop_id_from_name(c->mesh_paths[i]);
            o[i].obj_id = id ? id : i + 1;
        } else {
            st = uakd_tango_mesh(&o[i].mesh);
            o[i].obj_id = 1;
        }
        if (st == UAKD_OK && o[i].mesh.num_faces == 0)
            st = uakd_fail(UAKD_EFORMAT, "%s: the mesh has no faces to render", c->mesh_paths[i]);
        if (st == UAKD_OK) st = uakd_mesh_bbox(&o[i].mesh, o[i].min, o[i].max);
        if (st == UAKD_OK) st = uakd_mesh_diameter(&o[i].mesh, &o[i].diameter);
        for (int j = 0; j < i && st == UAKD_OK; j++)
            if (o[j].obj_id == o[i].obj_id)
                st = uakd_fail(UAKD_EINVAL, "synth: meshes %s and %s both get object id %d; rename one",
                               c->mesh_paths[j], c->mesh_paths[i], o[i].obj_id);
    }
    if (st != UAKD_OK) {
        uakd_synth_objects_free(o, n);
        return st;
    }
    *objs = o;
    *num = n;
    return UAKD_OK;
}

void uakd_random_rotation(uakd_rng *r, double R[9]) {
    double q[4], n2;
    do {
        n2 = 0;
        for (int i = 0; i < 4; i++) {
            q[i] = uakd_rng_normal(r);
            n2 += q[i] * q[i];
        }
    } while (n2 < 1e-12);
    uakd_quat_to_rot(q, R);
}

void uakd_random_upper_view(uakd_rng *r, double min_elevation_deg, double max_roll_deg, double R[9]) {
    const double deg = 0.017453292519943295;
    double s0 = sin(fmax(-90.0, fmin(90.0, min_elevation_deg)) * deg);
    double el = asin(uakd_rng_range(r, s0, 1.0)), az = uakd_rng_range(r, 0, 2 * M_PI);
    double roll = uakd_rng_range(r, -max_roll_deg, max_roll_deg) * deg;
    /* camera axes in object coordinates: z towards the object, x horizontal, y = z x x (down) */
    double z[3] = {-cos(el) * cos(az), -cos(el) * sin(az), -sin(el)}, x[3] = {-sin(az), cos(az), 0};
    double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
    double cr = cos(roll), sr = sin(roll);
    for (int k = 0; k < 3; k++) {
        R[k] = cr * x[k] - sr * y[k];
        R[3 + k] = sr * x[k] + cr * y[k];
        R[6 + k] = z[k];
    }
}

static uakd_status sample_pose(const uakd_camera *cam, int width, int height, const double min[3], const double max[3],
                               double zmin, double zmax, double margin, const uakd_synth_config *views, uakd_rng *r,
                               uakd_pose *out) {
    if (!(zmin > 0 && zmax >= zmin))
        return uakd_fail(UAKD_EINVAL, "synth: depth range %g..%g must be positive and increasing", zmin, zmax);
    double corners[24], c[3];
    uakd_bbox_corners(min, max, corners);
    for (int k = 0; k < 3; k++) c[k] = 0.5 * (min[k] + max[k]);
    for (int attempt = 0; attempt < 1000; attempt++) {
        uakd_pose p;
        if (views && views->min_elevation_deg >= -90)
            uakd_random_upper_view(r, views->min_elevation_deg, views->max_roll_deg, p.R);
        else
            uakd_random_rotation(r, p.R);
        double z = uakd_rng_range(r, zmin, zmax), u = uakd_rng_range(r, 0, width - 1),
               v = uakd_rng_range(r, 0, height - 1), Rc[3];
        uakd_mat3_vec(p.R, c, Rc);
        p.t[0] = z * (u - cam->cx) / cam->fx - Rc[0];
        p.t[1] = z * (v - cam->cy) / cam->fy - Rc[1];
        p.t[2] = z - Rc[2];
        int ok = 1;
        for (int k = 0; k < 8 && ok; k++) {
            double uv[2];
            ok = uakd_camera_project(cam, &p, corners + 3 * k, uv) && uv[0] >= margin && uv[1] >= margin &&
                 uv[0] <= width - 1 - margin && uv[1] <= height - 1 - margin;
        }
        if (ok) {
            *out = p;
            return UAKD_OK;
        }
    }
    return uakd_fail(UAKD_EINVAL, "synth: cannot fit an object of box size %g x %g x %g inside a %dx%d image at "
                                  "depth %g..%g; increase the depth range or the image size",
                     max[0] - min[0], max[1] - min[1], max[2] - min[2], width, height, zmin, zmax);
}

uakd_status uakd_synth_sample_pose(const uakd_camera *cam, int width, int height, const double min[3],
                                   const double max[3], double zmin, double zmax, double margin, uakd_rng *r,
                                   uakd_pose *out) {
    return sample_pose(cam, width, height, min, max, zmin, zmax, margin, NULL, r, out);
}

uakd_status uakd_synth_sample_pose_cfg(const uakd_synth_config *c, const uakd_camera *cam, const double min[3],
                                       const double max[3], uakd_rng *r, uakd_pose *out) {
    return sample_pose(cam, c->width, c->height, min, max, c->depth_min, c->depth_max, 1.0, c, r, out);
}

struct uakd_synth_renderer {
    uakd_synth_config cfg;
    uakd_camera cam;
    const uakd_synth_object *objs;
    int num_objs;
    int distorted;
    uakd_distort_map map;
    uakd_render_target canvas, alone, out; /* out aliases canvas when there is no distortion */
    char **bg_files;
    int num_bg;
};

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static uakd_status list_backgrounds(uakd_synth_renderer *r, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return uakd_fail(UAKD_EIO, "%s: cannot open the background directory", dir);
    struct dirent *e;
    int cap = 0;
    uakd_status st = UAKD_OK;
    while ((e = readdir(d)) && st == UAKD_OK) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        if (r->num_bg == cap) {
            cap = cap ? 2 * cap : 64;
            char **nf = realloc(r->bg_files, (size_t)cap * sizeof *nf);
            if (!nf) {
                st = uakd_fail(UAKD_ENOMEM, "%s: out of memory listing backgrounds", dir);
                break;
            }
            r->bg_files = nf;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        if (!path) {
            st = uakd_fail(UAKD_ENOMEM, "%s: out of memory listing backgrounds", dir);
            break;
        }
        snprintf(path, len, "%s/%s", dir, e->d_name);
        r->bg_files[r->num_bg++] = path;
    }
    closedir(d);
    if (st == UAKD_OK && r->num_bg == 0)
        st = uakd_fail(UAKD_EINVAL, "%s: no .png/.jpg/.jpeg images to use as backgrounds", dir);
    if (st == UAKD_OK) qsort(r->bg_files, (size_t)r->num_bg, sizeof *r->bg_files, cmp_str); /* deterministic */
    return st;
}

void uakd_synth_renderer_free(uakd_synth_renderer *r) {
    if (!r) return;
    uakd_render_target_free(&r->canvas);
    uakd_render_target_free(&r->alone);
    if (r->distorted) uakd_render_target_free(&r->out);
    uakd_distort_map_free(&r->map);
    for (int i = 0; i < r->num_bg; i++) free(r->bg_files[i]);
    free(r->bg_files);
    free(r);
}

uakd_status uakd_synth_renderer_new(const uakd_synth_config *c, const uakd_synth_object *objs, int num_objs,
                                    uakd_synth_renderer **out) {
    *out = NULL;
    if (num_objs <= 0) return uakd_fail(UAKD_EINVAL, "synth: no objects to render");
    if (c->per_image < 1 || c->per_image > UAKD_SYNTH_MAX_INSTANCES)
        return uakd_fail(UAKD_EINVAL, "synth: %d instances per image; use 1..%d", c->per_image,
                         UAKD_SYNTH_MAX_INSTANCES);
    uakd_synth_renderer *r = calloc(1, sizeof *r);
    if (!r) return uakd_fail(UAKD_ENOMEM, "synth: out of memory");
    r->cfg = *c;
    r->objs = objs;
    r->num_objs = num_objs;
    uakd_synth_camera(c, &r->cam);
    for (int k = 0; k < 5; k++) r->distorted |= r->cam.dist[k] != 0;
    uakd_status st = UAKD_OK;
    int cw = c->width, ch = c->height;
    if (r->distorted) {
        st = uakd_distort_map_new(&r->cam, c->width, c->height, &r->map);
        cw = r->map.canvas_width;
        ch = r->map.canvas_height;
    }
    if (st == UAKD_OK) st = uakd_render_target_alloc(&r->canvas, cw, ch);
    if (st == UAKD_OK && c->per_image > 1) st = uakd_render_target_alloc(&r->alone, cw, ch);
    if (st == UAKD_OK && r->distorted) st = uakd_render_target_alloc(&r->out, c->width, c->height);
    if (st == UAKD_OK && c->bg_dir) st = list_backgrounds(r, c->bg_dir);
    if (st != UAKD_OK) {
        uakd_synth_renderer_free(r);
        return st;
    }
    if (!r->distorted) r->out = r->canvas;
    *out = r;
    return UAKD_OK;
}

void uakd_synth_frame_free(uakd_synth_frame *f) {
    uakd_image_free(&f->rgb);
    free(f->visib);
    memset(f, 0, sizeof *f);
}

/* A random crop of a random bg_dir image, decoded at the smallest JPEG scale that still covers
 * the image and enlarged by nearest neighbour when smaller. */
static uakd_status bg_crop(const uakd_synth_renderer *r, uakd_image *im, uakd_rng *rng) {
    const char *path = r->bg_files[uakd_rng_below(rng, (uint64_t)r->num_bg)];
    int w, h, denom = 1;
    UAKD_TRY(uakd_image_read_size(path, &w, &h));
    while (denom < 8 && (w + 2 * denom - 1) / (2 * denom) >= im->width && (h + 2 * denom - 1) / (2 * denom) >= im->height)
        denom *= 2;
    uakd_image src = {0};
    UAKD_TRY(uakd_image_read(path, 3, denom, &src));
    double s = fmax(fmax((double)im->width / src.width, (double)im->height / src.height), 1.0);
    double cw = im->width / s, ch = im->height / s; /* crop size in source pixels */
    double x0 = uakd_rng_range(rng, 0, src.width - cw), y0 = uakd_rng_range(rng, 0, src.height - ch);
    for (int j = 0; j < im->height; j++) {
        int sy = (int)(y0 + j / s);
        sy = sy < src.height ? sy : src.height - 1;
        for (int i = 0; i < im->width; i++) {
            int sx = (int)(x0 + i / s);
            sx = sx < src.width ? sx : src.width - 1;
            memcpy(im->data + 3 * ((size_t)j * im->width + i), src.data + 3 * ((size_t)sy * src.width + sx), 3);
        }
    }
    uakd_image_free(&src);
    return UAKD_OK;
}

/* Silhouette statistics of id `id` in an id map: pixel count and x, y, w, h box (-1s if empty). */
static long id_stats(const uint16_t *ids, int w, int h, uint16_t id, int box[4]) {
    long n = 0;
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++)
            if (ids[(size_t)j * w + i] == id) {
                n++;
                if (i < x0) x0 = i;
                if (i > x1) x1 = i;
                if (j < y0) y0 = j;
                if (j > y1) y1 = j;
            }
    if (n == 0) {
        box[0] = box[1] = box[2] = box[3] = -1;
    } else {
        box[0] = x0;
        box[1] = y0;
        box[2] = x1 - x0 + 1;
        box[3] = y1 - y0 + 1;
    }
    return n;
}

static void random_light(uakd_rng *rng, int space, uakd_light *l) {
    double d[3], n;
    do {
        for (int k = 0; k < 3; k++) d[k] = uakd_rng_normal(rng);
        n = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    } while (n < 1e-9);
    for (int k = 0; k < 3; k++) l->dir[k] = d[k] / n;
    l->dir[2] = -fabs(l->dir[2]); /* from the camera's half-space */
    l->intensity = space ? uakd_rng_range(rng, 0.7, 1.2) : uakd_rng_range(rng, 0.5, 1.0);
    l->ambient = space ? uakd_rng_range(rng, 0.05, 0.25) : uakd_rng_range(rng, 0.15, 0.45);
}

/* A random star-shaped polygon (corners in angular order around a centre) over a random
 * instance's box, filled with a random colour. */
static void add_occluder(uakd_synth_frame *f, uakd_rng *rng) {
    const uakd_synth_annot *a = &f->inst[uakd_rng_below(rng, (uint64_t)f->num_instances)];
    const int *b = a->bbox_obj;
    if (b[2] <= 0) return;
    double cx = b[0] + uakd_rng_range(rng, 0, b[2]), cy = b[1] + uakd_rng_range(rng, 0, b[3]);
    double rad = uakd_rng_range(rng, 0.15, 0.4) * 0.5 * (b[2] + b[3]);
    int n = 3 + (int)uakd_rng_below(rng, 6);
    double ang[8], pts[8][2];
    for (int k = 0; k < n; k++) ang[k] = uakd_rng_range(rng, 0, 2 * M_PI);
    for (int k = 1; k < n; k++) /* insertion sort: corners in angular order make a simple polygon */
        for (int j = k; j > 0 && ang[j] < ang[j - 1]; j--) {
            double t = ang[j]; ang[j] = ang[j - 1]; ang[j - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        double rr = rad * uakd_rng_range(rng, 0.6, 1.0);
        pts[k][0] = cx + rr * cos(ang[k]);
        pts[k][1] = cy + rr * sin(ang[k]);
    }
    uint8_t col[3];
    for (int k = 0; k < 3; k++) col[k] = (uint8_t)uakd_rng_below(rng, 256);
    uakd_fill_polygon(&f->rgb, (const double(*)[2])pts, n, col, f->visib, 0);
}

static uakd_status render_instances(uakd_synth_renderer *r, uakd_render_target *canvas, const uakd_synth_frame *f,
                                    int only, const uakd_light *light) {
    uakd_render_target_clear(canvas);
    for (int k = 0; k < f->num_instances; k++) {
        if (only >= 0 && k != only) continue;
        const uakd_synth_annot *a = &f->inst[k];
        uakd_render_opts o = {*light, 1e-3 * r->cfg.depth_min, 0, (uint16_t)(k + 1)};
        const uakd_camera *cam = r->distorted ? &r->map.canvas_cam : &r->cam;
        UAKD_TRY(uakd_render_mesh(canvas, &r->objs[a->object].mesh, &a->pose, cam, &o));
    }
    return UAKD_OK;
}

uakd_status uakd_synth_render_frame(uakd_synth_renderer *r, uakd_rng *rng, uakd_synth_frame *f) {
    const uakd_synth_config *c = &r->cfg;
    int W = c->width, H = c->height, space = c->format == UAKD_SYNTH_SPEEDPLUS;
    size_t npx = (size_t)W * H;
    if (!f->rgb.data) {
        UAKD_TRY(uakd_image_alloc(&f->rgb, W, H, 3));
        f->visib = malloc(npx * sizeof *f->visib);
        if (!f->visib) {
            uakd_synth_frame_free(f);
            return uakd_fail(UAKD_ENOMEM, "synth: out of memory for a %dx%d frame", W, H);
        }
    } else if (f->rgb.width != W || f->rgb.height != H) {
        return uakd_fail(UAKD_EINVAL, "synth: frame is %dx%d, renderer %dx%d", f->rgb.width, f->rgb.height, W, H);
    }
    f->num_instances = c->per_image;
    for (int k = 0; k < f->num_instances; k++) {
        uakd_synth_annot *a = &f->inst[k];
        memset(a, 0, sizeof *a);
        a->object = (int)uakd_rng_below(rng, (uint64_t)r->num_objs);
        const uakd_synth_object *o = &r->objs[a->object];
        UAKD_TRY(uakd_synth_sample_pose_cfg(c, &r->cam, o->min, o->max, rng, &a->pose));
    }
    uakd_light light;
    random_light(rng, space, &light);

    /* whole silhouettes, one instance at a time when there are several */
    for (int k = 0; k < f->num_instances && f->num_instances > 1; k++) {
        UAKD_TRY(render_instances(r, &r->alone, f, k, &light));
        const uakd_render_target *t = &r->alone;
        if (r->distorted) {
            UAKD_TRY(uakd_distort_apply(&r->map, &r->alone, &r->out));
            t = &r->out;
        }
        f->inst[k].px_count_all = id_stats(t->id, W, H, (uint16_t)(k + 1), f->inst[k].bbox_obj);
    }
    UAKD_TRY(render_instances(r, &r->canvas, f, -1, &light));
    if (r->distorted) UAKD_TRY(uakd_distort_apply(&r->map, &r->canvas, &r->out));
    if (f->num_instances == 1) f->inst[0].px_count_all = id_stats(r->out.id, W, H, 1, f->inst[0].bbox_obj);

    if (space && uakd_rng_uniform(rng) < 0.5) {
        uakd_synth_background(&f->rgb, 3, rng);
    } else {
        int kind = (int)uakd_rng_below(rng, r->num_bg > 0 ? 4 : 3);
        if (kind == 3)
            UAKD_TRY(bg_crop(r, &f->rgb, rng));
        else
            uakd_synth_background(&f->rgb, kind, rng);
    }
    for (size_t k = 0; k < npx; k++) {
        f->visib[k] = r->out.id[k];
        if (r->out.id[k]) memcpy(f->rgb.data + 3 * k, r->out.rgb + 3 * k, 3);
    }
    int occluders = c->max_occluders > 0 ? (int)uakd_rng_below(rng, (uint64_t)c->max_occluders + 1) : 0;
    for (int k = 0; k < occluders; k++) add_occluder(f, rng);
    uakd_image_add_noise(&f->rgb, c->noise_sigma, rng);
    if (uakd_rng_uniform(rng) < c->blur_prob) UAKD_TRY(uakd_image_blur3(&f->rgb));
    for (int k = 0; k < f->num_instances; k++)
        f->inst[k].px_count_visib = id_stats(f->visib, W, H, (uint16_t)(k + 1), f->inst[k].bbox_visib);
    return UAKD_OK;
}
