/*
 * mergepatch.h - JSON Merge Patch (RFC 7396) on cJSON trees.
 *
 * A patch that is an object changes the target member by member: null
 * removes a member, an object patches the member recursively (creating
 * it when absent or not an object), anything else replaces it. A patch
 * that is not an object replaces the whole target. Arrays are values:
 * a patch never merges into an array.
 */
#ifndef SY_MERGEPATCH_H
#define SY_MERGEPATCH_H

#include <cjson/cJSON.h>

/*
 * Returns a new tree: target (may be NULL: absent) with patch applied.
 * Neither argument is changed; the caller owns the result and deletes it
 * with cJSON_Delete. NULL when the result is "absent" (a patch of null)
 * or when out of memory; *oom tells the two apart (1 = out of memory).
 */
cJSON *mergepatch_apply(const cJSON *target, const cJSON *patch, int *oom);

#endif
