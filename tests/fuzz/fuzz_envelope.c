/*
 * fuzz_envelope.c - libFuzzer target for envelope_parse.
 *
 * Every byte a publisher sends reaches envelope_parse before anything else
 * looks at it, so this is the first target to keep clean. The first two
 * input bytes pick max_depth and max_bytes (the daemon's limits are config,
 * so every combination is reachable in production); the rest is the
 * message. Beyond "no crash, no leak, no UB" the target checks what the
 * rest of the daemon relies on when an event is accepted:
 *   - the body is a byte-exact, NUL-terminated copy (sinks deliver it as is);
 *   - event_id is 1-255 bytes of printable ASCII without spaces (it goes
 *     into HTTP headers and message ids), event_type passes the type grammar, org_id
 *     and org_slug are NULL or 1-255 bytes (router and spool trust this);
 *   - a rejection leaves *out NULL and a non-empty reason text;
 *   - the fields decoded from the scan equal cJSON's, and whatever the
 *     scanner accepts cJSON parses (the tree is built lazily, trusting it).
 * The grammar helpers and path lookups are driven with the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "jsonscan.h"

#include "fuzz.h"

/* An invariant failed: abort so libFuzzer saves the input as a crash. */

static void check_event(const sy_event *ev, const uint8_t *msg, size_t len)
{
    char buf[64];
    CHECK(ev->body_len == len);
    CHECK(memcmp(ev->body, msg, len) == 0);
    CHECK(ev->body[len] == '\0');
    CHECK(event_json(ev) != NULL && cJSON_IsObject(event_json(ev)));
    CHECK(ev->event_id && ev->event_id[0] && strlen(ev->event_id) <= 255);
    for (const char *p = ev->event_id; *p; p++)
        CHECK(*p >= 0x21 && *p <= 0x7E);
    CHECK(ev->event_type && envelope_type_valid(ev->event_type));
    CHECK(strlen(ev->event_type) <= 255);
    CHECK(!ev->org_id || (ev->org_id[0] && strlen(ev->org_id) <= 255));
    CHECK(!ev->org_slug || (ev->org_slug[0] && strlen(ev->org_slug) <= 255));
    CHECK(ev->refs == 1);
    /* What sy_host.field() and filters look up: must never read out of bounds. */
    static const char *const paths[] = {"event_id", "data", "data.a", "data.a.0", "data.0",
                                        "data.items.1.x", "", ".", "data..a", "org_id"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int n = json_path_text(event_json(ev), paths[i], buf, sizeof buf);
        CHECK(n < 0 || strlen(buf) == ((size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1));
    }
    CHECK(json_path_text(event_json(ev), "event_id", NULL, 0) == (int)strlen(ev->event_id));
    /* The fields decoded from the scan are what cJSON decodes. */
    const cJSON *t = event_json(ev);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(t, "event_id")->valuestring, ev->event_id) == 0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(t, "event_type")->valuestring, ev->event_type) == 0);
    const cJSON *org = cJSON_GetObjectItemCaseSensitive(t, "org_id");
    CHECK(ev->org_id ? cJSON_IsString(org) && strcmp(org->valuestring, ev->org_id) == 0
                     : !org || cJSON_IsNull(org));
}

/*
 * The scanner accepts a subset of what cJSON accepts: event_json builds the
 * tree later, trusting that it cannot fail on an accepted event.
 */
static void check_scan_vs_cjson(const uint8_t *msg, size_t len)
{
    js_result jr;
    if (js_scan((const char *)msg, len, 1000, &jr) != 0)
        return;
    cJSON *t = cJSON_ParseWithLengthOpts((const char *)msg, len, NULL, 0);
    /*
     * cJSON skips a byte order mark only when more than one byte follows it:
     * it refuses BOM + "1", which RFC 8259 allows and the scanner takes. No
     * envelope is that short (an object is at least "{}"), so the lazy tree
     * never meets it.
     */
    if (!t && len == 4 && memcmp(msg, "\xEF\xBB\xBF", 3) == 0 && jr.type != JS_OBJECT)
        return;
    CHECK(t != NULL);
    CHECK((jr.type == JS_OBJECT) == (cJSON_IsObject(t) != 0));
    CHECK((jr.type == JS_STRING) == (cJSON_IsString(t) != 0));
    if (jr.type == JS_OBJECT && !jr.more_members)
        CHECK((size_t)cJSON_GetArraySize(t) == jr.nmembers);
    cJSON_Delete(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* 0..1023 covers the config range (2-1000) and the edges either side of it. */
    int max_depth = (int)(((unsigned)data[0] << 2) | (data[1] >> 6));
    /* Small limits make too_big reachable; 0xFF.. means "the 1 MiB default". */
    size_t max_bytes = (data[1] & 0x3F) == 0x3F ? (size_t)1 << 20 : (size_t)(data[1] & 0x3F) * 16;
    const uint8_t *msg = data + 2;
    size_t len = size - 2;

    sy_event *ev = (sy_event *)0x1; /* must be overwritten either way */
    char why[512];
    memset(why, 'x', sizeof why);
    env_reason r = envelope_parse((const char *)msg, len, max_bytes, max_depth, &ev, why,
                                  sizeof why);
    CHECK(memchr(why, '\0', sizeof why) != NULL);
    if (r == ENV_OK) {
        CHECK(ev != NULL);
        CHECK(why[0] == '\0');
        check_event(ev, msg, len);
        event_ref(ev);
        event_unref(ev);
        event_unref(ev);
    } else {
        CHECK(ev == NULL);
        CHECK(r > ENV_OK && r < ENV_REASON_COUNT && r != ENV_BAD_FRAMES);
        CHECK(why[0] != '\0');
        CHECK(strcmp(envelope_reason_name(r), "unknown") != 0);
    }

    check_scan_vs_cjson(msg, len);

    /* The grammar checks take C strings: feed them the message cut at its first NUL. */
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, msg, len);
        s[len] = '\0';
        (void)envelope_type_valid(s);
        (void)envelope_rfc3339_valid(s);
        free(s);
    }
    return 0;
}
