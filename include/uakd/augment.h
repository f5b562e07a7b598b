/* Training and test samples: the dynamic zoom-in crop (or a whole-image resize), geometric and
 * photometric augmentation, with keypoints and poses kept exact.
 *
 * Geometry. Every crop, shift, scale and in-plane rotation is one warp of the form
 *     crop pixel p' = K' Rz K^-1 p          (homogeneous, a 2x3 affine A)
 * where Rz is a rotation by angle a about the camera's optical axis and K' = diag(sx, sy, 1) K
 * with a new principal point, chosen so that the image point `center` lands on the output
 * centre ((W-1)/2, (H-1)/2) (pixel centres at integer coordinates, OpenCV convention). Because Rz
 * keeps depth, a camera point x projects to K' Rz x / z in the crop: the crop is exactly the image
 * of the camera K' with the object at pose (Rz R, Rz t). No PnP re-fit is needed. With lens
 * distortion this stays exact for the radial terms; a camera with tangential terms (p1, p2) admits
 * no rotation (a = 0 is enforced).
 *
 * LINEMOD recipe (models.md): box = the 2D box (x, y, w, h) of the object's projected keypoints
 * (BOP: its 3D box corners) or a given detector box; side = 1.5 max(w, h), times U(0.75, 1.25) in
 * training; centre = box centre, shifted by U(-0.25, 0.25) (w, h) in training; then augmentation
 * shift U(-0.05, 0.05) side, scale U(0.95, 1.05), rotation U(-10, 10) degrees. The crop's scale is
 * s = min(out_w, out_h) / side on both axes. Whole-image mode (SPEED+): sx = out_w / width,
 * sy = out_h / height around the image centre, with the same augmentation when enabled.
 *
 * Photometric (training, each with probability photometric_p, on [0, 1] values, in this order):
 * brightness x += U(-b, b); contrast x = m + (x - m) U(1 - c, 1 + c) (m: crop mean); Gaussian blur
 * with sigma U(0, blur_sigma); noise x += N(0, sigma^2) with sigma U(0, noise_std); clamp to [0, 1].
 * Then ImageNet normalisation (x - mean_c) / std_c with mean 0.485 0.456 0.406 and std 0.229
 * 0.224 0.225. Pixels that fall outside the source image are black (0) before normalisation.
 *
 * Visible mask (uint8, 1 = object): the BOP mask_visib image warped with nearest neighbour; when
 * the dataset has none (e.g. LM-O test, SPEED+), the filled convex hull of the projected keypoints
 * clipped to bbox_visib - a coarse stand-in (the box hull is larger than the object). */
#ifndef UAKD_AUGMENT_H
#define UAKD_AUGMENT_H

#include <stdint.h>

#include "uakd/dataset.h"
#include "uakd/rng.h"

typedef enum uakd_crop_mode {
    UAKD_CROP_BOX = 0,  /* dynamic zoom-in around the object's box */
    UAKD_CROP_FULL = 1, /* the whole image resized to the output size */
} uakd_crop_mode;

/* Every field with its default (uakd_augment_config_default). */
typedef struct uakd_augment_config {
    int out_width, out_height;  /* 256 x 256 */
    uakd_crop_mode mode;        /* UAKD_CROP_BOX */
    double box_scale;           /* 1.5: crop side / max(w, h) */
    int train;                  /* 1 for training (random ops below), 0 for test (none) */
    double zoom_scale_jitter;   /* 0.25: side *= U(1 - j, 1 + j) (box mode) */
    double zoom_shift_jitter;   /* 0.25: centre += U(-j, j) (w, h) (box mode) */
    double shift;               /* 0.05: centre += U(-f, f) side (box) or image size (full) */
    double scale;               /* 0.05: zoom factor U(1 - f, 1 + f) */
    double rotation_deg;        /* 10: in-plane rotation U(-r, r) degrees */
    double photometric_p;       /* 0.5: probability of each photometric op */
    double brightness;          /* 0.2 */
    double contrast;            /* 0.2 */
    double blur_sigma;          /* 1.0 (output pixels) */
    double noise_std;           /* 0.03 */
} uakd_augment_config;

/* Defaults above; train = 0 gives the test crop (no jitter, no augmentation). */
void uakd_augment_config_default(uakd_augment_config *cfg, int train);
/* Checks ranges (sizes 8..4096, jitters in [0, 1), ...). */
uakd_status uakd_augment_config_check(const uakd_augment_config *cfg);

/* The parameters of one warp. */
typedef struct uakd_crop_params {
    double center[2]; /* image point that lands on the output centre */
    double scale[2];  /* output pixels per image pixel, x and y */
    double angle;     /* in-plane rotation (radians) */
} uakd_crop_params;

/* The warp of a crop and the camera it defines. A and Ainv are 2x3 row-major:
 * [u'; v'] = [A0 A1 A2; A3 A4 A5] [u; v; 1]. */
typedef struct uakd_crop_geometry {
    int width, height; /* output size */
    double A[6];       /* crop pixel <- image pixel */
    double Ainv[6];    /* image pixel <- crop pixel (maps predictions back) */
    double K[9];       /* camera matrix of the crop */
    double dist[5];    /* distortion, unchanged */
    double Rz[9];      /* camera rotation about the optical axis applied by the warp */
} uakd_crop_geometry;

/* Draws the crop parameters for an object box (x, y, w, h) in an image of img_w x img_h;
 * rng is used only when cfg->train (it may be NULL otherwise). */
uakd_status uakd_crop_params_draw(const uakd_augment_config *cfg, const double box[4], int img_w, int img_h,
                                  uakd_rng *rng, uakd_crop_params *out);
/* Builds the warp from the image camera (K, dist) and the parameters. */
uakd_status uakd_crop_geometry_make(const double K[9], const double dist[5], const uakd_crop_params *p,
                                    int out_w, int out_h, uakd_crop_geometry *out);
/* Pose in the crop camera: R' = Rz R, t' = Rz t. */
void uakd_crop_pose(const uakd_crop_geometry *g, const uakd_pose *in, uakd_pose *out);
/* out = A [p; 1] for a 2x3 affine. */
void uakd_affine_apply(const double A[6], const double p[2], double out[2]);

/* Everything a loss needs about one sample, in crop pixels and the crop camera. */
typedef struct uakd_target {
    int instance;                 /* index into the dataset's instances */
    int obj_id;
    double diameter;              /* model units */
    uakd_pose pose;               /* in the crop camera */
    uakd_crop_geometry crop;      /* K', dist, A (crop <- image), Ainv (image <- crop) */
    int num_keypoints;
    double kp3d[UAKD_MAX_KEYPOINTS][3]; /* model frame (BOP: the 8 box corners) */
    double kp2d[UAKD_MAX_KEYPOINTS][2]; /* projected into the crop (pixels) */
    double box[4];                /* the 2D box the crop was centred on (image pixels) */
    int mask_from_file;           /* 1: mask_visib; 0: keypoint-hull stand-in */
} uakd_target;

/* Scratch buffers reused between samples (one per thread); zero-initialise, free with _free.
 * cache: optional decoded-image cache (uakd/image.h), not owned, may be shared between threads. */
typedef struct uakd_sample_scratch {
    float *work;       /* out_h x out_w x 3 */
    float *tmp;        /* blur temporary */
    uint8_t *crop;     /* out_h x out_w x 3 */
    size_t capacity;   /* pixels */
    struct uakd_image_cache *cache;
} uakd_sample_scratch;
void uakd_sample_scratch_free(uakd_sample_scratch *s);

/* Prepares instance `index` of ds: reads its image (through scratch->cache when set; decoded at 1/2, 1/4 or 1/8 size when the
 * crop shrinks it that much; the geometry accounts for it), checks the image size against the
 * dataset, crops and augments. box: the 2D box to crop around, or NULL for the projected
 * keypoint box of the ground truth. rng: the sample's own stream (required when cfg->train).
 * image: 3 x out_h x out_w floats (CHW, normalised); mask: out_h x out_w bytes or NULL. */
uakd_status uakd_sample_prepare(const uakd_dataset *ds, int index, const uakd_augment_config *cfg,
                                const double box[4], uakd_rng *rng, uakd_sample_scratch *scratch, float *image,
                                uint8_t *mask, uakd_target *target);

#endif
