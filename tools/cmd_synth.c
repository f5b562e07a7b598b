/* `uakd synth`: renders a synthetic BOP or SPEED+ dataset (uakd_synth_run) with a progress bar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "uakd/synth.h"

static void help(void) {
    printf("usage: uakd synth --out DIR [--format bop|speedplus] [--mesh FILE.ply ...] [options]\n"
           "\n"
           "Renders objects at uniformly random rotations and random positions (always fully inside\n"
           "the image) over random backgrounds, with a random light, and writes a dataset the BOP or\n"
           "SPEED+ loaders read. Rerunning with the same settings into a finished dataset does nothing.\n"
           "\n"
           "options (defaults in brackets):\n"
           "  --out DIR           output directory (required; created)\n"
           "  --format F          bop or speedplus [bop]\n"
           "  --mesh FILE.ply     a mesh with vertex colours; repeat for several objects. BOP: mm, object\n"
           "                      id from a name obj_NNNNNN.ply else its position (1, 2, ...). SPEED+: m\n"
           "  --object tango      the built-in Tango spacecraft (SPEED+ only; used when no --mesh)\n"
           "  --count N           images in all [100]\n"
           "  --val-fraction F    share of the images in the held-out split (BOP test/, SPEED+\n"
           "                      validation.json): the last round(N * F) images [0.2]\n"
           "  --width W           image width [bop 640, speedplus 1920]; the camera is scaled to it\n"
           "  --height H          image height [bop 480, speedplus 1200]\n"
           "  --depth MIN:MAX     range of the object centre's depth, mesh units [bop 600:1200,\n"
           "                      speedplus 3:10]\n"
           "  --views sphere|upper[:ELEV[:ROLL]]\n"
           "                      object orientations: uniform over all rotations, or LINEMOD-like\n"
           "                      views from above (object z up), camera elevation >= ELEV degrees\n"
           "                      [15], any azimuth, camera roll within +-ROLL degrees [15] [sphere]\n"
           "  --seed S            random seed; the output does not depend on --threads [1]\n"
           "  --per-image N       object instances per image, BOP only, may occlude each other [1]\n"
           "  --occluders N       up to N random polygons drawn in front of the objects [0]\n"
           "  --bg-dir DIR        also use random crops of the PNG/JPEG images in DIR as backgrounds\n"
           "                      [procedural only: noise, gradients, shapes; SPEED+ half black space]\n"
           "  --noise SIGMA       camera noise, standard deviation in grey levels [2]\n"
           "  --blur P            probability of a 3x3 blur per image [0.3]\n"
           "  --jpeg-quality Q    JPEG quality of the images [95]\n"
           "  --threads N         rendering threads, 0 = all cores [0]\n"
           "\n"
           "BOP output: camera.json, models/ (PLY copies, models_info.json), models_eval/ (the same\n"
           "PLY copies), train/000000/ and test/000000/ with rgb/NNNNNN.jpg,\n"
           "mask_visib/NNNNNN_KKKKKK.png, scene_gt.json, scene_camera.json, scene_gt_info.json.\n"
           "SPEED+ output: camera.json,\n"
           "synthetic/images/imgNNNNNN.jpg (greyscale, through the lens distortion),\n"
           "synthetic/train.json, synthetic/validation.json (q scalar-first, x_cam = R(q) X + r).\n"
           "\n"
           "example: uakd synth --format bop --mesh ../shared/data/lmo/models/obj_000001.ply \\\n"
           "             --out data/synth-ape --count 2000 --occluders 2\n");
}

static int on_progress(long done, long total, void *user) {
    (void)total;
    uakd_progress_update(user, done);
    return 0;
}

int uakd_cmd_synth(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *cmd = "synth";
    uakd_synth_format format = UAKD_SYNTH_BOP;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--format")) {
            if (!strcmp(argv[i + 1], "bop")) {
                format = UAKD_SYNTH_BOP;
            } else if (!strcmp(argv[i + 1], "speedplus")) {
                format = UAKD_SYNTH_SPEEDPLUS;
            } else {
                fprintf(stderr, "uakd synth: --format expects bop or speedplus, got '%s'\n", argv[i + 1]);
                return UAKD_EXIT_USAGE;
            }
        }
    uakd_synth_config c;
    uakd_synth_config_default(&c, format);
    const char *meshes[UAKD_SYNTH_MAX_MESHES];
    int tango = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        double d;
        if (!val) {
            fprintf(stderr, "uakd synth: %s needs a value\n", opt);
            return UAKD_EXIT_USAGE;
        }
        i++;
        if (!strcmp(opt, "--format")) {
            /* parsed above */
        } else if (!strcmp(opt, "--out")) {
            c.out_dir = val;
        } else if (!strcmp(opt, "--mesh")) {
            if (c.num_meshes == UAKD_SYNTH_MAX_MESHES) {
                fprintf(stderr, "uakd synth: at most %d meshes\n", UAKD_SYNTH_MAX_MESHES);
                return UAKD_EXIT_USAGE;
            }
            meshes[c.num_meshes++] = val;
        } else if (!strcmp(opt, "--object")) {
            if (strcmp(val, "tango")) {
                fprintf(stderr, "uakd synth: --object knows only 'tango', got '%s'\n", val);
                return UAKD_EXIT_USAGE;
            }
            tango = 1;
        } else if (!strcmp(opt, "--count")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 1, 10000000, &l)) return UAKD_EXIT_USAGE;
            c.count = l;
        } else if (!strcmp(opt, "--val-fraction")) {
            if (!uakd_cli_parse_double(cmd, opt, val, 0, 0.999999, &c.val_fraction)) return UAKD_EXIT_USAGE;
        } else if (!strcmp(opt, "--width") || !strcmp(opt, "--height")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 16, 8192, &l)) return UAKD_EXIT_USAGE;
            *(opt[2] == 'w' ? &c.width : &c.height) = (int)l;
        } else if (!strcmp(opt, "--depth")) {
            const char *colon = strchr(val, ':');
            char lo[64];
            if (!colon || colon - val >= (long)sizeof lo) {
                fprintf(stderr, "uakd synth: --depth expects MIN:MAX, got '%s'\n", val);
                return UAKD_EXIT_USAGE;
            }
            memcpy(lo, val, (size_t)(colon - val));
            lo[colon - val] = '\0';
            if (!uakd_cli_parse_double(cmd, opt, lo, 1e-9, 1e12, &c.depth_min) ||
                !uakd_cli_parse_double(cmd, opt, colon + 1, c.depth_min, 1e12, &c.depth_max))
                return UAKD_EXIT_USAGE;
        } else if (!strcmp(opt, "--views")) {
            if (!strcmp(val, "sphere")) {
                c.min_elevation_deg = -1000;
            } else if (!strncmp(val, "upper", 5) && (val[5] == '\0' || val[5] == ':')) {
                double elev = 15, roll = 15;
                const char *p = val + 5;
                char *end;
                if (*p == ':') {
                    elev = strtod(p + 1, &end);
                    p = end;
                    if (*p == ':') {
                        roll = strtod(p + 1, &end);
                        p = end;
                    }
                }
                if (*p || !(elev >= -90 && elev <= 90) || !(roll >= 0 && roll <= 180)) {
                    fprintf(stderr, "uakd synth: --views expects sphere or upper[:ELEV[:ROLL]] with ELEV in "
                                    "[-90, 90] and ROLL in [0, 180], got '%s'\n", val);
                    return UAKD_EXIT_USAGE;
                }
                c.min_elevation_deg = elev, c.max_roll_deg = roll;
            } else {
                fprintf(stderr, "uakd synth: --views expects sphere or upper[:ELEV[:ROLL]], got '%s'\n", val);
                return UAKD_EXIT_USAGE;
            }
        } else if (!strcmp(opt, "--seed")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 0, 0x7fffffffffffffffL, &l)) return UAKD_EXIT_USAGE;
            c.seed = (uint64_t)l;
        } else if (!strcmp(opt, "--per-image")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 1, UAKD_SYNTH_MAX_INSTANCES, &l)) return UAKD_EXIT_USAGE;
            c.per_image = (int)l;
        } else if (!strcmp(opt, "--occluders")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 0, 64, &l)) return UAKD_EXIT_USAGE;
            c.max_occluders = (int)l;
        } else if (!strcmp(opt, "--bg-dir")) {
            c.bg_dir = val;
        } else if (!strcmp(opt, "--noise")) {
            if (!uakd_cli_parse_double(cmd, opt, val, 0, 100, &c.noise_sigma)) return UAKD_EXIT_USAGE;
        } else if (!strcmp(opt, "--blur")) {
            if (!uakd_cli_parse_double(cmd, opt, val, 0, 1, &d)) return UAKD_EXIT_USAGE;
            c.blur_prob = d;
        } else if (!strcmp(opt, "--jpeg-quality")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 1, 100, &l)) return UAKD_EXIT_USAGE;
            c.jpeg_quality = (int)l;
        } else if (!strcmp(opt, "--threads")) {
            if (!uakd_cli_parse_long(cmd, opt, val, 0, 1024, &l)) return UAKD_EXIT_USAGE;
            c.threads = (int)l;
        } else {
            fprintf(stderr, "uakd synth: unknown option '%s' (see uakd synth --help)\n", opt);
            return UAKD_EXIT_USAGE;
        }
    }
    if (!c.out_dir) {
        fprintf(stderr, "uakd synth: --out DIR is required (see uakd synth --help)\n");
        return UAKD_EXIT_USAGE;
    }
    if (tango && c.num_meshes > 0) {
        fprintf(stderr, "uakd synth: give either --object tango or --mesh, not both\n");
        return UAKD_EXIT_USAGE;
    }
    c.mesh_paths = meshes;
    uakd_progress bar;
    uakd_progress_start(&bar, "synth", c.count, "img");
    uakd_synth_result res;
    uakd_status st = uakd_synth_run(&c, on_progress, &bar, &res);
    if (st != UAKD_OK) {
        if (bar.tty) fprintf(stderr, "\n");
        return uakd_cli_report(cmd, st);
    }
    if (res.reused) {
        printf("%s: up to date (%ld images), nothing to do\n", c.out_dir, res.images);
    } else {
        uakd_progress_finish(&bar, res.images);
        printf("%s: wrote %ld images at %dx%d in %.1f s (%.1f images/s)\n", c.out_dir, res.images, c.width, c.height,
               res.seconds, res.images / res.seconds);
    }
    return 0;
}
