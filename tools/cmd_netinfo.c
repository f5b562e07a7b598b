/* `uakd netinfo`: parses a network description and prints its per-layer summary (output shape,
 * parameters, FLOPs), the totals and the architecture hash. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "uakd/netdesc.h"

int uakd_cmd_netinfo(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd netinfo FILE.cfg [--width W] [--height H]\n\n"
               "Validates a network description (docs/network-format.md) and prints one line per layer\n"
               "(output shape C x H x W, parameters, MFLOPs), the totals and the architecture hash.\n"
               "--width/--height replace the input size given in [net].\n"
               "Example: uakd netinfo cfg/darknet53.cfg --width 128 --height 128\n");
        return 0;
    }
    const char *path = NULL;
    long width = 0, height = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--width") || !strcmp(argv[i], "--height")) {
            long *dst = argv[i][2] == 'w' ? &width : &height;
            if (!uakd_cli_parse_long("netinfo", argv[i], i + 1 < argc ? argv[i + 1] : NULL, 1, 65536, dst))
                return UAKD_EXIT_USAGE;
            i++;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "uakd netinfo: unexpected argument '%s' (see --help)\n", argv[i]);
            return UAKD_EXIT_USAGE;
        } else
            path = argv[i];
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
