/* libFuzzer target for the safetensors reader.
 *
 * Every input is parsed; an accepted file must also survive the round trip: all float tensors
 * convert, typed metadata getters run, and the writer's re-serialisation parses again to the same
 * names, dtypes, shapes and bytes. A violated round trip returns -1 (abort() under libFuzzer).
 *
 * Build and run (clang 14 with compiler-rt, from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     fuzz/fuzz_safetensors.c src/safetensors.c src/fileio.c src/status.c -lcjson -o /tmp/fuzz_safetensors
 *   /tmp/fuzz_safetensors -max_total_time=300 /tmp/st_new fuzz/corpus/safetensors
 * (new finds land in /tmp/st_new; merge the interesting ones with -merge=1 into the corpus).
 * tests/test_fuzz_replay.c replays the committed corpus through uakd_fuzz_safetensors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/safetensors.h"
#include "uakd/status.h"

/* 1: accepted (and round trip held), 0: refused with a message, -1: round trip violated. */
int uakd_fuzz_safetensors(const uint8_t *data, size_t size) {
    uakd_safetensors *st;
    uakd_clear_error();
    if (uakd_safetensors_parse(data, size, "fuzz", &st) != UAKD_OK) return uakd_last_error()[0] ? 0 : -1;
    int ok = 1;
    uakd_safetensors_writer *w = NULL;
    if (uakd_safetensors_writer_new(&w) != UAKD_OK) ok = -1;
    for (size_t i = 0; ok == 1 && i < uakd_safetensors_count(st); i++) {
        const uakd_st_tensor *t = uakd_safetensors_at(st, i);
        float *f = malloc(t->numel ? t->numel * sizeof *f : 1);
        int is_float = t->dtype == UAKD_DTYPE_F64 || t->dtype == UAKD_DTYPE_F32 || t->dtype == UAKD_DTYPE_F16 ||
                       t->dtype == UAKD_DTYPE_BF16;
        if (f && is_float && uakd_st_tensor_to_f32(t, f) != UAKD_OK) ok = -1;
        free(f);
        if (ok == 1 && uakd_safetensors_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) != UAKD_OK) ok = -1;
    }
    for (size_t i = 0; ok == 1 && i < uakd_safetensors_meta_count(st); i++) {
        const char *k = uakd_safetensors_meta_key(st, i);
        uint64_t u;
        double d;
        unsigned char hex[8];
        uakd_safetensors_meta_u64(st, k, &u);
        uakd_safetensors_meta_f64(st, k, &d);
        uakd_safetensors_meta_hex(st, k, hex, sizeof hex);
        if (strcmp(k, "data_crc32") != 0 && uakd_safetensors_writer_set_meta(w, k, uakd_safetensors_meta(st, k)) != UAKD_OK)
            ok = -1;
    }
    uakd_safetensors_expect_format(st, "uakd-checkpoint", 1, NULL);
    if (ok == 1) {
        uakd_safetensors_writer_checksum(w, 1);
        void *buf;
        size_t len;
        uakd_safetensors *back = NULL;
        if (uakd_safetensors_writer_to_memory(w, &buf, &len) != UAKD_OK) ok = -1;
        else {
            if (uakd_safetensors_parse(buf, len, "rewritten", &back) != UAKD_OK ||
                uakd_safetensors_count(back) != uakd_safetensors_count(st))
                ok = -1;
            for (size_t i = 0; ok == 1 && i < uakd_safetensors_count(st); i++) {
                const uakd_st_tensor *a = uakd_safetensors_at(st, i), *b = uakd_safetensors_at(back, i);
                if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim ||
                    memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) || a->nbytes != b->nbytes ||
                    (a->nbytes && memcmp(a->data, b->data, a->nbytes)))
                    ok = -1;
            }
            uakd_safetensors_free(back);
            free(buf);
        }
    }
    uakd_safetensors_writer_free(w);
    uakd_safetensors_free(st);
    return ok;
}

#ifndef UAKD_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (uakd_fuzz_safetensors(data, size) < 0) abort();
    return 0;
}
#endif
