/*
 * cli/endpoints.c - `switchyard endpoints list|get|create|update|delete|
 * rotate`: the admin API's endpoint routes for operators at a shell, with
 * --json printing the API's answers as they are for scripts. The daemon
 * validates and applies; this only builds the request and prints.
 */
#include "endpoints.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "admin_client.h"
#include "cli.h"
#include "endpoint.h"

/* The API refuses bodies over 1 MiB; a file one byte longer is already too long. */
#define BODY_MAX (1024 * 1024)

static void usage(FILE *f)
{
    fputs("usage: switchyard endpoints ACTION [ID] [options]\n"
          "\n"
          "Lists and changes the running daemon's endpoints through its admin API\n"
          "(/api/v1/endpoints). Changes apply at once, without a reload. Endpoints of\n"
          "the config files are listed with source \"config\" and change only there.\n"
          "\n"
          "actions:\n"
          "  list             every endpoint: id, source, org, sink, state\n"
          "  get ID           one endpoint as JSON (secrets as their prefix only)\n"
          "  create ID        a new endpoint from --data/--file and the shortcuts; a\n"
          "                   webhook endpoint without secrets gets a fresh whsec_\n"
          "                   secret, printed this once\n"
          "  update ID        merges --data/--file and the shortcuts into the endpoint\n"
          "                   (JSON merge patch: null removes a key); --replace puts\n"
          "                   them in its place instead\n"
          "  delete ID        removes it; its pending deliveries become dead letters\n"
          "                   (detail \"endpoint deleted\")\n"
          "  rotate ID        a new secret, printed this once; the previous one keeps\n"
          "                   signing beside it for --grace\n"
          "  enable ID        as `switchyard endpoint enable ID`\n"
          "\n"
          "  -c, --config DIR      the listen address and token are DIR's core.admin\n"
          "                        (default conf.d)\n"
          "  --admin HOST:PORT     ask there instead of core.admin.listen\n"
          "  --json                print the API's JSON answer as it is (errors too)\n"
          "  --data JSON           the endpoint object (create, update)\n"
          "  --file FILE           the endpoint object from FILE, - for stdin\n"
          "  --sink NAME           sets \"sink\" (create, update)\n"
          "  --url URL             sets \"url\" (create, update)\n"
          "  --org ORG             sets \"org_id\" (create, update)\n"
          "  --replace             update replaces the endpoint (PUT) instead of merging\n"
          "  --grace DURATION      rotate: how long the previous secret still signs\n"
          "                        (default 24h)\n"
          "  -h, --help            print this help\n"
          "\n"
          "Exit status: 0 done, 1 when the daemon cannot be asked or refuses (its error\n"
          "is printed, with the key it concerns), 2 on bad usage or configuration.\n", f);
}

typedef struct opts {
    const char *action, *id;
    const char *conf_dir, *addr;
    const char *data, *file, *sink, *url, *org, *grace;
    int json, replace;
} opts;

/* Reads FILE ("-": stdin) into a NUL-terminated buffer; NULL after saying why. */
static char *read_file(const char *cmd, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "switchyard %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(BODY_MAX + 2);
    size_t n = buf ? fread(buf, 1, BODY_MAX + 1, f) : 0;
    int bad = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad || n > BODY_MAX) {
        fprintf(stderr, "switchyard %s: %s: %s\n", cmd, path,
                bad ? "cannot read it" : "over 1 MiB, more than the API takes");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int set_string(cJSON *o, const char *key, const char *v)
{
    if (!v)
        return 0;
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    return cJSON_AddStringToObject(o, key, v) ? 0 : -1;
}

/*
 * The request body of create and update: --data or --file (a JSON object),
 * then the shortcuts (and create's ID) over it. NULL after saying why.
 */
static char *endpoint_body(const char *cmd, const opts *o)
{
    if (o->data && o->file) {
        fprintf(stderr, "switchyard %s: --data or --file, not both\n", cmd);
        return NULL;
    }
    char *text = o->file ? read_file(cmd, o->file) : NULL;
    if (o->file && !text)
        return NULL;
    const char *src = o->data ? o->data : text;
    cJSON *obj = src ? cJSON_ParseWithOpts(src, NULL, 1) : cJSON_CreateObject();
    free(text);
    if (!cJSON_IsObject(obj)) {
        fprintf(stderr, "switchyard %s: %s is not a JSON object\n", cmd,
                o->data ? "--data" : o->file);
        cJSON_Delete(obj);
        return NULL;
    }
    char *out = NULL;
    const char *id = !strcmp(o->action, "create") ? o->id : NULL;
    if (set_string(obj, "id", id) == 0 && set_string(obj, "sink", o->sink) == 0 &&
        set_string(obj, "url", o->url) == 0 && set_string(obj, "org_id", o->org) == 0)
        out = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!out)
        fprintf(stderr, "switchyard %s: out of memory\n", cmd);
    return out;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_list(const cJSON *arr)
{
    printf("%-32s %-7s %-16s %-16s %s\n", "ENDPOINT", "SOURCE", "ORG", "SINK", "STATE");
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *org = str_of(e, "org_id");
        printf("%-32s %-7s %-16s %-16s %s\n", str_of(e, "id"), str_of(e, "source"),
               org ? org : "-", str_of(e, "sink"), str_of(e, "state"));
    }
}

/* What the action printed for a person once the API said yes. */
static void print_done(const opts *o, const cJSON *a)
{
    const char *act = o->action, *secret = str_of(a, "secret");
    if (!strcmp(act, "list")) {
        print_list(a);
        return;
    }
    if (!strcmp(act, "get")) {
        char *t = cJSON_Print(a);
        printf("%s\n", t ? t : "");
        free(t);
        return;
    }
    if (!strcmp(act, "delete")) {
        printf("endpoint %s deleted; its pending deliveries are dead letters\n", o->id);
        return;
    }
    if (!strcmp(act, "rotate")) {
        printf("endpoint %s: new secret %s\n(shown this once: keep it now)\n", o->id, secret);
        const char *until = str_of(a, "previous_expires_at");
        if (until)
            printf("the previous secret keeps signing beside it until %s\n", until);
        return;
    }
    printf("endpoint %s %s\n", o->id, !strcmp(act, "create") ? "created" : "updated");
    if (secret)
        printf("secret %s\n(shown this once: keep it now)\n", secret);
}

static int run(const opts *o)
{
    char cmd[64], path[256], *body = NULL;
    snprintf(cmd, sizeof cmd, "endpoints %s", o->action);
    const char *method = "GET";
    const char *suffix = "";
    if (!strcmp(o->action, "create"))
        method = "POST";
    else if (!strcmp(o->action, "update"))
        method = o->replace ? "PUT" : "PATCH";
    else if (!strcmp(o->action, "delete"))
        method = "DELETE";
    else if (!strcmp(o->action, "rotate"))
        method = "POST", suffix = "/rotate-secret";
    if (!strcmp(o->action, "list") || !strcmp(o->action, "create"))
        snprintf(path, sizeof path, "/api/v1/endpoints");
    else
        snprintf(path, sizeof path, "/api/v1/endpoints/%s%s", o->id, suffix);

    char *json = NULL;
    if (!strcmp(o->action, "create") || !strcmp(o->action, "update")) {
        if (!(json = endpoint_body(cmd, o)))
            return 2;
    } else if (o->grace) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "grace", o->grace);
        json = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    }

    admin_target t;
    int rc = admin_target_load(cmd, o->conf_dir, o->addr, &t);
    if (rc) {
        free(json);
        return rc;
    }
    char err[512];
    int st = admin_request_json(&t, method, path, json, &body, err, sizeof err);
    admin_target_free(&t);
    free(json);
    if (st < 0) {
        fprintf(stderr, "switchyard %s: %s (is the daemon running?)\n", cmd, err);
        return 1;
    }
    int good = st >= 200 && st < 300;
    if (o->json)
        printf("%s\n", body);
    if (!good) {
        admin_print_refusal(cmd, st, body);
    } else if (!o->json) {
        cJSON *a = cJSON_Parse(body);
        print_done(o, a);
        cJSON_Delete(a);
    }
    free(body);
    return good ? 0 : 1;
}

/* Which options each action takes: a stray one is a mistake, not ignored. */
static int option_fits(const opts *o, int ch)
{
    int changes = !strcmp(o->action, "create") || !strcmp(o->action, "update");
    switch (ch) {
    case 'd': case 'f': case 's': case 'u': case 'o': return changes;
    case 'r': return !strcmp(o->action, "update");
    case 'g': return !strcmp(o->action, "rotate");
    default: return 1;
    }
}

int endpoints_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "enable"))
        return endpoint_main(argc, argv);
    static const char *const actions[] = {"list", "get", "create", "update", "delete", "rotate"};
    opts o = {.action = argv[1], .conf_dir = "conf.d"};
    size_t i = 0;
    while (i < sizeof actions / sizeof actions[0] && strcmp(actions[i], o.action))
        i++;
    if (i == sizeof actions / sizeof actions[0]) {
        fprintf(stderr, "switchyard endpoints: unknown action \"%s\"\n", o.action);
        usage(stderr);
        return 2;
    }
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'}, {"admin", required_argument, 0, 'a'},
        {"json", no_argument, 0, 'j'},         {"data", required_argument, 0, 'd'},
        {"file", required_argument, 0, 'f'},   {"sink", required_argument, 0, 's'},
        {"url", required_argument, 0, 'u'},    {"org", required_argument, 0, 'o'},
        {"replace", no_argument, 0, 'r'},      {"grace", required_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    char cmd[64];
    snprintf(cmd, sizeof cmd, "endpoints %s", o.action);
    int ch, li;
    optind = 1;
    argc--, argv++;
    while ((ch = getopt_long(argc, argv, "c:h", longs, &li)) != -1) {
        if (ch != '?' && !option_fits(&o, ch)) {
            fprintf(stderr, "switchyard %s: --%s is not an option of %s (switchyard endpoints "
                            "--help)\n", cmd, longs[li].name, o.action);
            return 2;
        }
        switch (ch) {
        case 'c': o.conf_dir = optarg; break;
        case 'a': o.addr = optarg; break;
        case 'j': o.json = 1; break;
        case 'd': o.data = optarg; break;
        case 'f': o.file = optarg; break;
        case 's': o.sink = optarg; break;
        case 'u': o.url = optarg; break;
        case 'o': o.org = optarg; break;
        case 'r': o.replace = 1; break;
        case 'g': o.grace = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (strcmp(o.action, "list")) {
        if (optind >= argc) {
            fprintf(stderr, "switchyard %s: which endpoint? (switchyard %s ID; switchyard "
                            "endpoints list lists them)\n", cmd, cmd);
            return 2;
        }
        o.id = argv[optind++];
        if (!admin_id_ok(o.id)) {
            fprintf(stderr, "switchyard %s: \"%s\" is not an endpoint id (letters, digits, "
                            "'_', '-' and '.', at most 128)\n", cmd, o.id);
            return 2;
        }
    }
    if (cli_extra_args(cmd, argc, argv))
        return 2;
    return run(&o);
}
