/*
 * main.c - the switchyard command line.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgtable.h"
#include "config.h"
#include "daemon.h"
#include "plugin.h"
#include "publish.h"
#include "retry.h"
#include "spool.h"
#include "status.h"
#include "units.h"
#include <time.h>

#ifndef SY_PLUGIN_DIR
#define SY_PLUGIN_DIR "/usr/local/lib/switchyard/plugins"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: switchyard COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run -c DIR [--log-level L] [--log-format logfmt|json]\n"
            "                      run the daemon on the config folder DIR\n"
            "  check -c DIR        validate DIR (plugins included) and print the routing table\n"
            "  publish ...         send events (switchyard publish --help)\n"
            "  plugins [-c DIR | --dir PLUGIN_DIR] [--describe NAME]\n"
            "                      list sink plugins, or print one plugin's config keys\n"
            "  replay -c DIR [--endpoint ID] [--event ID] [--since T] [--until T] [--list]\n"
            "                      put dead deliveries back to pending (a running daemon picks\n"
            "                      them up); T is a duration ago (\"2h\") or an RFC 3339 time;\n"
            "                      --list only prints them\n"
            "  status [-c DIR] [--json]\n"
            "                      endpoints with state, success rate, pending, dead, last error\n"
            "                      (asks the running daemon's admin API)\n"
            "  version             print the version and the sink ABI version\n");
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
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
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

static int plugins_cmd(int argc, char **argv)
{
    const char *conf_dir = NULL, *dir = NULL, *describe = NULL;
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"dir", required_argument, 0, 'd'},
                                          {"describe", required_argument, 0, 'D'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_dir = optarg; break;
        case 'd': dir = optarg; break;
        case 'D': describe = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    char *pdir = plugin_dir_for(conf_dir, dir);
    if (!pdir)
        return 2;
    char path[4096], err[1024];
    if (describe) {
        plugin_resolve(pdir, describe, path, sizeof path);
        sy_plugin *p = plugin_load(path, err, sizeof err);
        free(pdir);
        if (!p) {
            fprintf(stderr, "switchyard: %s\n", err);
            return 1;
        }
        const sy_sink *s = p->sink;
        printf("%s %s - %s\n", s->name, s->version ? s->version : "?",
               s->description ? s->description : "");
        printf("file: %s\nstyle: %s\n", p->path,
               s->deliver         ? "blocking (deliver)"
               : s->deliver_batch ? "blocking, in batches (deliver_batch)"
               : s->submit        ? "asynchronous (submit)"
                                  : "asynchronous, in batches (submit_batch)");
        if (s->deliver_batch || s->submit_batch)
            printf("batches: up to %u deliveries, linger %ums\n", s->batch_max ? s->batch_max : 1,
                   s->batch_linger_ms);
        printf("default retry policy: %s\n", s->default_retry ? s->default_retry : "standard");
        printf("\nsink instance keys (\"sinks\": {\"NAME\": {\"plugin\": \"%s\", ...}}):\n", s->name);
        cfgtable_describe(stdout, s->instance_config, "  ");
        printf("\nendpoint keys (\"endpoints\": {\"ID\": {\"sink\": \"NAME\", ...}}):\n");
        cfgtable_describe(stdout, s->endpoint_config, "  ");
        plugin_unload(p);
        return 0;
    }
    DIR *d = opendir(pdir);
    if (!d) {
        fprintf(stderr, "switchyard: cannot open plugin folder %s\n", pdir);
        free(pdir);
        return 1;
    }
    struct dirent *de;
    int bad = 0, n = 0;
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
        printf("  %-12s %-8s %s\n", p->sink->name, p->sink->version ? p->sink->version : "?",
               p->sink->description ? p->sink->description : "");
        plugin_unload(p);
        n++;
    }
    closedir(d);
    free(pdir);
    if (!n && !bad)
        printf("  (none)\n");
    return bad ? 1 : 0;
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

static int replay_cmd(int argc, char **argv)
{
    const char *conf_dir = "conf.d", *endpoint = NULL, *event = NULL, *spool = NULL;
    int64_t since = 0, until = 0;
    int list = 0;
    static const struct option longs[] = {
        {"config", required_argument, 0, 'c'}, {"spool", required_argument, 0, 's'},
        {"endpoint", required_argument, 0, 'e'}, {"event", required_argument, 0, 'i'},
        {"since", required_argument, 0, 'S'},  {"until", required_argument, 0, 'U'},
        {"list", no_argument, 0, 'l'},         {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", longs, NULL)) != -1) {
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
        default: usage(stderr); return 2;
        }
    }
    sy_conf *c = NULL;
    if (!spool) {
        if (!(c = config_load_or_report(conf_dir)))
            return 2;
        if (!c->spool) {
            fprintf(stderr, "switchyard replay: %s has spool: null; dead letters live only in the "
                            "daemon's memory\n", conf_dir);
            config_free(c);
            return 2;
        }
        spool = c->spool;
    }
    char err[1024];
    long n = list ? spool_list_dead(spool, endpoint, event, since, until, 1000, stdout, err,
                                    sizeof err)
                  : spool_replay(spool, endpoint, event, since, until, err, sizeof err);
    if (n < 0)
        fprintf(stderr, "switchyard replay: %s\n", err);
    else
        printf("%ld dead deliver%s %s\n", n, n == 1 ? "y" : "ies",
               list ? "match" : "put back to pending");
    config_free(c);
    return n < 0 ? 1 : 0;
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
    if (!strcmp(cmd, "status"))
        return status_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return replay_cmd(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("switchyard %s (sink ABI %d.%d)\n", SY_VERSION, SY_ABI_VERSION_MAJOR,
               SY_ABI_VERSION_MINOR);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "switchyard: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
