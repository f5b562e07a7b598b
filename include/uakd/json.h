/* JSON documents as files (libcjson): atomic writing of a whole document, and the first difference
 * between the settings a run recorded and the settings of the command now. */
#ifndef UAKD_JSON_H
#define UAKD_JSON_H

#include <stddef.h>

#include "uakd/status.h"

struct cJSON;

/* Prints j and replaces path with it atomically (uakd/fileio.h). Takes j over and deletes it; a NULL
 * j (a failed cJSON_Create*) is UAKD_ENOMEM. */
uakd_status uakd_json_write_atomic(const char *path, struct cJSON *j);

/* Compares every member of the object want with the member of the same name in have. why (size
 * cap) gets "" when all agree, else the first difference: "key: recorded <have>, now <want>". */
void uakd_json_first_difference(const struct cJSON *want, const struct cJSON *have, char *why, size_t cap);

#endif
