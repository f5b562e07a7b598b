/* JSON helpers shared by the tests that read committed fixtures or real BOP files. */
#ifndef UAKD_TEST_JSON_H
#define UAKD_TEST_JSON_H

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "uakd/fileio.h"

/* The parsed file, or NULL when it cannot be read or parsed (the caller CHECKs it). */
static inline cJSON *test_read_json(const char *path) {
    void *data = NULL;
    size_t n = 0;
    if (uakd_read_file(path, (size_t)1 << 28, &data, &n) != UAKD_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(data, n);
    free(data);
    return j;
}

/* Copies a (possibly nested) JSON array of numbers into out, row by row; returns the count. */
static inline int test_json_flat(const cJSON *a, double *out, int cap) {
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (cJSON_IsArray(e))
            k += test_json_flat(e, out + k, cap - k);
        else if (k < cap)
            out[k++] = e->valuedouble;
    }
    return k;
}

#endif
