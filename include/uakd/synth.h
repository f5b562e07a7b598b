/* Synthetic datasets: objects rendered at random poses over random backgrounds, written in BOP
 * or SPEED+ format so the real-data loaders read them unchanged.
 *
 * Dataset layouts written by uakd_synth_run (see also the CLI's `uakd synth --help`):
 *
 * BOP (mesh units, normally mm):
 *   camera.json                          fx fy cx cy width height depth_scale
 *   models/obj_NNNNNN.ply                copies of the input meshes; models/models_info.json
 *                                        (diameter, min_x/y/z, size_x/y/z); models_eval/ the
 *                                        same copies (the rendered mesh is the evaluation mesh)
 *   train/000000/  and  test/000000/     the two splits (test holds the last round(count *
 *                                        val_fraction) images; no test/ when that is 0), each:
 *     rgb/NNNNNN.jpg                     images numbered from 0 within the split
 *     mask_visib/NNNNNN_KKKKKK.png       visible mask of instance K (0 / 255)
 *     scene_gt.json                      im -> [{cam_R_m2c (row-major), cam_t_m2c, obj_id}]
 *     scene_camera.json                  im -> {cam_K, depth_scale}
 *     scene_gt_info.json                 im -> [{bbox_obj, bbox_visib, px_count_all,
 *                                        px_count_valid, px_count_visib, visib_fract}]
 *   (no depth images are written.)
 * SPEED+ (metres):
 *   camera.json                          Nu Nv ppx ppy fx fy ccx ccy cameraMatrix distCoeffs
 *   synthetic/images/imgNNNNNN.jpg       greyscale, numbered from 1 over both splits
 *   synthetic/train.json, synthetic/validation.json
 *                                        [{filename, q_vbs2tango_true (w,x,y,z),
 *                                          r_Vo2To_vbs_true}], x_cam = R(q) X + r
 *   Images are rendered through the lens: a pinhole canvas is warped with the camera's
 *   distortion, so the distorted projection of a body point (uakd_camera_project) lands on it.
 * Both: uakd_synth_done.json records the settings; a rerun with identical settings (and
 * identical mesh files) returns at once with result.reused = 1. */
#ifndef UAKD_SYNTH_H
#define UAKD_SYNTH_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/image.h"
#include "uakd/mesh.h"
#include "uakd/rng.h"
#include "uakd/status.h"

/* ---- The built-in Tango-like spacecraft (metres, SPEED+ body frame) ---- */

/* The 11 official Tango keypoints (tangoPoints.mat): 0-3 corners of the top (solar panel) face,
 * 4-7 corners of the bottom face, 8-10 antenna tips. */
extern const double uakd_tango_keypoints[11][3];
/* A Tango-like mesh: body box, solar panel plate on top, three antenna rods. Its vertices
 * include every keypoint exactly (as float). Free with uakd_mesh_free. */
uakd_status uakd_tango_mesh(uakd_mesh *out);

/* ---- Configuration ---- */

typedef enum uakd_synth_format { UAKD_SYNTH_BOP = 0, UAKD_SYNTH_SPEEDPLUS = 1 } uakd_synth_format;

enum { UAKD_SYNTH_MAX_MESHES = 64, UAKD_SYNTH_MAX_INSTANCES = 16 };

typedef struct uakd_synth_config {
    uakd_synth_format format;
    const char *out_dir;
    const char *const *mesh_paths; /* PLY files (BOP: mm; SPEED+: m); none = the built-in Tango */
    int num_meshes;
    long count;                    /* images in all */
    double val_fraction;           /* share of the images in the held-out split */
    int width, height;
    double depth_min, depth_max;   /* range of the object centre's z (mesh units) */
    double min_elevation_deg;      /* < -90: uniform rotations (the default); otherwise LINEMOD-like
                                      views: the camera above the object's x-y plane (object z up)
                                      at elevation >= this, any azimuth, roll within +-max_roll_deg */
    double max_roll_deg;
    uint64_t seed;
    int per_image;                 /* object instances per image (SPEED+: 1) */
    int max_occluders;             /* 0..max_occluders random polygons in front of the objects */
    const char *bg_dir;            /* PNG/JPEG images to crop backgrounds from, or NULL */
    double noise_sigma;            /* camera noise, std in grey levels (approximately Gaussian) */
    double blur_prob;              /* probability of a 3x3 binomial blur per image */
    int jpeg_quality;
    int threads;                   /* 0: all (OpenMP); ignored without OpenMP */
} uakd_synth_config;

/* Defaults: BOP 640x480, LINEMOD camera, depth 600..1200; SPEED+ 1920x1200, SPEED+ camera,
 * depth 3..10; both: count 100, val_fraction 0.2, seed 1, per_image 1, max_occluders 0,
 * noise_sigma 2, blur_prob 0.3, jpeg_quality 95, threads 0, no meshes, no bg_dir. */
void uakd_synth_config_default(uakd_synth_config *c, uakd_synth_format format);

/* The camera of a dataset: the LINEMOD (BOP) or SPEED+ camera, its K scaled to width x height
 * (u' = (u + 0.5) s - 0.5 per axis), distortion (SPEED+ only) unchanged. */
void uakd_synth_camera(const uakd_synth_config *c, uakd_camera *cam);

/* ---- Objects and poses ---- */

typedef struct uakd_synth_object {
    uakd_mesh mesh;
    int obj_id;           /* BOP id: NNNNNN from a file named obj_NNNNNN.ply, else position + 1 */
    double min[3], max[3];
    double diameter;
} uakd_synth_object;

/* Loads the config's meshes (or builds the Tango when there are none). */
uakd_status uakd_synth_objects_load(const uakd_synth_config *c, uakd_synth_object **objs, int *num);
void uakd_synth_objects_free(uakd_synth_object *objs, int num);

/* A uniformly distributed rotation (from a uniformly distributed unit quaternion). */
void uakd_random_rotation(uakd_rng *r, double R[9]);
/* A LINEMOD-like view: the camera on the upper cap of the view sphere (elevation uniform in
 * sin over [min_elevation_deg, 90], azimuth uniform), looking at the object centre, upright
 * (object z up in the image), rolled about its axis by U(-max_roll_deg, max_roll_deg). */
void uakd_random_upper_view(uakd_rng *r, double min_elevation_deg, double max_roll_deg, double R[9]);
/* A uniform rotation and a translation putting the box centre at depth z in [zmin, zmax] and at
 * a uniform image point, redrawn until the 8 box corners project (with distortion) at least
 * margin pixels inside the image. Fails with UAKD_EINVAL after 1000 tries. */
uakd_status uakd_synth_sample_pose(const uakd_camera *cam, int width, int height, const double min[3],
                                   const double max[3], double zmin, double zmax, double margin, uakd_rng *r,
                                   uakd_pose *out);
/* As uakd_synth_sample_pose with the rotation drawn as the config says (uniform or upper views). */
uakd_status uakd_synth_sample_pose_cfg(const uakd_synth_config *c, const uakd_camera *cam, const double min[3],
                                       const double max[3], uakd_rng *r, uakd_pose *out);

/* ---- One rendered image ---- */

typedef struct uakd_synth_annot {
    int object;             /* index into the object list */
    uakd_pose pose;         /* model -> camera */
    int bbox_obj[4];        /* x, y, w, h of the whole silhouette (occlusion ignored) */
    int bbox_visib[4];      /* of the visible pixels; all -1 when none */
    long px_count_all, px_count_visib;
} uakd_synth_annot;

typedef struct uakd_synth_frame {
    uakd_image rgb;         /* width x height x 3 */
    uint16_t *visib;        /* per pixel: instance index + 1 of the visible surface, 0 elsewhere */
    int num_instances;
    uakd_synth_annot inst[UAKD_SYNTH_MAX_INSTANCES];
} uakd_synth_frame;

/* Per-thread workspace: render targets, the lens warp, the background file list. */
typedef struct uakd_synth_renderer uakd_synth_renderer;

/* objs must outlive the renderer. */
uakd_status uakd_synth_renderer_new(const uakd_synth_config *c, const uakd_synth_object *objs, int num_objs,
                                    uakd_synth_renderer **out);
void uakd_synth_renderer_free(uakd_synth_renderer *r);
/* Renders one image, every random choice drawn from rng: objects, poses, light (random direction
 * on the camera's side, intensity, ambient), background (noise, gradient, shapes, a crop of a
 * bg_dir image; SPEED+: half of them black space with stars), occluders, noise, blur. frame must
 * be zeroed before its first use; it is reused across calls. */
uakd_status uakd_synth_render_frame(uakd_synth_renderer *r, uakd_rng *rng, uakd_synth_frame *frame);
void uakd_synth_frame_free(uakd_synth_frame *f);

/* ---- Backgrounds and camera effects (building blocks of uakd_synth_render_frame) ---- */

/* Fills im (3 channels) with one procedural background: kind 0 value noise, 1 linear gradient,
 * 2 random shapes, 3 black space with stars. */
void uakd_synth_background(uakd_image *im, int kind, uakd_rng *r);
/* Adds Gaussian noise of standard deviation sigma: each value is drawn uniformly from a table of
 * 4096 fresh N(0, sigma^2) draws (fast; the table is redrawn per call). */
void uakd_image_add_noise(uakd_image *im, double sigma, uakd_rng *r);
/* 3x3 binomial blur ([1 2 1] / 4 on rows and columns, edges clamped). */
uakd_status uakd_image_blur3(uakd_image *im);

/* ---- The whole dataset ---- */

/* Progress: called with the number of images done; a nonzero return stops the run
 * (UAKD_EINTERRUPTED). Calls are serialised. */
typedef int (*uakd_synth_progress_fn)(long done, long total, void *user);

typedef struct uakd_synth_result {
    long images;            /* images in the dataset */
    int reused;             /* 1: an identical finished dataset was found, nothing written */
    double seconds;         /* rendering and writing time */
} uakd_synth_result;

uakd_status uakd_synth_run(const uakd_synth_config *c, uakd_synth_progress_fn progress, void *user,
                           uakd_synth_result *result);

#endif
