/* `uakd version`: the version and the features this binary was built with. */
#include <stdio.h>

#include "cli.h"
#include "uakd/version.h"

int uakd_cmd_version(int argc, char **argv) {
    if (uakd_cli_wants_help(argc, argv)) {
        printf("usage: uakd version\n\nPrints the uakd version and the build features (OpenMP, oneDNN).\n");
        return 0;
    }
    printf("uakd %s (%s)\n", uakd_version(), uakd_build_features());
    return 0;
}
