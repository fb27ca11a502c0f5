/*
 * cli/endpoint.c - `switchyard endpoint enable ID`: re-enables an endpoint
 * that disable_after stopped, through POST /api/v1/endpoints/ID/enable of
 * the running daemon (which also clears the state kept in its spool).
 */
#include "endpoint.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "cli.h"

static void usage(FILE *f)
{
    fputs("usage: switchyard endpoint enable ID [-c DIR] [--admin HOST:PORT]\n"
          "\n"
          "Re-enables endpoint ID of the running daemon after disable_after stopped it\n"
          "(it failed for that long without a success). A disabled endpoint stays\n"
          "disabled across restarts and reloads until this command, or the admin API's\n"
          "POST /api/v1/endpoints/ID/enable, enables it: events route to it again, its\n"
          "breaker and failure clock start afresh, and the spool forgets the state.\n"
          "Deliveries that died while it was disabled stay dead; `switchyard replay\n"
          "--endpoint ID` puts them back.\n"
          "\n"
          "  -c, --config DIR      the listen address and token are DIR's core.admin\n"
          "                        (default conf.d)\n"
          "  --admin HOST:PORT     ask there instead of core.admin.listen\n"
          "  -h, --help            print this help\n"
          "\n"
          "Exit status: 0 when the endpoint is enabled (also when it was not disabled),\n"
          "1 when the daemon cannot be asked, refuses, or has no endpoint ID, 2 on bad\n"
          "usage or configuration.\n", f);
}

static int enable(int argc, char **argv)
{
    const char *conf_dir = "conf.d", *addr = NULL;
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"admin", required_argument, 0, 'a'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_dir = optarg; break;
        case 'a': addr = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "switchyard endpoint enable: which endpoint? (switchyard endpoint enable "
                        "ID; switchyard status lists them)\n");
        return 2;
    }
    const char *id = argv[optind++];
    if (cli_extra_args("endpoint enable", argc, argv))
        return 2;
    if (!admin_id_ok(id)) {
        fprintf(stderr, "switchyard endpoint enable: \"%s\" is not an endpoint id (letters, "
                        "digits, '_', '-' and '.', at most 128)\n", id);
        return 2;
    }
    admin_target t;
    int rc = admin_target_load("endpoint enable", conf_dir, addr, &t);
    if (rc)
        return rc;
    char path[200], err[512], *body = NULL;
    snprintf(path, sizeof path, "/api/v1/endpoints/%s/enable", id);
    int st = admin_request(&t, "POST", path, &body, err, sizeof err);
    admin_target_free(&t);
    if (st < 0) {
        fprintf(stderr, "switchyard endpoint enable: %s (is the daemon running?)\n", err);
        return 1;
    }
    if (st == 404)
        fprintf(stderr, "switchyard endpoint enable: the running daemon has no endpoint \"%s\" "
                        "(switchyard status lists them)\n", id);
    else if (st != 200)
        admin_print_refusal("endpoint enable", st, body);
    else
        printf("endpoint %s enabled\n", id);
    free(body);
    return st == 200 ? 0 : 1;
}

int endpoint_main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "enable"))
        return enable(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2)
        fprintf(stderr, "switchyard endpoint: unknown action \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
