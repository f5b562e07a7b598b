/* `uakd convert`: darknet .weights -> safetensors with state_dict names, for the network given by
 * a description. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "uakd/darknet_weights.h"
#include "uakd/netdesc.h"

int uakd_cmd_convert(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd convert --cfg NET.cfg --darknet IN.weights -o OUT.safetensors [--prefix] [--trailing]\n"
               "                    [--names-under PREFIX]\n\n"
               "Converts darknet weights for the network NET.cfg into a safetensors file whose tensor names\n"
               "follow PyTorch state_dict conventions (<layer name>.conv.weight, <layer name>.bn.running_var,\n"
               "...; see docs/file-formats.md). The expected size is computed from the network first.\n"
               "  --prefix    accept a file holding only the first layers (e.g. darknet53.conv.74)\n"
               "  --trailing  accept extra values after the network's layers (e.g. a classifier head)\n"
               "  --names-under PREFIX  prepend PREFIX to every tensor name (e.g. 'backbone.')\n"
               "Example: uakd convert --cfg cfg/darknet53.cfg --darknet darknet53.conv.74 -o darknet53.safetensors\n");
        return 0;
    }
    const char *cfg = NULL, *in = NULL, *out = NULL, *names = NULL;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--cfg") ? &cfg : !strcmp(argv[i], "--darknet") ? &in
                           : !strcmp(argv[i], "-o") ? &out : !strcmp(argv[i], "--names-under") ? &names : NULL;
        if (dst && i + 1 < argc) *dst = argv[++i];
        else if (!strcmp(argv[i], "--prefix")) flags |= UAKD_DARKNET_ALLOW_PREFIX;
        else if (!strcmp(argv[i], "--trailing")) flags |= UAKD_DARKNET_ALLOW_TRAILING;
        else {
            fprintf(stderr, "uakd convert: unexpected or incomplete argument '%s' (see --help)\n", argv[i]);
            return UAKD_EXIT_USAGE;
        }
    }
    if (!cfg || !in || !out) {
        fprintf(stderr, "uakd convert: --cfg, --darknet and -o are required (see --help)\n");
        return UAKD_EXIT_USAGE;
    }
    uakd_netdesc *d;
    uakd_status st = uakd_netdesc_load(cfg, &d);
    if (st != UAKD_OK) return uakd_cli_report("convert", st);
    size_t covered = 0;
    st = uakd_darknet_to_safetensors(in, d, flags, names, out, &covered);
    if (st == UAKD_OK) {
        size_t convs = 0;
        for (int i = 0; i < d->n_layers; i++) convs += d->layers[i].type == UAKD_ND_CONV;
        printf("wrote %s: %zu of %zu convolutional layers\n", out, covered, convs);
    }
    uakd_netdesc_free(d);
    return uakd_cli_report("convert", st);
}
