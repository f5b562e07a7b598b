/* Software rasteriser: triangle meshes with vertex colours rendered through a pinhole camera into
 * an RGB image, a depth buffer and a per-pixel object id; the warp that turns such a pinhole
 * render into the image of a camera with OpenCV lens distortion; 2D polygon filling.
 *
 * Conventions: pixel (i, j) is sampled at its centre, the image point (u, v) = (i, j), so that a
 * camera point X projects to u = fx X/Z + cx, v = fy Y/Z + cy exactly as in uakd_camera_project.
 * Depth is the camera z (units of the mesh and pose). Everything is deterministic. */
#ifndef UAKD_RENDER_H
#define UAKD_RENDER_H

#include <stdint.h>

#include "uakd/geom.h"
#include "uakd/image.h"
#include "uakd/mesh.h"
#include "uakd/status.h"

typedef struct uakd_render_target {
    int width, height;
    uint8_t *rgb;  /* width x height x 3, shaded colour of the nearest surface */
    float *depth;  /* camera z of the nearest surface; INFINITY where nothing was drawn */
    uint16_t *id;  /* id of the object owning the nearest surface; 0 where nothing was drawn */
} uakd_render_target;

/* Allocates a cleared target (sizes checked). */
uakd_status uakd_render_target_alloc(uakd_render_target *t, int width, int height);
/* Frees the buffers and zeroes the struct; safe on a zeroed struct. */
void uakd_render_target_free(uakd_render_target *t);
/* rgb = 0, depth = INFINITY, id = 0. */
void uakd_render_target_clear(uakd_render_target *t);

/* Lambert shading of vertex colour c with normal n (flipped to face the camera: two-sided):
 *   shaded = c * (ambient + intensity * max(0, n . dir)), clamped to 255. */
typedef struct uakd_light {
    double dir[3];    /* unit vector from the surface towards the light, camera frame */
    double intensity; /* diffuse factor */
    double ambient;   /* constant factor */
} uakd_light;

typedef struct uakd_render_opts {
    uakd_light light;
    double z_near;       /* triangles are clipped against the plane z = z_near (> 0) */
    int cull_back_faces; /* 1: drop triangles whose winding (v1-v0)x(v2-v0) faces away from the
                            camera (closed, outward-wound meshes only); 0: draw both sides */
    uint16_t id;         /* written to target->id where this mesh is the nearest surface (> 0) */
} uakd_render_opts;

/* Renders mesh m at pose (model -> camera) with the pinhole part of cam (fx, fy, cx, cy) into t,
 * z-buffered against what t already holds. Vertex colours (grey 180 when the mesh has none) are
 * shaded per vertex with the mesh's vertex normals when present, else per face with the face
 * normal, and interpolated perspective-correctly. Fails with UAKD_EINVAL when cam has a non-zero
 * distortion coefficient (render with uakd_distort_map's canvas camera instead), or on a
 * malformed mesh. Triangles projecting beyond +-2^24 pixels are skipped. */
uakd_status uakd_render_mesh(uakd_render_target *t, const uakd_mesh *m, const uakd_pose *pose,
                             const uakd_camera *cam, const uakd_render_opts *opts);

/* A distorted camera's image as a resampling of a pinhole "canvas" render: output pixel (u, v)
 * takes canvas pixel round(src[2k]), round(src[2k+1]) (nearest neighbour), where the canvas camera
 * has the same fx, fy and a principal point shifted so that the canvas covers every undistorted
 * ray the output sees. The undistortion is solved by fixed-point iteration to 1e-10 (normalised
 * units); the map fails with UAKD_EDEGENERATE if it does not converge. */
typedef struct uakd_distort_map {
    int width, height;          /* output image */
    int canvas_width, canvas_height;
    uakd_camera canvas_cam;     /* pinhole, dist all zero */
    int32_t *src;               /* width x height canvas pixel index, -1 when outside the canvas */
} uakd_distort_map;

uakd_status uakd_distort_map_new(const uakd_camera *cam, int width, int height, uakd_distort_map *out);
void uakd_distort_map_free(uakd_distort_map *m);
/* out (map->width x map->height) = canvas resampled through the map; sizes must match. */
uakd_status uakd_distort_apply(const uakd_distort_map *m, const uakd_render_target *canvas,
                               uakd_render_target *out);

/* Fills the polygon pts[0..n-1] (pixel coordinates, even-odd rule, pixel centres sampled) with
 * colour (im->channels values). When ids is not NULL (im->width x im->height), the filled pixels
 * are also set to id there. Returns the number of pixels filled; n must be 3..64 (otherwise
 * nothing is drawn and 0 is returned). */
long uakd_fill_polygon(uakd_image *im, const double (*pts)[2], int n, const uint8_t *colour, uint16_t *ids,
                       uint16_t id);

#endif
