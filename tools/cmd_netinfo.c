/* `uakd netinfo`: parses a network description and prints its per-layer summary (output shape,
 * parameters, FLOPs), the totals and the architecture hash; with --wdrnet, builds a whole WDRNet
 * model with the engine and prints the engine's per-layer summary and totals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/netdesc.h"
#include "uakd/wdrnet.h"

static int wdrnet_info(const char *variant, const char *cfg_path, long classes, long width, long size) {
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, variant);
    cfg.cfg_path = cfg_path;
    cfg.classes = (int)classes, cfg.width = (int)width, cfg.input_size = (int)(size ? size : 256);
    uakd_wdrnet *m;
    uakd_status st = uakd_wdrnet_new(&cfg, &m);
    if (st != UAKD_OK) return uakd_cli_report("netinfo", st);
    char *summary = NULL;
    st = uakd_net_summary(uakd_wdrnet_net(m), &summary);
    if (st == UAKD_OK) {
        const uakd_wdr_levels *lv = uakd_wdrnet_levels(m);
        printf("%s", summary);
        printf("wdrnet %s: %d classes, width %d, %d levels (strides", uakd_wdrnet_config_of(m)->variant, (int)classes,
               uakd_wdrnet_config_of(m)->width, lv->n);
        for (int l = 0; l < lv->n; l++) printf(" %d", lv->stride[l]);
        printf("), %.1f M parameters\n", (double)uakd_net_trainable_count(uakd_wdrnet_net(m)) * 1e-6);
    }
    free(summary);
    uakd_wdrnet_free(m);
    return uakd_cli_report("netinfo", st);
}

int uakd_cmd_netinfo(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd netinfo FILE.cfg [--width W] [--height H]\n"
               "       uakd netinfo --wdrnet VARIANT|FILE.cfg [--classes C] [--features F] [--size S]\n\n"
               "Validates a network description (docs/network-format.md) and prints one line per layer\n"
               "(output shape C x H x W, parameters, MFLOPs), the totals and the architecture hash.\n"
               "--width/--height replace the input size given in [net].\n"
               "--wdrnet builds the whole WDRNet model (backbone VARIANT darknet53, darknet-tiny or\n"
               "darknet-tiny-h, or a backbone description FILE.cfg; FPN neck; shared head) with the engine\n"
               "and prints its per-layer summary and totals. --classes C (default 1), --features F (FPN and\n"
               "head width, default the variant's), --size S (square input, default 256). The variants'\n"
               "descriptions are read from $UAKD_CFG_DIR, else ./cfg.\n"
               "Examples: uakd netinfo cfg/darknet53.cfg --width 128 --height 128\n"
               "          uakd netinfo --wdrnet darknet-tiny-h --classes 15\n");
        return 0;
    }
    const char *path = NULL, *wdr = NULL;
    long width = 0, height = 0, classes = 1, features = 0, size = 0;
    for (int i = 1; i < argc; i++) {
        long *dst = !strcmp(argv[i], "--width")      ? &width
                    : !strcmp(argv[i], "--height")   ? &height
                    : !strcmp(argv[i], "--classes")  ? &classes
                    : !strcmp(argv[i], "--features") ? &features
                    : !strcmp(argv[i], "--size")     ? &size
                                                     : NULL;
        if (dst) {
            if (!uakd_cli_parse_long("netinfo", argv[i], i + 1 < argc ? argv[i + 1] : NULL, 1, 65536, dst))
                return UAKD_EXIT_USAGE;
            i++;
        } else if (!strcmp(argv[i], "--wdrnet") && i + 1 < argc) {
            wdr = argv[++i];
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "uakd netinfo: unexpected argument '%s' (see --help)\n", argv[i]);
            return UAKD_EXIT_USAGE;
        } else
            path = argv[i];
    }
    if (wdr) {
        if (path || width || height) {
            fprintf(stderr, "uakd netinfo: --wdrnet takes no description file or --width/--height (use --size)\n");
            return UAKD_EXIT_USAGE;
        }
        const int is_file = strchr(wdr, '/') || strstr(wdr, ".cfg");
        return wdrnet_info(is_file ? NULL : wdr, is_file ? wdr : NULL, classes, features, size);
    }
    if (!path) {
        fprintf(stderr, "uakd netinfo: a description file is required (see --help)\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_netdesc *d;
    uakd_status st = uakd_netdesc_load(path, &d);
    if (st != UAKD_OK) return uakd_cli_report("netinfo", st);
    if (width || height)
        st = uakd_netdesc_set_input_size(d, width ? (int)width : d->input.width, height ? (int)height : d->input.height);
    char *summary = NULL;
    uint64_t hash = 0;
    if (st == UAKD_OK) st = uakd_netdesc_summary(d, &summary);
    if (st == UAKD_OK) st = uakd_netdesc_hash(d, &hash);
    if (st == UAKD_OK) printf("%sarch_hash: %016" PRIx64 "\n", summary, hash);
    free(summary);
    uakd_netdesc_free(d);
    return uakd_cli_report("netinfo", st);
}
