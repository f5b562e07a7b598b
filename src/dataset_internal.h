/* Helpers shared by the dataset loaders (not public): JSON reading with validation that names the
 * file and the field, instance arrays that grow, and path joining. */
#ifndef UAKD_DATASET_INTERNAL_H
#define UAKD_DATASET_INTERNAL_H

#include <cjson/cJSON.h>

#include "uakd/dataset.h"

/* Parses a whole JSON file; the message names the file and the approximate error position. */
uakd_status ds_read_json(const char *path, cJSON **out);
/* A required finite number under key (ctx names the enclosing entry in messages). */
uakd_status ds_get_number(const cJSON *obj, const char *key, const char *path, const char *ctx, double *out);
/* A required integer in [lo, hi]. */
uakd_status ds_get_int(const cJSON *obj, const char *key, const char *path, const char *ctx, int lo, int hi,
                       int *out);
/* A JSON array of exactly n finite numbers. */
uakd_status ds_array_numbers(const cJSON *arr, int n, const char *path, const char *ctx, const char *key,
                             double *out);
/* A required key holding an array of exactly n finite numbers. */
uakd_status ds_get_numbers(const cJSON *obj, const char *key, int n, const char *path, const char *ctx,
                           double *out);
/* Parses a whole decimal integer key ("12") into [0, INT_MAX]; returns 0 on failure. */
int ds_parse_id(const char *s, int *out);
/* malloc'ed "a/b" (b may contain further slashes). */
char *ds_join(const char *a, const char *b);
/* Appends a zeroed instance to ds (amortised growth). */
uakd_status ds_push_instance(uakd_dataset *ds, int *capacity, uakd_instance **out);
/* Fills the 8 box corners of an object as its keypoints (see dataset.h for the order). */
void ds_box_keypoints(uakd_object_info *o);
/* Projects R onto SO(3), stores it in pose->R and updates ds->max_rot_moved. */
uakd_status ds_set_rotation(uakd_dataset *ds, const double R[9], uakd_pose *pose, const char *path,
                            const char *ctx);

#endif
