/* uakd_synth_run: renders a whole dataset (images in parallel, each from its own random stream
 * rng_split(seed, image index), so the output does not depend on the thread count) and writes it
 * in BOP or SPEED+ layout (see synth.h), finishing with a marker that records the settings.
 * Split: the first count - round(count * val_fraction) images are train, the rest held out. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#define OMP(directive) _Pragma(#directive)
#else
#define OMP(directive)
#endif

#include "uakd/synth.h"
#include "uakd/version.h"

#define MARKER "uakd_synth_done.json"

static uakd_status mkdir_p(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return uakd_fail(UAKD_EINVAL, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return uakd_fail(UAKD_EIO, "%s: cannot create directory (%s)", buf, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    return UAKD_OK;
}

/* snprintf into a fixed buffer, failing on truncation. */
#define PATHF(buf, ...)                                                                   \
    do {                                                                                  \
        if (snprintf(buf, sizeof buf, __VA_ARGS__) >= (int)sizeof buf)                    \
            return uakd_fail(UAKD_EINVAL, "synth: output path too long under %s", c->out_dir); \
    } while (0)

static uakd_status read_all(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading", path);
    if (err) {
        free(buf);
        return uakd_fail(UAKD_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return UAKD_OK;
}

static uakd_status write_all(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot create (%s)", path, strerror(errno));
    size_t w = fwrite(data, 1, len, f);
    int bad = fclose(f) != 0 || w != len;
    return bad ? uakd_fail(UAKD_EIO, "%s: write failed (disk full?)", path) : UAKD_OK;
}

static uakd_status write_json(const char *path, cJSON *root) {
    if (!root) return uakd_fail(UAKD_ENOMEM, "%s: out of memory building JSON", path);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return uakd_fail(UAKD_ENOMEM, "%s: out of memory printing JSON", path);
    uakd_status st = write_all(path, text, strlen(text));
    cJSON_free(text);
    return st;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Everything that determines the output, as one string (threads excluded: they do not). The
 * library version and a layout number (bumped whenever the written files change) are part of
 * it, so a dataset written by an older uakd is regenerated. */
static uakd_status settings_string(const uakd_synth_config *c, char **out) {
    char head[1024];
    snprintf(head, sizeof head,
             "uakd %s synth layout 2 format=%s count=%ld val_fraction=%.17g size=%dx%d depth=%.17g:%.17g seed=%llu "
             "per_image=%d occluders=%d noise=%.17g blur=%.17g jpeg=%d bg_dir=%s views=%.17g:%.17g",
             UAKD_VERSION_STRING, c->format == UAKD_SYNTH_BOP ? "bop" : "speedplus", c->count, c->val_fraction, c->width, c->height,
             c->depth_min, c->depth_max, (unsigned long long)c->seed, c->per_image, c->max_occluders, c->noise_sigma,
             c->blur_prob, c->jpeg_quality, c->bg_dir ? c->bg_dir : "-", c->min_elevation_deg, c->max_roll_deg);
    size_t cap = strlen(head) + 1 + (size_t)c->num_meshes * 4200;
    char *s = malloc(cap);
    if (!s) return uakd_fail(UAKD_ENOMEM, "synth: out of memory");
    size_t n = (size_t)snprintf(s, cap, "%s", head);
    for (int i = 0; i < c->num_meshes; i++) {
        char *data;
        size_t len;
        uakd_status st = read_all(c->mesh_paths[i], &data, &len);
        if (st != UAKD_OK) {
            free(s);
            return st;
        }
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, data, len);
        free(data);
        n += (size_t)snprintf(s + n, cap - n, " mesh=%.4000s:%016llx", c->mesh_paths[i], (unsigned long long)h);
    }
    *out = s;
    return UAKD_OK;
}

/* 1 when out_dir holds a finished dataset made with exactly these settings. */
static int marker_matches(const char *path, const char *settings) {
    char *data;
    size_t len;
    if (access(path, F_OK) != 0 || read_all(path, &data, &len) != UAKD_OK) {
        uakd_clear_error();
        return 0;
    }
    cJSON *root = cJSON_Parse(data);
    free(data);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "settings");
    int same = cJSON_IsString(s) && !strcmp(s->valuestring, settings);
    cJSON_Delete(root);
    return same;
}

/* A JSON number that reads back as exactly v: the shortest of %.15g, %.16g, %.17g that
 * round-trips (cJSON's own printing may lose the last bit). */
static cJSON *exact_number(double v) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *number_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, exact_number(v[i]));
    return a;
}

static cJSON *int_array(const int *v, int n) {
    double d[4];
    for (int i = 0; i < n; i++) d[i] = v[i];
    return number_array(d, n);
}

static uakd_status copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    UAKD_TRY(read_all(from, &data, &len));
    uakd_status st = write_all(to, data, len);
    free(data);
    return st;
}

static uakd_status write_bop_static(const uakd_synth_config *c, const uakd_camera *cam,
                                    const uakd_synth_object *objs, int num) {
    char path[4200];
    PATHF(path, "%s/models", c->out_dir);
    UAKD_TRY(mkdir_p(path));
    PATHF(path, "%s/models_eval", c->out_dir);
    UAKD_TRY(mkdir_p(path));
    cJSON *info = cJSON_CreateObject();
    for (int i = 0; i < num; i++) {
        PATHF(path, "%s/models/obj_%06d.ply", c->out_dir, objs[i].obj_id);
        uakd_status st = copy_file(c->mesh_paths[i], path);
        if (st == UAKD_OK && snprintf(path, sizeof path, "%s/models_eval/obj_%06d.ply", c->out_dir, objs[i].obj_id) <
                                 (int)sizeof path)
            st = copy_file(c->mesh_paths[i], path); /* the rendered mesh is also the evaluation mesh */
        if (st != UAKD_OK) {
            cJSON_Delete(info);
            return st;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "diameter", exact_number(objs[i].diameter));
        const char *mins[3] = {"min_x", "min_y", "min_z"}, *sizes[3] = {"size_x", "size_y", "size_z"};
        for (int k = 0; k < 3; k++) cJSON_AddItemToObject(o, mins[k], exact_number(objs[i].min[k]));
        for (int k = 0; k < 3; k++) cJSON_AddItemToObject(o, sizes[k], exact_number(objs[i].max[k] - objs[i].min[k]));
        char key[16];
        snprintf(key, sizeof key, "%d", objs[i].obj_id);
        cJSON_AddItemToObject(info, key, o);
    }
    PATHF(path, "%s/models/models_info.json", c->out_dir);
    UAKD_TRY(write_json(path, info));
    cJSON *camj = cJSON_CreateObject();
    cJSON_AddItemToObject(camj, "cx", exact_number(cam->cx));
    cJSON_AddItemToObject(camj, "cy", exact_number(cam->cy));
    cJSON_AddNumberToObject(camj, "depth_scale", 1.0);
    cJSON_AddItemToObject(camj, "fx", exact_number(cam->fx));
    cJSON_AddItemToObject(camj, "fy", exact_number(cam->fy));
    cJSON_AddNumberToObject(camj, "height", c->height);
    cJSON_AddNumberToObject(camj, "width", c->width);
    PATHF(path, "%s/camera.json", c->out_dir);
    return write_json(path, camj);
}

/* Scene JSON files of one BOP split: images [first, first + n) of the run, numbered from 0. */
static uakd_status write_bop_split(const uakd_synth_config *c, const char *split, const uakd_camera *cam,
                                   const uakd_synth_object *objs, const uakd_synth_annot *ann, long first, long n) {
    cJSON *gt = cJSON_CreateObject(), *info = cJSON_CreateObject(), *camj = cJSON_CreateObject();
    double K[9] = {cam->fx, 0, cam->cx, 0, cam->fy, cam->cy, 0, 0, 1};
    for (long im = 0; im < n; im++) {
        char key[24];
        snprintf(key, sizeof key, "%ld", im);
        cJSON *g = cJSON_CreateArray(), *inf = cJSON_CreateArray(), *cj = cJSON_CreateObject();
        for (int k = 0; k < c->per_image; k++) {
            const uakd_synth_annot *a = &ann[(first + im) * c->per_image + k];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToObject(e, "cam_R_m2c", number_array(a->pose.R, 9));
            cJSON_AddItemToObject(e, "cam_t_m2c", number_array(a->pose.t, 3));
            cJSON_AddNumberToObject(e, "obj_id", objs[a->object].obj_id);
            cJSON_AddItemToArray(g, e);
            cJSON *f = cJSON_CreateObject();
            cJSON_AddItemToObject(f, "bbox_obj", int_array(a->bbox_obj, 4));
            cJSON_AddItemToObject(f, "bbox_visib", int_array(a->bbox_visib, 4));
            cJSON_AddNumberToObject(f, "px_count_all", (double)a->px_count_all);
            cJSON_AddNumberToObject(f, "px_count_valid", (double)a->px_count_all);
            cJSON_AddNumberToObject(f, "px_count_visib", (double)a->px_count_visib);
            cJSON_AddItemToObject(f, "visib_fract", exact_number(a->px_count_all > 0 ? (double)a->px_count_visib /
                                                                                      (double)a->px_count_all : 0.0));
            cJSON_AddItemToArray(inf, f);
        }
        cJSON_AddItemToObject(gt, key, g);
        cJSON_AddItemToObject(info, key, inf);
        cJSON_AddItemToObject(cj, "cam_K", number_array(K, 9));
        cJSON_AddNumberToObject(cj, "depth_scale", 1.0);
        cJSON_AddItemToObject(camj, key, cj);
    }
    char path[4200];
    uakd_status st = UAKD_OK;
    if (snprintf(path, sizeof path, "%s/%s/000000/scene_gt.json", c->out_dir, split) < (int)sizeof path) {
        st = write_json(path, gt);
        gt = NULL;
    }
    if (st == UAKD_OK && snprintf(path, sizeof path, "%s/%s/000000/scene_gt_info.json", c->out_dir, split) < (int)sizeof path) {
        st = write_json(path, info);
        info = NULL;
    }
    if (st == UAKD_OK && snprintf(path, sizeof path, "%s/%s/000000/scene_camera.json", c->out_dir, split) < (int)sizeof path) {
        st = write_json(path, camj);
        camj = NULL;
    }
    cJSON_Delete(gt);
    cJSON_Delete(info);
    cJSON_Delete(camj);
    return st;
}

static uakd_status write_speedplus_static(const uakd_synth_config *c, const uakd_camera *cam) {
    const double pitch = 5.86e-6; /* SPEED+ pixel pitch (m) at 1920 x 1200 */
    double ppx = pitch * 1920.0 / c->width, ppy = pitch * 1200.0 / c->height;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "Nu", c->width);
    cJSON_AddNumberToObject(j, "Nv", c->height);
    cJSON_AddItemToObject(j, "ppx", exact_number(ppx));
    cJSON_AddItemToObject(j, "ppy", exact_number(ppy));
    cJSON_AddItemToObject(j, "fx", exact_number(cam->fx * ppx));
    cJSON_AddItemToObject(j, "fy", exact_number(cam->fy * ppy));
    cJSON_AddItemToObject(j, "ccx", exact_number(cam->cx));
    cJSON_AddItemToObject(j, "ccy", exact_number(cam->cy));
    double rows[3][3] = {{cam->fx, 0, cam->cx}, {0, cam->fy, cam->cy}, {0, 0, 1}};
    cJSON *K = cJSON_CreateArray();
    for (int r = 0; r < 3; r++) cJSON_AddItemToArray(K, number_array(rows[r], 3));
    cJSON_AddItemToObject(j, "cameraMatrix", K);
    cJSON_AddItemToObject(j, "distCoeffs", number_array(cam->dist, 5));
    char path[4200];
    PATHF(path, "%s/camera.json", c->out_dir);
    return write_json(path, j);
}

static uakd_status write_speedplus_labels(const uakd_synth_config *c, const char *name,
                                          const uakd_synth_annot *ann, long first, long n) {
    cJSON *list = cJSON_CreateArray();
    for (long i = first; i < first + n; i++) {
        cJSON *e = cJSON_CreateObject();
        char fname[32];
        snprintf(fname, sizeof fname, "img%06ld.jpg", i + 1);
        double q[4];
        uakd_rot_to_quat(ann[i].pose.R, q);
        cJSON_AddStringToObject(e, "filename", fname);
        cJSON_AddItemToObject(e, "q_vbs2tango_true", number_array(q, 4));
        cJSON_AddItemToObject(e, "r_Vo2To_vbs_true", number_array(ann[i].pose.t, 3));
        cJSON_AddItemToArray(list, e);
    }
    char path[4200];
    PATHF(path, "%s/synthetic/%s.json", c->out_dir, name);
    return write_json(path, list);
}

/* Per-thread output buffers. */
typedef struct writer {
    uakd_image grey, mask;
} writer;

static uakd_status write_frame(const uakd_synth_config *c, long i, long n_train, const uakd_synth_frame *f, writer *w) {
    char path[4200];
    if (c->format == UAKD_SYNTH_SPEEDPLUS) {
        if (!w->grey.data) UAKD_TRY(uakd_image_alloc(&w->grey, c->width, c->height, 1));
        size_t n = (size_t)c->width * c->height;
        for (size_t k = 0; k < n; k++) {
            const uint8_t *p = f->rgb.data + 3 * k;
            w->grey.data[k] = (uint8_t)((77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
        }
        PATHF(path, "%s/synthetic/images/img%06ld.jpg", c->out_dir, i + 1);
        return uakd_image_write(path, &w->grey, c->jpeg_quality);
    }
    const char *split = i < n_train ? "train" : "test";
    long im = i < n_train ? i : i - n_train;
    PATHF(path, "%s/%s/000000/rgb/%06ld.jpg", c->out_dir, split, im);
    UAKD_TRY(uakd_image_write(path, &f->rgb, c->jpeg_quality));
    if (!w->mask.data) UAKD_TRY(uakd_image_alloc(&w->mask, c->width, c->height, 1));
    size_t n = (size_t)c->width * c->height;
    for (int k = 0; k < f->num_instances; k++) {
        for (size_t p = 0; p < n; p++) w->mask.data[p] = f->visib[p] == k + 1 ? 255 : 0;
        PATHF(path, "%s/%s/000000/mask_visib/%06ld_%06d.png", c->out_dir, split, im, k);
        UAKD_TRY(uakd_image_write(path, &w->mask, 0));
    }
    return UAKD_OK;
}

static uakd_status check_config(const uakd_synth_config *c) {
    if (!c->out_dir || !*c->out_dir) return uakd_fail(UAKD_EINVAL, "synth: no output directory");
    if (c->format != UAKD_SYNTH_BOP && c->format != UAKD_SYNTH_SPEEDPLUS)
        return uakd_fail(UAKD_EINVAL, "synth: unknown format %d", (int)c->format);
    if (c->format == UAKD_SYNTH_BOP && c->num_meshes == 0)
        return uakd_fail(UAKD_EINVAL, "synth: the BOP format needs at least one mesh (PLY in mm); the built-in "
                                      "Tango (metres) is for the SPEED+ format");
    if (c->format == UAKD_SYNTH_SPEEDPLUS && c->per_image != 1)
        return uakd_fail(UAKD_EINVAL, "synth: SPEED+ images hold one object; per_image is %d", c->per_image);
    if (c->count < 1 || c->count > 10000000) return uakd_fail(UAKD_EINVAL, "synth: count %ld must be in 1..1e7", c->count);
    if (!(c->val_fraction >= 0 && c->val_fraction < 1))
        return uakd_fail(UAKD_EINVAL, "synth: val_fraction %g must be in [0, 1)", c->val_fraction);
    if (c->width < 16 || c->height < 16 || c->width > 8192 || c->height > 8192)
        return uakd_fail(UAKD_EINVAL, "synth: image size %dx%d must be in 16..8192", c->width, c->height);
    if (c->max_occluders < 0 || c->max_occluders > 64)
        return uakd_fail(UAKD_EINVAL, "synth: max_occluders %d must be in 0..64", c->max_occluders);
    if (!(c->noise_sigma >= 0 && c->noise_sigma <= 100))
        return uakd_fail(UAKD_EINVAL, "synth: noise sigma %g must be in 0..100", c->noise_sigma);
    if (!(c->blur_prob >= 0 && c->blur_prob <= 1))
        return uakd_fail(UAKD_EINVAL, "synth: blur probability %g must be in 0..1", c->blur_prob);
    if (c->jpeg_quality < 1 || c->jpeg_quality > 100)
        return uakd_fail(UAKD_EINVAL, "synth: JPEG quality %d must be in 1..100", c->jpeg_quality);
    if (c->threads < 0) return uakd_fail(UAKD_EINVAL, "synth: threads %d must be >= 0", c->threads);
    return UAKD_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uakd_status make_dirs(const uakd_synth_config *c, long n_train) {
    char path[4200];
    if (c->format == UAKD_SYNTH_SPEEDPLUS) {
        PATHF(path, "%s/synthetic/images", c->out_dir);
        return mkdir_p(path);
    }
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        if ((s == 0 && n_train == 0) || (s == 1 && n_train == c->count)) continue;
        PATHF(path, "%s/%s/000000/rgb", c->out_dir, splits[s]);
        UAKD_TRY(mkdir_p(path));
        PATHF(path, "%s/%s/000000/mask_visib", c->out_dir, splits[s]);
        UAKD_TRY(mkdir_p(path));
    }
    return UAKD_OK;
}

/* Shared state of the parallel loop; changed only inside the critical section. */
typedef struct run_state {
    uakd_status first; /* the first failure (or interruption) */
    char message[1024];
    int stop;          /* read by every thread before each image */
    long done;
} run_state;

static void record_failure(run_state *rs, uakd_status st, const char *message) {
    OMP(omp atomic write)
    rs->stop = 1;
    if (rs->first == UAKD_OK) {
        rs->first = st;
        snprintf(rs->message, sizeof rs->message, "%s", message);
    }
}

/* Renders and writes every image; annotations into ann (count x per_image). */
static uakd_status render_all(const uakd_synth_config *c, const uakd_synth_object *objs, int num_objs, long n_train,
                              uakd_synth_annot *ann, uakd_synth_progress_fn progress, void *user) {
    uakd_rng base;
    uakd_rng_seed(&base, c->seed);
    run_state rs;
    memset(&rs, 0, sizeof rs);
#ifdef _OPENMP
    int nt = c->threads > 0 ? c->threads : omp_get_max_threads();
#endif
    OMP(omp parallel num_threads(nt))
    {
        uakd_synth_renderer *rend = NULL;
        uakd_synth_frame frame;
        writer w;
        memset(&frame, 0, sizeof frame);
        memset(&w, 0, sizeof w);
        uakd_status st = uakd_synth_renderer_new(c, objs, num_objs, &rend);
        if (st != UAKD_OK) {
            OMP(omp critical(uakd_synth_run))
            record_failure(&rs, st, uakd_last_error());
        }
        OMP(omp for schedule(dynamic, 1))
        for (long i = 0; i < c->count; i++) {
            int stopped;
            OMP(omp atomic read)
            stopped = rs.stop;
            if (stopped || st != UAKD_OK) continue;
            uakd_rng rng;
            uakd_rng_split(&base, (uint64_t)i, &rng);
            st = uakd_synth_render_frame(rend, &rng, &frame);
            if (st == UAKD_OK) st = write_frame(c, i, n_train, &frame, &w);
            if (st == UAKD_OK) memcpy(&ann[i * c->per_image], frame.inst, (size_t)c->per_image * sizeof *ann);
            OMP(omp critical(uakd_synth_run))
            {
                rs.done++;
                if (st != UAKD_OK) {
                    record_failure(&rs, st, uakd_last_error());
                } else if (progress && progress(rs.done, c->count, user)) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "synth: stopped after %ld of %ld images", rs.done, c->count);
                    record_failure(&rs, UAKD_EINTERRUPTED, msg);
                }
            }
        }
        uakd_image_free(&w.grey);
        uakd_image_free(&w.mask);
        uakd_synth_frame_free(&frame);
        uakd_synth_renderer_free(rend);
    }
    return rs.first == UAKD_OK ? UAKD_OK : uakd_fail(rs.first, "%s", rs.message);
}

uakd_status uakd_synth_run(const uakd_synth_config *c, uakd_synth_progress_fn progress, void *user,
                           uakd_synth_result *result) {
    memset(result, 0, sizeof *result);
    UAKD_TRY(check_config(c));
    char *settings = NULL;
    UAKD_TRY(settings_string(c, &settings));
    char marker[4200];
    if (snprintf(marker, sizeof marker, "%s/%s", c->out_dir, MARKER) >= (int)sizeof marker) {
        free(settings);
        return uakd_fail(UAKD_EINVAL, "synth: output path too long: %s", c->out_dir);
    }
    if (marker_matches(marker, settings)) {
        free(settings);
        result->images = c->count;
        result->reused = 1;
        uakd_log(UAKD_LOG_INFO, "%s: finished dataset with the same settings found; reusing it", c->out_dir);
        return UAKD_OK;
    }
    if (access(marker, F_OK) == 0) {
        uakd_log(UAKD_LOG_WARN, "%s: holds a dataset made with other settings; overwriting it (files of a larger "
                                "earlier run may remain)", c->out_dir);
        unlink(marker);
    }
    double t0 = now_s();
    long n_val = lround((double)c->count * c->val_fraction), n_train = c->count - n_val;
    uakd_synth_object *objs = NULL;
    int num_objs = 0;
    uakd_synth_annot *ann = NULL;
    uakd_camera cam;
    uakd_synth_camera(c, &cam);
    uakd_status st = uakd_synth_objects_load(c, &objs, &num_objs);
    if (st == UAKD_OK) {
        ann = calloc((size_t)c->count * (size_t)c->per_image, sizeof *ann);
        if (!ann) st = uakd_fail(UAKD_ENOMEM, "synth: out of memory for %ld annotations", c->count);
    }
    if (st == UAKD_OK) st = make_dirs(c, n_train);
    if (st == UAKD_OK)
        st = c->format == UAKD_SYNTH_BOP ? write_bop_static(c, &cam, objs, num_objs) : write_speedplus_static(c, &cam);
    if (st == UAKD_OK) st = render_all(c, objs, num_objs, n_train, ann, progress, user);
    if (st == UAKD_OK && c->format == UAKD_SYNTH_BOP) {
        if (n_train > 0) st = write_bop_split(c, "train", &cam, objs, ann, 0, n_train);
        if (st == UAKD_OK && n_val > 0) st = write_bop_split(c, "test", &cam, objs, ann, n_train, n_val);
    } else if (st == UAKD_OK) {
        st = write_speedplus_labels(c, "train", ann, 0, n_train);
        if (st == UAKD_OK) st = write_speedplus_labels(c, "validation", ann, n_train, n_val);
    }
    if (st == UAKD_OK) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "settings", settings);
        cJSON_AddNumberToObject(m, "images", (double)c->count);
        st = write_json(marker, m);
    }
    free(settings);
    free(ann);
    uakd_synth_objects_free(objs, num_objs);
    if (st != UAKD_OK) return st;
    result->images = c->count;
    result->seconds = now_s() - t0;
    return UAKD_OK;
}
