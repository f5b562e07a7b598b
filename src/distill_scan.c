/* Ensemble uncertainty over a dataset split (uakd_teachers_scan, uakd/distill.h): the teachers
 * on every instance's test crop (of the images of a list file, when one is given), in batches, collecting the variance s2 of every corner of every
 * selected teacher cell (the input of the `auto` tau and of `uakd uncertainty`). */
#include <stdlib.h>
#include <string.h>

#include "uakd/distill.h"
#include "uakd/loader.h"

void uakd_unc_scan_free(uakd_unc_scan *s) {
    free(s->s2);
    memset(s, 0, sizeof *s);
}

static uakd_status append(uakd_unc_scan *s, long *cap, const uakd_teacher_preds *p) {
    if (s->cells + p->total > *cap) {
        long nc = *cap ? *cap : 1024;
        while (nc < s->cells + p->total) nc *= 2;
        float *v = realloc(s->s2, sizeof(float) * 8 * (size_t)nc);
        if (!v) return uakd_fail(UAKD_ENOMEM, "uncertainty scan: out of memory");
        s->s2 = v, *cap = nc;
    }
    memcpy(s->s2 + 8 * s->cells, p->s2, sizeof(float) * 8 * (size_t)p->total);
    s->cells += p->total;
    for (int b = 0; b < p->images; b++) s->missing += p->m[b] == 0;
    s->images += p->images;
    return UAKD_OK;
}

static uakd_status run_scan(uakd_teachers *t, const uakd_dataset *ds, const int *obj_ids, int num_obj,
                            const int *idx, long n, uakd_unc_scan *out) {
    const int B = uakd_wdrnet_config_of(uakd_teachers_member(t, 0))->max_batch;
    uakd_loader_config lc = {0};
    lc.batch_size = B;
    lc.seed = 1;
    lc.single_pass = 1;
    uakd_augment_config_default(&lc.sample, 0);
    lc.sample.out_width = lc.sample.out_height = uakd_wdrnet_levels(uakd_teachers_member(t, 0))->in_w;
    uakd_loader *L;
    UAKD_TRY(uakd_loader_new(ds, idx, (int)n, &lc, &L));
    uakd_status st;
    uakd_teacher_preds p = {0};
    long cap = 0;
    for (;;) {
        const uakd_batch *b;
        if ((st = uakd_loader_next(L, &b)) != UAKD_OK || !b) break;
        int cls[4096];
        for (int i = 0; i < b->n; i++) {
            cls[i] = -1;
            for (int c = 0; c < num_obj; c++)
                if (obj_ids[c] == b->targets[i].obj_id) cls[i] = c;
        }
        if ((st = uakd_teachers_predict(t, b->images, b->n, cls, 1.0, &p)) != UAKD_OK) break;
        if ((st = append(out, &cap, &p)) != UAKD_OK) break;
    }
    uakd_teacher_preds_free(&p);
    uakd_loader_free(L);
    return st;
}

uakd_status uakd_teachers_scan(uakd_teachers *t, const char *root, const char *split, const char *list,
                               const int *obj_ids, int num_obj, double min_visib, long max_images, uakd_unc_scan *out) {
    memset(out, 0, sizeof *out);
    uakd_bop_options bo = {obj_ids, num_obj, min_visib};
    uakd_dataset *ds;
    UAKD_TRY(uakd_dataset_load_bop(root, split, &bo, &ds));
    int *idx = NULL, n = 0;
    uakd_status st = UAKD_OK;
    if (list) {
        st = uakd_split_from_list(ds, list, &idx, &n);
    } else if ((idx = malloc(sizeof(int) * (size_t)(ds->num_instances ? ds->num_instances : 1))) != NULL) {
        for (n = 0; n < ds->num_instances; n++) idx[n] = n;
    } else {
        st = uakd_fail(UAKD_ENOMEM, "uncertainty scan: out of memory");
    }
    if (st == UAKD_OK && max_images > 0 && n > max_images) n = (int)max_images;
    if (st == UAKD_OK)
        st = n > 0 ? run_scan(t, ds, obj_ids, num_obj, idx, n, out)
                   : uakd_fail(UAKD_EINVAL, "uncertainty scan: %s/%s%s%s has no instance of the objects", root, split,
                               list ? " restricted to " : "", list ? list : "");
    free(idx);
    uakd_dataset_free(ds);
    if (st != UAKD_OK) uakd_unc_scan_free(out);
    return st;
}
