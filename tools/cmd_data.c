/* `uakd data`: loads a BOP or SPEED+ dataset, prints what it holds, and optionally writes a split
 * list (by ratio with a seed) and example crops (PNG, keypoints drawn, mask tinted) so that the
 * geometry and the augmentation can be checked by eye. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/augment.h"
#include "uakd/dataset.h"
#include "uakd/image.h"

static void help(void) {
    printf("usage: uakd data (--bop ROOT [--split NAME] [--obj ID]... [--min-visib F]\n"
           "                 | --speedplus ROOT [--domain NAME] [--list NAME] --keypoints CSV)\n"
           "                 [--write-split FILE --ratio R] [--seed N]\n"
           "                 [--crops DIR [--count N] [--size S] [--train] [--full]]\n\n"
           "Loads a dataset, prints its instances and objects, and optionally:\n"
           "  --write-split FILE  writes the images selected by --ratio R (0..1, seed --seed) as\n"
           "                      \"scene_id im_id\" lines, the list format uakd reads back\n"
           "  --crops DIR         writes the first --count (8) samples as DIR/crop_NNNN.png, of\n"
           "                      --size (256) pixels, keypoints drawn in red, visible mask tinted\n"
           "                      green; --train applies the training jitter and augmentation,\n"
           "                      --full resizes whole images (SPEED+ style) instead of cropping\n"
           "Defaults: --split test, --domain synthetic, --list train, --seed 0.\n");
}

static uakd_status write_split(const uakd_dataset *ds, const char *path, double ratio, uint64_t seed) {
    int *sel, n;
    UAKD_TRY(uakd_split_by_ratio(ds, ratio, seed, &sel, &n, NULL, NULL));
    FILE *f = fopen(path, "w");
    if (!f) {
        free(sel);
        return uakd_fail(UAKD_EIO, "%s: cannot create the split file", path);
    }
    int images = 0;
    for (int i = 0; i < n; i++) {
        const uakd_instance *in = &ds->instances[sel[i]];
        if (i > 0 && ds->instances[sel[i - 1]].image_id == in->image_id && ds->instances[sel[i - 1]].scene_id == in->scene_id)
            continue;
        fprintf(f, "%d %d\n", in->scene_id, in->image_id);
        images++;
    }
    free(sel);
    if (fclose(f) != 0) return uakd_fail(UAKD_EIO, "%s: write failed", path);
    printf("split: %d images (%d instances) written to %s\n", images, n, path);
    return UAKD_OK;
}

static uakd_status write_crops(const uakd_dataset *ds, const char *dir, int count, int size, int train, int full,
                               uint64_t seed) {
    uakd_augment_config cfg;
    uakd_augment_config_default(&cfg, train);
    cfg.out_width = cfg.out_height = size;
    if (full) cfg.mode = UAKD_CROP_FULL;
    float *img = malloc(sizeof(float) * 3 * (size_t)size * size);
    uint8_t *mask = malloc((size_t)size * size);
    uakd_image out;
    uakd_sample_scratch sc = {0};
    uakd_status st = img && mask ? uakd_image_alloc(&out, size, size, 3) : uakd_fail(UAKD_ENOMEM, "out of memory");
    uakd_rng base, r;
    uakd_rng_seed(&base, seed);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; st == UAKD_OK && i < count && i < ds->num_instances; i++) {
        uakd_target t;
        uakd_rng_split(&base, (uint64_t)i, &r);
        st = uakd_sample_prepare(ds, i, &cfg, NULL, &r, &sc, img, mask, &t);
        if (st != UAKD_OK) break;
        size_t np = (size_t)size * size;
        for (size_t p = 0; p < np; p++)
            for (int c = 0; c < 3; c++) {
                float v = (img[c * np + p] * sd[c] + mean[c]) * 255.0f;
                if (mask[p] && c == 1) v = 0.6f * v + 0.4f * 255.0f;
                out.data[3 * p + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
            }
        for (int k = 0; k < t.num_keypoints; k++)
            for (int d = -3; d <= 3; d++) {
                int x = (int)(t.kp2d[k][0] + 0.5), y = (int)(t.kp2d[k][1] + 0.5);
                int pts[2][2] = {{x + d, y}, {x, y + d}};
                for (int q = 0; q < 2; q++)
                    if (pts[q][0] >= 0 && pts[q][1] >= 0 && pts[q][0] < size && pts[q][1] < size) {
                        uint8_t *px = out.data + 3 * ((size_t)pts[q][1] * size + pts[q][0]);
                        px[0] = 255, px[1] = px[2] = 0;
                    }
            }
        char path[4096];
        snprintf(path, sizeof path, "%s/crop_%04d.png", dir, i);
        st = uakd_image_write(path, &out, 0);
        if (st == UAKD_OK)
            printf("%s: instance %d (scene %d, image %d, object %d), mask from %s\n", path, i,
                   ds->instances[i].scene_id, ds->instances[i].image_id, t.obj_id,
                   t.mask_from_file ? "mask_visib" : "keypoint hull");
    }
    uakd_image_free(&out);
    uakd_sample_scratch_free(&sc);
    free(img);
    free(mask);
    return st;
}

int uakd_cmd_data(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *bop = NULL, *sp = NULL, *split = "test", *domain = "synthetic", *list = "train", *kp = NULL;
    const char *split_out = NULL, *crops = NULL;
    int obj_ids[64], num_obj = 0, train = 0, full = 0;
    long count = 8, size = 256, seed = 0;
    double min_visib = 0, ratio = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, takes = 1;
        long l;
        if (!strcmp(a, "--bop")) bop = v;
        else if (!strcmp(a, "--speedplus")) sp = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--domain")) domain = v;
        else if (!strcmp(a, "--list")) list = v;
        else if (!strcmp(a, "--keypoints")) kp = v;
        else if (!strcmp(a, "--write-split")) split_out = v;
        else if (!strcmp(a, "--crops")) crops = v;
        else if (!strcmp(a, "--obj")) {
            ok = num_obj < 64 && uakd_cli_parse_long("data", a, v, 0, 1 << 30, &l);
            if (ok) obj_ids[num_obj++] = (int)l;
        } else if (!strcmp(a, "--min-visib")) ok = uakd_cli_parse_double("data", a, v, 0, 1, &min_visib);
        else if (!strcmp(a, "--ratio")) ok = uakd_cli_parse_double("data", a, v, 0, 1, &ratio);
        else if (!strcmp(a, "--seed")) ok = uakd_cli_parse_long("data", a, v, 0, 0x7fffffffL, &seed);
        else if (!strcmp(a, "--count")) ok = uakd_cli_parse_long("data", a, v, 1, 100000, &count);
        else if (!strcmp(a, "--size")) ok = uakd_cli_parse_long("data", a, v, 8, 4096, &size);
        else if (!strcmp(a, "--train")) train = 1, takes = 0;
        else if (!strcmp(a, "--full")) full = 1, takes = 0;
        else {
            fprintf(stderr, "uakd data: unknown option '%s' (see uakd data --help)\n", a);
            return UAKD_EXIT_USAGE;
        }
        if (!ok) return UAKD_EXIT_USAGE;
        if (takes && !v) {
            fprintf(stderr, "uakd data: %s needs a value\n", a);
            return UAKD_EXIT_USAGE;
        }
        i += takes;
    }
    if (!bop == !sp || (sp && !kp) || (split_out && ratio < 0)) {
        fprintf(stderr, "uakd data: give exactly one of --bop and --speedplus (the latter with --keypoints), "
                        "and --ratio with --write-split\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_dataset *ds = NULL;
    uakd_status st;
    if (bop) {
        uakd_bop_options opt = {num_obj ? obj_ids : NULL, num_obj, min_visib};
        st = uakd_dataset_load_bop(bop, split, &opt, &ds);
    } else {
        st = uakd_dataset_load_speedplus(sp, domain, list, kp, &ds);
    }
    if (st != UAKD_OK) return uakd_cli_report("data", st);
    printf("%d instances, images %dx%d, %d annotated images without a file, rotations moved <= %.3g\n",
           ds->num_instances, ds->width, ds->height, ds->num_missing_images, ds->max_rot_moved);
    for (int o = 0; o < ds->num_objects; o++) {
        int n = 0;
        for (int i = 0; i < ds->num_instances; i++) n += ds->instances[i].object == o;
        const uakd_object_info *ob = &ds->objects[o];
        printf("  object %d: %d instances, diameter %g, %d keypoints, %d discrete / %d continuous symmetries\n",
               ob->obj_id, n, ob->diameter, ob->num_keypoints, ob->num_sym_discrete, ob->num_sym_continuous);
    }
    if (split_out) st = write_split(ds, split_out, ratio, (uint64_t)seed);
    if (st == UAKD_OK && crops) st = write_crops(ds, crops, (int)count, (int)size, train, full, (uint64_t)seed);
    uakd_dataset_free(ds);
    return uakd_cli_report("data", st);
}
