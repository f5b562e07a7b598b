/* JSON documents as files (uakd/json.h): print + atomic write, and a member-by-member comparison
 * (cJSON_Compare, case-sensitive names) that describes the first mismatch. */
#include "uakd/json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/fileio.h"

uakd_status uakd_json_write_atomic(const char *path, cJSON *j) {
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) return uakd_fail(UAKD_ENOMEM, "%s: out of memory formatting JSON", path);
    const uakd_status st = uakd_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

void uakd_json_first_difference(const cJSON *want, const cJSON *have, char *why, size_t cap) {
    why[0] = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, want) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
        if (h && cJSON_Compare(w, h, 1)) continue;
        char *a = h ? cJSON_PrintUnformatted(h) : NULL, *b = cJSON_PrintUnformatted(w);
        snprintf(why, cap, "%s: recorded %s, now %s", w->string, a ? a : "(missing)", b ? b : "?");
        free(a), free(b);
        return;
    }
}
