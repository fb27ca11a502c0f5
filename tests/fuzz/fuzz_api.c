/*
 * fuzz_api.c - libFuzzer target: the admin API's endpoint changes
 * (core/epset.c, core/mergepatch.c) and the config checks their result
 * goes through (config_add_api_endpoints).
 *
 * The input is a small program: chunks split at NUL bytes, each one change.
 * A chunk's first byte picks the change (create, replace, patch, rotate,
 * remove) and the caller (the admin token, or an org token of "acme" or
 * "beta"), its second byte the endpoint id from a tiny set (so changes meet
 * the same endpoints), and the rest is the JSON body. After each change:
 *   - 0 comes with status 0; -1 with status 400, 404, 409 or 500, a reason
 *     and NUL-terminated texts;
 *   - an org token never touches another org's endpoint, or one without an
 *     org: such a change answers 404 and leaves the set as it was;
 *   - the set stays sorted by id, every id valid, and after a change by an
 *     org token the endpoint it made or changed belongs to that org;
 *   - a secret the change made starts with whsec_ and never shows in what
 *     GET shows (epset_meta_json);
 *   - a merge patch applied twice gives what it gave once (RFC 7396).
 * At the end the set, as the config's endpoints object, goes through
 * config_add_api_endpoints on a fixed config, which must count what it
 * reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "epset.h"
#include "mergepatch.h"

#include "fuzz.h"

static const char *const ids[] = {"a", "b", "x.1", "hook-1", "", "bad/id"};
#define NIDS (sizeof ids / sizeof ids[0])
static const char *const orgs[] = {NULL, "acme", "beta"};

static config_source *src;

static int takes(void *arg, const char *sink)
{
    (void)arg;
    return !strcmp(sink, "hooks");
}

static int counter_random(unsigned char *buf, size_t n)
{
    static unsigned k;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(k++ * 31u);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/fuzz_api.XXXXXX";
    CHECK(mkdtemp(dir));
    static const char *const files[][2] = {
        {"10-core.json", "{\"core\": {\"spool\": null, \"ingress\": [{\"type\": \"pull\", "
                         "\"bind\": \"tcp://127.0.0.1:5556\"}]}}"},
        {"20-sinks.json", "{\"sinks\": {\"files\": {\"plugin\": \"file\", \"path\": \"/tmp/x\"},"
                          " \"hooks\": {\"plugin\": \"webhook\"}},"
                          " \"endpoints\": {\"a\": {\"sink\": \"files\"}}}"},
    };
    for (size_t i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs(files[i][1], f) >= 0 && fclose(f) == 0);
    }
    sy_errs e = {0};
    src = config_read(dir, &e);
    CHECK(src);
    errs_free(&e);
    return 0;
}

static char *print(const epset *s)
{
    cJSON *j = epset_json(s, 0);
    CHECK(j);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    CHECK(t);
    return t;
}

static void check_set(const epset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        CHECK(epset_id_valid(s->v[i].id));
        CHECK(i == 0 || strcmp(s->v[i - 1].id, s->v[i].id) < 0);
    }
}

static int visible(const epset_ep *e, const char *org)
{
    return e && (!org || (e->org_id && !strcmp(e->org_id, org)));
}

/* The patch law: applying p to what it produced changes nothing. */
static void check_patch_idempotent(const epset_ep *e, const cJSON *p)
{
    int oom = 0;
    cJSON *once = mergepatch_apply(e->config, p, &oom);
    if (!once)
        return;
    cJSON *twice = mergepatch_apply(once, p, &oom);
    if (twice)
        CHECK(cJSON_Compare(once, twice, 1));
    cJSON_Delete(once);
    cJSON_Delete(twice);
}

static void one_change(epset *s, const uint8_t *p, size_t n, int64_t now)
{
    if (n < 2)
        return;
    unsigned kind = p[0] % 5, who = (p[0] / 5) % 3;
    const char *id = ids[p[1] % NIDS];
    cJSON *body = cJSON_ParseWithLength((const char *)p + 2, n - 2);
    epset_ctx c = {.org = orgs[who], .now_ms = now, .takes_secrets = takes,
                   .random = counter_random};
    epset_out out;
    memset(&out, 0, sizeof out);
    char *before = print(s);
    const epset_ep *target = epset_find(s, id);
    int hidden = target && !visible(target, c.org);
    if (kind == 2 && body && visible(target, c.org))
        check_patch_idempotent(target, body);
    int rc;
    switch (kind) {
    case 0: rc = epset_create(s, body, &c, &out); break;
    case 1: rc = epset_replace(s, id, body, &c, &out); break;
    case 2: rc = epset_patch(s, id, body, &c, &out); break;
    case 3: rc = epset_rotate(s, id, body, &c, &out); break;
    default: rc = epset_remove(s, id, &c, &out); break;
    }
    CHECK(memchr(out.error, '\0', sizeof out.error) && memchr(out.path, '\0', sizeof out.path));
    if (rc == 0) {
        CHECK(out.status == 0);
    } else {
        CHECK(rc == -1 && out.error[0]);
        CHECK(out.status == 400 || out.status == 404 || out.status == 409 || out.status == 500);
    }
    if (hidden && kind != 0) {
        /* Another org's endpoint: as if it did not exist, and untouched. */
        CHECK(rc == -1 && out.status == 404);
        char *after = print(s);
        CHECK(!strcmp(before, after));
        free(after);
    }
    if (rc == 0 && kind != 4 && c.org) {
        const epset_ep *e = epset_find(s, out.id);
        CHECK(e && e->org_id && !strcmp(e->org_id, c.org));
    }
    if (out.secret) {
        CHECK(!strncmp(out.secret, "whsec_", 6));
        cJSON *meta = epset_meta_json(s);
        char *shown = meta ? cJSON_PrintUnformatted(meta) : NULL;
        CHECK(!shown || !strstr(shown, out.secret));
        free(shown);
        cJSON_Delete(meta);
    }
    check_set(s);
    epset_out_clear(&out);
    free(before);
    cJSON_Delete(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    epset s = {0};
    int64_t now = 1000;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != 0)
            continue;
        one_change(&s, data + start, i - start, now);
        now += 3600 * 1000;
        epset_expire(&s, now);
        start = i + 1;
    }
    cJSON *eps = epset_json(&s, now);
    CHECK(eps);
    sy_errs e = {0};
    sy_conf *c = config_build(src, &e);
    CHECK(c);
    int bad = config_add_api_endpoints(c, eps, &e);
    CHECK(bad >= 0 && (bad == 0 || e.count > 0));
    config_free(c);
    errs_free(&e);
    cJSON_Delete(eps);
    epset_free(&s);
    return 0;
}
