/* Ensemble directories (uakd/distill.h): member_<e>/ training directories and ensemble.json.
 *
 * A member is finished when member_<e>/model.safetensors exists and resumable when
 * member_<e>/checkpoint.safetensors exists; its validation score is the last "val_add_01" of
 * member_<e>/train_log.jsonl. The designated PFKD member is the finished member with the best
 * score (first on ties, 0 when none has a score). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "uakd/distill.h"
#include "uakd/fileio.h"
#include "uakd/json.h"

#define ENSEMBLE_FORMAT "uakd-ensemble"
#define ENSEMBLE_VERSION 1

uakd_status uakd_ensemble_member_dir(const char *dir, int e, char *buf, size_t cap) {
    if (e < 0 || e >= UAKD_ENSEMBLE_MAX) return uakd_fail(UAKD_EINVAL, "ensemble: member %d out of range", e);
    if (snprintf(buf, cap, "%s/member_%d", dir, e) >= (int)cap)
        return uakd_fail(UAKD_EINVAL, "ensemble: path %s/member_%d too long", dir, e);
    return UAKD_OK;
}

static int file_exists(const char *dir, const char *name) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Last "val_add_01" of dir/train_log.jsonl, NAN when none. */
static double last_val_score(const char *dir) {
    char p[4200], line[8192];
    snprintf(p, sizeof p, "%s/train_log.jsonl", dir);
    FILE *f = fopen(p, "r");
    double v = NAN;
    if (!f) return v;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, "val_add_01") : NULL;
        if (cJSON_IsNumber(s)) v = s->valuedouble;
        cJSON_Delete(j);
    }
    fclose(f);
    return v;
}

static void designate(uakd_ensemble_info *info) {
    info->pfkd_member = 0;
    double best = -INFINITY;
    for (int e = 0; e < info->members; e++)
        if (info->m[e].finished && isfinite(info->m[e].val_add_01) && info->m[e].val_add_01 > best)
            best = info->m[e].val_add_01, info->pfkd_member = e;
}

uakd_status uakd_ensemble_scan(const char *dir, int members, uint64_t s0, uakd_ensemble_info *info) {
    if (members < 1 || members > UAKD_ENSEMBLE_MAX)
        return uakd_fail(UAKD_EINVAL, "ensemble: %d members (1..%d)", members, UAKD_ENSEMBLE_MAX);
    uakd_ensemble_info old;
    const int have_old = uakd_ensemble_read(dir, &old) == UAKD_OK;
    uakd_clear_error();
    memset(info, 0, sizeof *info);
    info->members = members;
    for (int e = 0; e < members; e++) {
        char md[4096];
        UAKD_TRY(uakd_ensemble_member_dir(dir, e, md, sizeof md));
        uakd_ensemble_member *m = &info->m[e];
        m->seed = have_old && e < old.members ? old.m[e].seed : s0 + (uint64_t)e;
        m->finished = file_exists(md, "model.safetensors");
        m->has_checkpoint = file_exists(md, "checkpoint.safetensors");
        m->val_add_01 = last_val_score(md);
    }
    designate(info);
    char md[4096];
    uakd_model_info mi;
    if (uakd_ensemble_member_dir(dir, 0, md, sizeof md) == UAKD_OK && uakd_model_info_read(md, &mi, NULL, 0) == UAKD_OK)
        snprintf(info->architecture, sizeof info->architecture, "%.40s width %d tower %d input %d",
                 mi.variant[0] ? mi.variant : mi.cfg_path, mi.model.width, mi.model.tower_convs, mi.model.input_size);
    uakd_clear_error();
    return UAKD_OK;
}

uakd_status uakd_ensemble_write(const char *dir, const uakd_ensemble_info *info) {
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "format", ENSEMBLE_FORMAT);
    cJSON_AddNumberToObject(j, "version", ENSEMBLE_VERSION);
    cJSON_AddStringToObject(j, "architecture", info->architecture);
    cJSON_AddItemToObject(j, "members", arr);
    for (int e = 0; e < info->members; e++) {
        cJSON *m = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof name, "member_%d", e);
        cJSON_AddStringToObject(m, "dir", name);
        cJSON_AddNumberToObject(m, "seed", (double)info->m[e].seed);
        cJSON_AddBoolToObject(m, "finished", info->m[e].finished);
        if (isfinite(info->m[e].val_add_01)) cJSON_AddNumberToObject(m, "val_add_01", info->m[e].val_add_01);
        else cJSON_AddNullToObject(m, "val_add_01");
        cJSON_AddItemToArray(arr, m);
    }
    cJSON_AddNumberToObject(j, "pfkd_member", info->pfkd_member);
    char p[4200];
    snprintf(p, sizeof p, "%s/ensemble.json", dir);
    return uakd_json_write_atomic(p, j);
}

static uakd_status bad(const char *path, const char *what) {
    return uakd_fail(UAKD_EFORMAT, "%s: %s (rerun `uakd ensemble` to rewrite it)", path, what);
}

static int only_keys(const cJSON *o, const char *const *keys, int n) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        int ok = 0;
        for (int i = 0; i < n; i++) ok |= !strcmp(it->string, keys[i]);
        if (!ok) return 0;
    }
    return 1;
}

static uakd_status parse(const cJSON *j, const char *path, uakd_ensemble_info *info) {
    static const char *const top[] = {"format", "version", "architecture", "members", "pfkd_member"};
    static const char *const mk[] = {"dir", "seed", "finished", "val_add_01"};
    if (!cJSON_IsObject(j) || !only_keys(j, top, 5))
        return bad(path, "not an object with format, version, architecture, members, pfkd_member");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "architecture");
    if (arch && (!cJSON_IsString(arch) || strlen(arch->valuestring) >= sizeof info->architecture))
        return bad(path, "architecture must be a short string");
    if (arch) snprintf(info->architecture, sizeof info->architecture, "%s", arch->valuestring);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format"), *v = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, ENSEMBLE_FORMAT) || !cJSON_IsNumber(v) ||
        v->valuedouble != ENSEMBLE_VERSION)
        return bad(path, "format must be \"uakd-ensemble\" version 1");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "members"), *pm = cJSON_GetObjectItemCaseSensitive(j, "pfkd_member");
    const int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > UAKD_ENSEMBLE_MAX) return bad(path, "members must be an array of 1..32 members");
    if (!cJSON_IsNumber(pm) || pm->valuedouble != (int)pm->valuedouble || pm->valueint < 0 || pm->valueint >= n)
        return bad(path, "pfkd_member must be a member index");
    info->members = n;
    info->pfkd_member = pm->valueint;
    int e = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char want[32];
        snprintf(want, sizeof want, "member_%d", e);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "dir"), *s = cJSON_GetObjectItemCaseSensitive(it, "seed"),
                    *fi = cJSON_GetObjectItemCaseSensitive(it, "finished"),
                    *va = cJSON_GetObjectItemCaseSensitive(it, "val_add_01");
        if (!cJSON_IsObject(it) || !only_keys(it, mk, 4) || !cJSON_IsString(d) || strcmp(d->valuestring, want) ||
            !cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 9e15 || !cJSON_IsBool(fi) ||
            !(cJSON_IsNumber(va) || cJSON_IsNull(va)))
            return bad(path, "a member needs dir \"member_<index>\", seed >= 0, finished (bool), val_add_01 (number or null)");
        info->m[e].seed = (uint64_t)s->valuedouble;
        info->m[e].finished = cJSON_IsTrue(fi);
        info->m[e].val_add_01 = cJSON_IsNumber(va) ? va->valuedouble : NAN;
        e++;
    }
    return UAKD_OK;
}

uakd_status uakd_ensemble_read(const char *dir, uakd_ensemble_info *info) {
    memset(info, 0, sizeof *info);
    char p[4200];
    snprintf(p, sizeof p, "%s/ensemble.json", dir);
    void *data;
    size_t size;
    UAKD_TRY(uakd_read_file(p, (size_t)1 << 20, &data, &size));
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    uakd_status st = j ? parse(j, p, info) : bad(p, "not valid JSON");
    cJSON_Delete(j);
    return st;
}
