/*
 * cli/main.c - the switchyard command line: one function per command, each
 * with its own --help. Exit status everywhere: 0 done, 1 failed, 2 bad
 * usage or configuration.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cfgtable.h"
#include "cli.h"
#include "config.h"
#include "config_keys.h"
#include "daemon.h"
#include "endpoint.h"
#include "endpoints.h"
#include "log.h"
#include "plugin.h"
#include "publish.h"
#include "retry.h"
#include "spool.h"
#include "status.h"
#include "units.h"
#include "version.h"

#ifndef SY_PLUGIN_DIR
#error "SY_PLUGIN_DIR (the installed plugin folder) comes from the Makefile"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: switchyard COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run       run the daemon on a config folder\n"
            "  check     validate a config folder (plugins included), print the routing table\n"
            "  publish   send events to a running daemon\n"
            "  plugins   list sink plugins, or print one plugin's config keys\n"
            "  keys      print the config keys the core reads (core, sinks, endpoints)\n"
            "  replay    put dead deliveries back to pending, or list them\n"
            "  status    endpoints with state, success rate, pending, dead, last error\n"
            "  endpoint  enable an endpoint that disable_after stopped (endpoint enable ID)\n"
            "  endpoints list, get, create, update, delete or rotate endpoints (admin API)\n"
            "  version   print the version, git commit and sink ABI (also -V, --version)\n"
            "\n"
            "switchyard COMMAND --help prints a command's options.\n");
}

static void run_usage(FILE *f, int check)
{
    fprintf(f, "usage: switchyard %s [-c DIR] [--log-level LEVEL] [--log-format FORMAT]\n\n",
            check ? "check" : "run");
    if (check)
        fputs("Validates the config folder DIR exactly as run would, plugins included (each\n"
              "sink's init runs; none contacts a peer), and prints the ingress sockets, the\n"
              "sinks and the routing table. Log lines written meanwhile (by plugins, say)\n"
              "follow the log options.\n", f);
    else
        fputs("Runs the daemon on the config folder DIR until SIGTERM or SIGINT (then drains);\n"
              "SIGHUP reloads DIR.\n", f);
    fputs("\n"
          "  -c, --config DIR      the config folder (default conf.d)\n"
          "  --log-level LEVEL     error, warn, info or debug (default: core.log_level)\n"
          "  --log-format FORMAT   logfmt or json (default: core.log_format)\n"
          "  -h, --help            print this help\n\n", f);
    fputs(check ? "Exit status: 0 valid, 2 not (every error is printed).\n"
                : "Exit status: 0 after a clean stop, 1 when start-up fails, 2 on a "
                  "configuration error.\n", f);
}

int cli_extra_args(const char *cmd, int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "switchyard %s: unexpected argument \"%s\" (switchyard %s --help)\n", cmd,
            argv[optind], cmd);
    return 1;
}

static int run_or_check(int argc, char **argv, int check)
{
    daemon_opts o = {0};
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"log-level", required_argument, 0, 'l'},
                                          {"log-format", required_argument, 0, 'f'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': o.conf_dir = optarg; break;
        case 'l': o.log_level = optarg; break;
        case 'f': o.log_format = optarg; break;
        case 'h': run_usage(stdout, check); return 0;
        default: run_usage(stderr, check); return 2;
        }
    }
    if (cli_extra_args(check ? "check" : "run", argc, argv))
        return 2;
    sy_log_level lvl;
    if (o.log_level && log_level_parse(o.log_level, &lvl)) {
        fprintf(stderr, "switchyard: --log-level is error, warn, info or debug\n");
        return 2;
    }
    if (o.log_format && strcmp(o.log_format, "json") && strcmp(o.log_format, "logfmt")) {
        fprintf(stderr, "switchyard: --log-format is logfmt or json\n");
        return 2;
    }
    if (!o.conf_dir)
        o.conf_dir = "conf.d";
    return check ? daemon_check(&o) : daemon_run(&o);
}

/* The plugin folder: -c's core.plugin_dir, --dir, the build tree, or the installed one. */
static char *plugin_dir_for(const char *conf_dir, const char *dir)
{
    if (dir)
        return strdup(dir);
    if (conf_dir) {
        sy_conf *c = config_load_or_report(conf_dir);
        if (!c)
            return NULL;
        char *d = strdup(c->plugin_dir);
        config_free(c);
        return d;
    }
    struct stat st;
    if (stat("build/plugins", &st) == 0 && S_ISDIR(st.st_mode))
        return strdup("build/plugins");
    return strdup(SY_PLUGIN_DIR);
}

static void plugins_usage(FILE *f)
{
    fprintf(f,
            "usage: switchyard plugins [-c DIR | --dir PLUGIN_DIR] [--describe NAME [--format F]]\n"
            "\n"
            "Lists the sink plugins of a plugin folder, loading each as the daemon would\n"
            "(refused ones say why), or prints one plugin's config keys.\n"
            "\n"
            "  -c, --config DIR      the folder is DIR's core.plugin_dir\n"
            "  --dir PLUGIN_DIR      the folder is PLUGIN_DIR\n"
            "                        (neither: ./build/plugins when it exists, else\n"
            "                        %s)\n"
            "  --describe NAME       NAME.so in the folder, or a path (with a '/'), as the\n"
            "                        \"plugin\" key of a sink names it\n"
            "  --format FORMAT       with --describe: text (the default), or scdoc: the\n"
            "                        plugin's section of switchyard.conf(5) (make man)\n"
            "  -h, --help            print this help\n"
            "\n"
            "Exit status: 0, 1 when a plugin is refused, 2 on bad usage or configuration.\n",
            SY_PLUGIN_DIR);
}

/*
 * The name a config loads a plugin file by: the file name without ".so".
 * The descriptor inside may carry another name (what logs and check show);
 * both are printed when they differ.
 */
static void file_stem(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 3 && !strcmp(base + n - 3, ".so"))
        n -= 3;
    snprintf(out, len, "%.*s", (int)n, base);
}

static const char *style_text(const sy_sink *s)
{
    return s->deliver         ? "blocking (deliver)"
           : s->deliver_batch ? "blocking, in batches (deliver_batch)"
           : s->submit        ? "asynchronous (submit)"
                              : "asynchronous, in batches (submit_batch)";
}

/* A plugin's section of switchyard.conf(5): what describe prints, as scdoc. */
static void describe_scdoc(const sy_sink *s, const char *stem, const char *name)
{
    printf("## %s\n\n", stem);
    cfgtable_scdoc_text(stdout, s->description ? s->description : "");
    printf(" (version ");
    cfgtable_scdoc_text(stdout, s->version ? s->version : "?");
    printf("; ");
    cfgtable_scdoc_text(stdout, style_text(s));
    printf("; default retry policy ");
    cfgtable_scdoc_text(stdout, s->default_retry ? s->default_retry : "standard");
    printf(").\n\n");
    printf("Sink instance keys ({\"sinks\": {\"NAME\": {\"plugin\": \"");
    cfgtable_scdoc_text(stdout, name);
    printf("\", ...}}}):\n\n");
    cfgtable_scdoc(stdout, s->instance_config);
    printf("Endpoint keys ({\"endpoints\": {\"ID\": {\"sink\": \"NAME\", ...}}}):\n\n");
    cfgtable_scdoc(stdout, s->endpoint_config);
}

static int describe(const char *pdir, const char *name, int scdoc)
{
    char path[4096], err[1024], stem[256];
    if (plugin_resolve(pdir, name, path, sizeof path)) {
        fprintf(stderr, "switchyard: plugin path too long: %s\n", name);
        return 1;
    }
    sy_plugin *p = plugin_load(path, err, sizeof err);
    if (!p) {
        fprintf(stderr, "switchyard: %s\n", err);
        return 1;
    }
    const sy_sink *s = p->sink;
    file_stem(p->path, stem, sizeof stem);
    if (scdoc) {
        describe_scdoc(s, stem, name);
        plugin_unload(p);
        return 0;
    }
    printf("%s %s - %s\n", stem, s->version ? s->version : "?",
           s->description ? s->description : "");
    printf("file: %s\n", p->path);
    if (strcmp(stem, s->name))
        printf("descriptor name: %s (logs and check name the plugin so; a config loads "
               "the file as \"%s\")\n", s->name, name);
    printf("style: %s\n", style_text(s));
    if ((s->deliver_batch || s->submit_batch) && s->batch_max > 1)
        printf("batches: up to %u deliveries, linger %ums%s\n", s->batch_max, s->batch_linger_ms,
               (s->flags & SY_SINK_BATCH_ACROSS) ? ", joined across endpoints" : "");
    else if (s->deliver_batch || s->submit_batch)
        printf("batches: one delivery per call, unless an endpoint's batch key asks for more "
               "and the plugin takes it\n");
    printf("default retry policy: %s\n", s->default_retry ? s->default_retry : "standard");
    printf("\nsink instance keys (\"sinks\": {\"NAME\": {\"plugin\": \"%s\", ...}}):\n", name);
    cfgtable_describe(stdout, s->instance_config, "  ");
    printf("\nendpoint keys (\"endpoints\": {\"ID\": {\"sink\": \"NAME\", ...}}):\n");
    cfgtable_describe(stdout, s->endpoint_config, "  ");
    plugin_unload(p);
    return 0;
}

static int list_plugins(const char *pdir)
{
    DIR *d = opendir(pdir);
    if (!d) {
        fprintf(stderr, "switchyard: cannot open plugin folder %s\n", pdir);
        return 1;
    }
    struct dirent *de;
    int bad = 0, n = 0;
    char path[4096], err[1024], stem[256];
    printf("plugins in %s:\n", pdir);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".so"))
            continue;
        snprintf(path, sizeof path, "%s/%s", pdir, de->d_name);
        sy_plugin *p = plugin_load(path, err, sizeof err);
        if (!p) {
            printf("  %-12s REFUSED: %s\n", de->d_name, err);
            bad++;
            continue;
        }
        const sy_sink *s = p->sink;
        file_stem(de->d_name, stem, sizeof stem);
        printf("  %-12s %-8s %s", stem, s->version ? s->version : "?",
               s->description ? s->description : "");
        if (strcmp(stem, s->name))
            printf(" (descriptor name: %s)", s->name);
        putchar('\n');
        plugin_unload(p);
        n++;
    }
    closedir(d);
    if (!n && !bad)
        printf("  (none)\n");
    return bad ? 1 : 0;
}

static int plugins_cmd(int argc, char **argv)
{
    const char *conf_dir = NULL, *dir = NULL, *name = NULL, *format = NULL;
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"dir", required_argument, 0, 'd'},
                                          {"describe", required_argument, 0, 'D'},
                                          {"format", required_argument, 0, 'f'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_dir = optarg; break;
        case 'd': dir = optarg; break;
        case 'D': name = optarg; break;
        case 'f': format = optarg; break;
        case 'h': plugins_usage(stdout); return 0;
        default: plugins_usage(stderr); return 2;
        }
    }
    if (cli_extra_args("plugins", argc, argv))
        return 2;
    if (format && (!name || (strcmp(format, "text") && strcmp(format, "scdoc")))) {
        fprintf(stderr, "switchyard plugins: --format goes with --describe, and is text or "
                        "scdoc\n");
        return 2;
    }
    char *pdir = plugin_dir_for(conf_dir, dir);
    if (!pdir)
        return 2;
    int rc = name ? describe(pdir, name, format && !strcmp(format, "scdoc")) : list_plugins(pdir);
    free(pdir);
    return rc;
}

static void keys_usage(FILE *f)
{
    fputs("usage: switchyard keys [--format FORMAT] [SECTION]\n"
          "\n"
          "Prints the config keys the core reads, with their type, default, range and help:\n"
          "those of SECTION, or of every section:\n", f);
    for (size_t i = 0; i < config_nsections; i++)
        fprintf(f, "  %-22s %s\n", config_sections[i].path, config_sections[i].shape);
    fputs("A plugin's keys: switchyard plugins --describe NAME.\n"
          "\n"
          "  --format FORMAT   text (the default); markdown: the tables of\n"
          "                    docs/CONFIG.md (make docs writes them there); or scdoc:\n"
          "                    the key lists of switchyard.conf(5) (make man)\n"
          "  -h, --help        print this help\n"
          "\n"
          "Exit status: 0, 2 on bad usage or an unknown section.\n", f);
}

static int keys_cmd(int argc, char **argv)
{
    const char *format = "text";
    static const struct option longs[] = {{"format", required_argument, 0, 'f'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 'f': format = optarg; break;
        case 'h': keys_usage(stdout); return 0;
        default: keys_usage(stderr); return 2;
        }
    }
    const char *path = optind < argc ? argv[optind++] : NULL;
    if (cli_extra_args("keys", argc, argv))
        return 2;
    int md = !strcmp(format, "markdown"), scd = !strcmp(format, "scdoc");
    if (!md && !scd && strcmp(format, "text")) {
        fprintf(stderr, "switchyard keys: --format is text, markdown or scdoc\n");
        return 2;
    }
    const config_section *one = path ? config_section_find(path) : NULL;
    if (path && !one) {
        fprintf(stderr, "switchyard keys: no section \"%s\" (switchyard keys --help lists "
                        "them)\n", path);
        return 2;
    }
    for (size_t i = 0; i < config_nsections; i++) {
        const config_section *s = &config_sections[i];
        if (one && s != one)
            continue;
        const char *gap = i && !one ? "\n" : "";
        if (md || scd) {
            if (!one) /* the docs give each table a heading of their own */
                printf("%s## %s\n\n", gap, s->path);
            if (md)
                cfgtable_markdown(stdout, s->table);
            else
                cfgtable_scdoc(stdout, s->table);
        } else {
            printf("%s%s: %s\n", gap, s->path, s->shape);
            cfgtable_describe(stdout, s->table, "  ");
        }
    }
    return 0;
}

/* "2h" means two hours ago; otherwise an RFC 3339 UTC time. */
static int parse_when(const char *s, int64_t *ms)
{
    int64_t d;
    if (units_parse_duration(s, &d) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - d;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && strcmp(end, "Z") != 0))
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static void replay_usage(FILE *f)
{
    fputs("usage: switchyard replay [-c DIR | --spool FILE] [--endpoint ID] [--event ID]\n"
          "                         [--since T] [--until T] [--list]\n"
          "\n"
          "Puts dead deliveries back to pending, due now with a fresh attempt count; a\n"
          "running daemon picks them up. The filters combine; none means every dead one.\n"
          "\n"
          "  -c, --config DIR   the store of DIR's config: core.spool, or core.store\n"
          "                     (default conf.d)\n"
          "  --spool FILE       a SQLite spool file itself\n"
          "  --endpoint ID      only deliveries to endpoint ID: one the config defines, or\n"
          "                     one the spool holds pending or dead deliveries for\n"
          "  --event ID         only deliveries of event ID\n"
          "  --since T          only those that died at T or later; T is a duration ago\n"
          "                     (\"2h\") or an RFC 3339 UTC time (2026-11-25T10:00:00Z)\n"
          "  --until T          only those that died before T\n"
          "  --list             only print them (at most 1000)\n"
          "  -h, --help         print this help\n"
          "\n"
          "Exit status: 0, 1 on failure or an unknown endpoint, 2 on bad usage or\n"
          "configuration.\n", f);
}

/*
 * An endpoint replay can act on: defined in the config (when there is one),
 * or holding pending or dead deliveries in the spool (an endpoint removed
 * from the config keeps its dead letters). Anything else is a typo that
 * would otherwise match nothing, silently. 1 known, 0 not, -1 error.
 */
static int endpoint_known(const sy_conf *c, sy_store *st, const char *id)
{
    for (size_t i = 0; c && i < c->nendpoints; i++)
        if (!strcmp(c->endpoints[i].id, id))
            return 1;
    store_ep_count *counts;
    long n = store_endpoint_counts(st, &counts);
    int found = 0;
    for (long i = 0; i < n && !found; i++)
        found = !strcmp(counts[i].endpoint, id);
    free(counts);
    return n < 0 ? -1 : found;
}

/* The message for an unknown endpoint: where it was looked for. */
static void unknown_endpoint(const sy_conf *c, const char *conf_dir, const char *where,
                             const char *id)
{
    fprintf(stderr, "switchyard replay: no endpoint \"%s\": ", id);
    if (c) {
        fprintf(stderr, "%s defines ", conf_dir);
        for (size_t i = 0; i < c->nendpoints; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", c->endpoints[i].id);
        fprintf(stderr, "%s, and ", c->nendpoints ? "" : "none");
    }
    fprintf(stderr, "%s holds no pending or dead delivery for it\n", where);
}

static int replay_cmd(int argc, char **argv)
{
    const char *conf_dir = "conf.d", *endpoint = NULL, *event = NULL, *spool = NULL;
    int64_t since = 0, until = 0;
    int list = 0;
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'}, {"spool", required_argument, 0, 's'},
        {"endpoint", required_argument, 0, 'e'}, {"event", required_argument, 0, 'i'},
        {"since", required_argument, 0, 'S'},  {"until", required_argument, 0, 'U'},
        {"list", no_argument, 0, 'l'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_dir = optarg; break;
        case 's': spool = optarg; break;
        case 'e': endpoint = optarg; break;
        case 'i': event = optarg; break;
        case 'S':
        case 'U':
            if (parse_when(optarg, ch == 'S' ? &since : &until)) {
                fprintf(stderr, "switchyard replay: \"%s\" is neither a duration (\"2h\") nor "
                                "an RFC 3339 UTC time (2026-11-25T10:00:00Z)\n", optarg);
                return 2;
            }
            break;
        case 'l': list = 1; break;
        case 'h': replay_usage(stdout); return 0;
        default: replay_usage(stderr); return 2;
        }
    }
    if (cli_extra_args("replay", argc, argv))
        return 2;
    sy_conf *c = NULL;
    store_conf sc = {.kind = STORE_SQLITE, .path = spool};
    if (!spool) {
        if (!(c = config_load_or_report(conf_dir)))
            return 2;
        if (!config_store(c, &sc)) {
            fprintf(stderr, "switchyard replay: %s has spool: null; dead letters live only in the "
                            "daemon's memory\n", conf_dir);
            config_free(c);
            return 2;
        }
    }
    char err[1024];
    long n = -1;
    int known = -1;
    sy_store *st = store_open(&sc, STORE_READER, err, sizeof err);
    if (st) {
        dead_filter f = {.endpoint = endpoint, .event_id = event, .since_ms = since,
                         .until_ms = until};
        known = endpoint ? endpoint_known(c, st, endpoint) : 1;
        if (known == 0)
            unknown_endpoint(c, conf_dir, store_display(st), endpoint);
        else if (known > 0)
            n = list ? store_list_dead(st, &f, 1000, stdout) : store_replay(st, &f);
        if (n < 0 && known != 0)
            snprintf(err, sizeof err, "%s", store_error(st));
    }
    if (n >= 0)
        printf("%ld dead deliver%s %s\n", n, n == 1 ? "y" : "ies",
               list ? "match" : "put back to pending");
    else if (known != 0)
        fprintf(stderr, "switchyard replay: %s\n", err);
    store_close(st);
    config_free(c);
    return n < 0 ? 1 : 0;
}

/* The same three values as the switchyard_build_info metric. */
static int version(void)
{
    printf("switchyard %s (commit %s, sink ABI %d.%d)\n", SY_VERSION, sy_build_commit,
           SY_ABI_VERSION_MAJOR, SY_ABI_VERSION_MINOR);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return run_or_check(argc - 1, argv + 1, 0);
    if (!strcmp(cmd, "check"))
        return run_or_check(argc - 1, argv + 1, 1);
    if (!strcmp(cmd, "publish"))
        return publish_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "plugins"))
        return plugins_cmd(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys"))
        return keys_cmd(argc - 1, argv + 1);
    if (!strcmp(cmd, "status"))
        return status_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "endpoint"))
        return endpoint_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "endpoints"))
        return endpoints_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return replay_cmd(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (argc == 2)
            return version();
        int help = !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h");
        fputs("usage: switchyard version (or -V, --version)\n\n"
              "Prints the version, the git commit it was built from (\"unknown\" outside a git\n"
              "checkout, \"-dirty\" with uncommitted changes) and the sink ABI version\n"
              "plugins are built for.\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "switchyard: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
