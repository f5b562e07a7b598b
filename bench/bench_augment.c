/* Benchmark: one LINEMOD training sample (PNG decode of a 640x480 LM-O image, dynamic zoom-in
 * crop to 256x256 with shift/scale/rotation, photometric ops forced on, ImageNet normalisation)
 * with uakd_sample_prepare, against the same pipeline in OpenCV + NumPy (augment_peer.py, one
 * thread). Prints the medians and their ratio. Run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "uakd/augment.h"
#include "uakd/image.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    const char *root = getenv("UAKD_SHARED") ? getenv("UAKD_SHARED") : "../shared";
    char lmo[1024];
    snprintf(lmo, sizeof lmo, "%s/data/lmo", root);
    uakd_dataset *ds;
    if (uakd_dataset_load_bop(lmo, "test", NULL, &ds) != UAKD_OK) {
        fprintf(stderr, "bench_augment: %s\n", uakd_last_error());
        return 1;
    }
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, 1);
    cfg.photometric_p = 1;
    enum { REPS = 40 };
    float *img = malloc(sizeof(float) * 3 * 256 * 256);
    uint8_t *mask = malloc(256 * 256);
    uakd_sample_scratch sc = {0};
    uakd_rng r;
    uakd_rng_seed(&r, 1);
    double t[REPS];
    for (int i = 0; i < REPS; i++) {
        uakd_target tg;
        double t0 = now();
        if (uakd_sample_prepare(ds, (i * 8) % ds->num_instances, &cfg, NULL, &r, &sc, img, mask, &tg) != UAKD_OK) {
            fprintf(stderr, "bench_augment: %s\n", uakd_last_error());
            return 1;
        }
        t[i] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp);
    double ours = t[REPS / 2], peer = 0;
    /* the same with the decoded-image cache warm (what the loader does with cache_bytes set) */
    uakd_image_cache *cache;
    uakd_image_cache_new((size_t)1 << 30, &cache);
    sc.cache = cache;
    for (int i = 0; i < 2 * REPS; i++) {
        uakd_target tg;
        double t0 = now();
        if (uakd_sample_prepare(ds, (i * 8) % ds->num_instances, &cfg, NULL, &r, &sc, img, mask, &tg) != UAKD_OK) {
            fprintf(stderr, "bench_augment: %s\n", uakd_last_error());
            return 1;
        }
        if (i >= REPS) t[i - REPS] = now() - t0;
    }
    qsort(t, REPS, sizeof *t, cmp);
    double cached = t[REPS / 2];
    uakd_image_cache_free(cache);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/augment_peer.py %s %d", lmo, REPS);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%lf", &peer) != 1) peer = 0;
    if (p) pclose(p);
    printf("training sample 640x480 PNG -> 256x256 (decode, warp, photometric, normalise, mask)\n");
    printf("  uakd   %.2f ms (median of %d); with the image cache warm %.2f ms\n", ours * 1e3, REPS, cached * 1e3);
    if (peer > 0) printf("  OpenCV %.2f ms (median of %d, no mask)\n  ratio uakd/OpenCV %.2f\n", peer * 1e3, REPS, ours / peer);
    else printf("  OpenCV peer unavailable\n");
    uakd_sample_scratch_free(&sc);
    free(img);
    free(mask);
    uakd_dataset_free(ds);
    return 0;
}
