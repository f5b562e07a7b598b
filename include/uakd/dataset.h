/* Datasets: BOP (LINEMOD, LM-O, any BOP dataset) and SPEED+, read into one in-memory form.
 *
 * A dataset is a list of object instances (one per ground-truth annotation whose image file
 * exists), each with its image path, camera, pose (model -> camera, x_img ~ K (R X + t)),
 * boxes and visibility, plus a table of objects (diameter, 3D box, symmetries, keypoints).
 * Rotations are projected onto SO(3) on load (real annotations are not exactly orthonormal);
 * the largest change is kept in max_rot_moved and logged.
 *
 * BOP (see ../shared/spec/data-and-metrics.md): root/camera.json, root/models/models_info.json,
 * root/<split>/<scene 6 digits>/{scene_camera,scene_gt,scene_gt_info}.json, rgb/<im 6>.png|jpg,
 * optional mask_visib/<im 6>_<gt index 6>.png. Units: mm. Keypoints of an object = the 8 corners
 * of its models_info box in the order of uakd_bbox_corners (mesh.h): index = 4 ix + 2 iy + iz.
 *
 * SPEED+: root/camera.json (Nu, Nv, cameraMatrix, distCoeffs), root/<domain>/<list>.json with
 * entries {"filename", "q_vbs2tango_true" (scalar first), "r_Vo2To_vbs_true" (m)}, images at
 * root/<domain>/images/<filename>; x_cam = R(q) X + r. One object (id 1); its keypoints are read
 * from a CSV file "index,x,y,z" (metres, e.g. ../shared/data/speedplus/tangoPoints.transcribed.csv).
 * Units: metres. SPEED+ has no boxes or masks: bbox_obj is the box of the projected keypoints,
 * bbox_visib the same box clipped to the image, visib_fract 1. */
#ifndef UAKD_DATASET_H
#define UAKD_DATASET_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/status.h"

#define UAKD_MAX_KEYPOINTS 32

typedef struct uakd_object_info {
    int obj_id;
    double diameter;          /* model units (BOP: mm, SPEED+: m; 0 when unknown) */
    double min[3], size[3];   /* axis-aligned model box (BOP min_x.., size_x..) */
    int num_sym_discrete;
    double *sym_discrete;     /* num_sym_discrete x 16: row-major 4x4 [R t; 0 1], t in model units */
    int num_sym_continuous;
    double *sym_continuous;   /* num_sym_continuous x 6: axis (3), offset (3) */
    int num_keypoints;        /* <= UAKD_MAX_KEYPOINTS */
    double keypoints[UAKD_MAX_KEYPOINTS][3]; /* model frame */
} uakd_object_info;

typedef struct uakd_instance {
    char *image_path;         /* owned */
    char *mask_path;          /* owned, NULL when the dataset has no visible mask for it */
    int scene_id, image_id, gt_index;
    int obj_id;
    int object;               /* index into uakd_dataset.objects */
    double K[9];              /* row-major camera matrix of the image */
    uakd_pose pose;           /* R projected onto SO(3); t in model units */
    double bbox_obj[4];       /* x, y, w, h of the whole object's projection, unclipped (BOP: all -1
                                 when the object has no valid pixel) */
    double bbox_visib[4];     /* x, y, w, h of its visible part */
    double visib_fract;       /* visible fraction in [0, 1] */
} uakd_instance;

typedef struct uakd_dataset {
    int width, height;        /* image size every image must have */
    double dist[5];           /* OpenCV k1 k2 p1 p2 k3 of the camera (zeros for BOP) */
    int num_objects;
    uakd_object_info *objects;
    int num_instances;
    uakd_instance *instances;
    int num_missing_images;   /* annotated images skipped because their file does not exist */
    double max_rot_moved;     /* max |R_loaded - R_file| over the dataset (SO(3) projection) */
} uakd_dataset;

/* Options of the BOP loader. Zero-initialised = every object, every instance. */
typedef struct uakd_bop_options {
    const int *obj_ids;       /* keep only these objects (NULL: all) */
    int num_obj_ids;
    double min_visib_fract;   /* drop instances less visible than this (0: keep all) */
} uakd_bop_options;

/* Loads <root>/<split> (e.g. split = "test", "train_pbr") of a BOP dataset; opt may be NULL.
 * Every scene directory (6-digit name) under root/split is read, in increasing order. Instances
 * are ordered by scene, image, gt index. Fails with a message naming the file and the field on
 * malformed or inconsistent JSON. */
uakd_status uakd_dataset_load_bop(const char *root, const char *split, const uakd_bop_options *opt,
                                  uakd_dataset **out);

/* Loads the SPEED+ list <root>/<domain>/<list>.json (e.g. domain "synthetic", list "train"),
 * with the camera root/camera.json and the keypoints CSV at keypoints_csv. */
uakd_status uakd_dataset_load_speedplus(const char *root, const char *domain, const char *list,
                                        const char *keypoints_csv, uakd_dataset **out);

/* Frees everything; NULL is fine. */
void uakd_dataset_free(uakd_dataset *ds);

/* Reads "index,x,y,z" keypoint rows (a header line and # comments are skipped, indices must run
 * 0, 1, ...); at most UAKD_MAX_KEYPOINTS. */
uakd_status uakd_keypoints_read_csv(const char *path, double kp[][3], int *num);

/* The index of object obj_id in ds->objects, or -1. */
int uakd_dataset_find_object(const uakd_dataset *ds, int obj_id);

/* Splits. Both return instance indices in increasing order in a malloc'ed array (free()).
 * Whole images go to one side so instances of one image never straddle a split.
 *
 * From a list file: one image per line, "scene_id im_id", "scene_id/im_id" or just "im_id" (the
 * last only for a single-scene dataset); blank lines and lines starting with # are skipped.
 * A listed image that the dataset does not hold is an error. */
uakd_status uakd_split_from_list(const uakd_dataset *ds, const char *path, int **indices, int *num);

/* By ratio: the images are ordered by a hash of (seed, scene, image), which is deterministic and
 * independent of the file order (adding images only moves a few near the cut), and the first
 * round(ratio * images) go to
 * "selected", the rest to "rest" (either output may be NULL). ratio in [0, 1]. */
uakd_status uakd_split_by_ratio(const uakd_dataset *ds, double ratio, uint64_t seed, int **selected,
                                int *num_selected, int **rest, int *num_rest);

#endif
