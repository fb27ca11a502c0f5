/*
 * mergepatch.c - RFC 7396, written as the RFC's own pseudo-code reads:
 *
 *   define MergePatch(Target, Patch):
 *     if Patch is an Object:
 *       if Target is not an Object: Target = {}
 *       for each Name/Value pair in Patch:
 *         if Value is null: remove Name from Target (if present)
 *         else: Target[Name] = MergePatch(Target[Name], Value)
 *       return Target
 *     else: return Patch
 *
 * Working on a copy keeps the caller's tree intact, which is what lets a
 * failed PATCH leave the stored endpoint exactly as it was.
 */
#include "mergepatch.h"

/* Puts v (owned) under name in t, where a member of that name was, or at the end. */
static int set_member(cJSON *t, const char *name, cJSON *v, int *oom)
{
    int ok = cJSON_GetObjectItemCaseSensitive(t, name)
                 ? cJSON_ReplaceItemInObjectCaseSensitive(t, name, v)
                 : cJSON_AddItemToObject(t, name, v);
    if (!ok) {
        cJSON_Delete(v);
        *oom = 1;
        return -1;
    }
    return 0;
}

/*
 * Applies the object patch p to the object t in place. Members keep their
 * place (a GET after a PATCH reads like the document before it). 0, or -1
 * when out of memory.
 */
static int merge_object(cJSON *t, const cJSON *p, int *oom)
{
    for (const cJSON *m = p->child; m; m = m->next) {
        if (cJSON_IsNull(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(t, m->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(t, m->string);
        if (cJSON_IsObject(m) && cJSON_IsObject(cur)) {
            if (merge_object(cur, m, oom) != 0)
                return -1;
            continue;
        }
        cJSON *v = cJSON_IsObject(m) ? cJSON_CreateObject() : cJSON_Duplicate(m, 1);
        if (!v) {
            *oom = 1;
            return -1;
        }
        if (cJSON_IsObject(m) && merge_object(v, m, oom) != 0) {
            cJSON_Delete(v);
            return -1;
        }
        if (set_member(t, m->string, v, oom) != 0)
            return -1;
    }
    return 0;
}

cJSON *mergepatch_apply(const cJSON *target, const cJSON *patch, int *oom)
{
    *oom = 0;
    if (!cJSON_IsObject(patch)) {
        if (cJSON_IsNull(patch))
            return NULL;
        cJSON *copy = cJSON_Duplicate(patch, 1);
        *oom = copy == NULL;
        return copy;
    }
    cJSON *t = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!t || merge_object(t, patch, oom) != 0) {
        *oom = 1;
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}
