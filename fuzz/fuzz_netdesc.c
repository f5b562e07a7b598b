/* libFuzzer target for the network description parser.
 *
 * Every input is parsed; an accepted description must also give a summary, a darknet layout
 * attempt, and a canonical form that parses back to the same canonical form and hash. A violated
 * round trip returns -1 (abort() under libFuzzer).
 *
 * Build and run (clang 14 with compiler-rt, from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     fuzz/fuzz_netdesc.c src/netdesc.c src/darknet_weights.c src/safetensors.c src/fileio.c \
 *     src/status.c -lcjson -lm \
 *     -o /tmp/fuzz_netdesc
 *   /tmp/fuzz_netdesc -max_total_time=300 -dict=fuzz/netdesc.dict /tmp/nd_new fuzz/corpus/netdesc
 * tests/test_fuzz_replay.c replays the committed corpus through uakd_fuzz_netdesc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/darknet_weights.h"
#include "uakd/netdesc.h"
#include "uakd/status.h"

/* 1: accepted (and round trip held), 0: refused with a message, -1: round trip violated. */
int uakd_fuzz_netdesc(const uint8_t *data, size_t size) {
    uakd_netdesc *d;
    uakd_clear_error();
    if (uakd_netdesc_parse((const char *)data, size, "fuzz", &d) != UAKD_OK) return uakd_last_error()[0] ? 0 : -1;
    int ok = 1;
    char *summary = NULL, *canon = NULL, *canon2 = NULL;
    uakd_netdesc *back = NULL;
    uakd_darknet_layer *layers = NULL;
    size_t n;
    uint64_t h1 = 0, h2 = 1;
    if (uakd_netdesc_summary(d, &summary) != UAKD_OK || uakd_netdesc_canonical(d, &canon) != UAKD_OK) ok = -1;
    uakd_darknet_layout(d, &layers, &n);
    if (ok == 1 && (uakd_netdesc_parse(canon, strlen(canon), "canonical", &back) != UAKD_OK ||
                    uakd_netdesc_canonical(back, &canon2) != UAKD_OK || strcmp(canon, canon2) != 0 ||
                    back->total_params != d->total_params || uakd_netdesc_hash(d, &h1) != UAKD_OK ||
                    uakd_netdesc_hash(back, &h2) != UAKD_OK || h1 != h2))
        ok = -1;
    /* A small input size exercises the shape errors and the restoring path. */
    int64_t params = d->total_params;
    uakd_netdesc_set_input_size(d, 3, 5);
    if (d->total_params != params) ok = -1;
    free(layers);
    free(summary);
    free(canon);
    free(canon2);
    uakd_netdesc_free(back);
    uakd_netdesc_free(d);
    return ok;
}

#ifndef UAKD_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (uakd_fuzz_netdesc(data, size) < 0) abort();
    return 0;
}
#endif
