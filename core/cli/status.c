/*
 * cli/status.c - `switchyard status`, a client of the admin API.
 */
#include "status.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <cjson/cJSON.h>

#include "admin_client.h"
#include "cli.h"

static void print_table(const cJSON *arr)
{
    printf("%-24s %-13s %8s %8s %8s %6s  %s\n", "ENDPOINT", "STATE", "SUCCESS", "PENDING", "DEAD",
           "LAST", "LAST ERROR");
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *rate = cJSON_GetObjectItem(e, "success_rate");
        char r[16];
        if (cJSON_IsNumber(rate))
            snprintf(r, sizeof r, "%.1f%%", rate->valuedouble * 100.0);
        else
            snprintf(r, sizeof r, "-");
        printf("%-24s %-13s %8s %8.0f %8.0f %6.0f  %s\n",
               cJSON_GetObjectItem(e, "id")->valuestring,
               cJSON_GetObjectItem(e, "state")->valuestring, r,
               cJSON_GetObjectItem(e, "pending")->valuedouble,
               cJSON_GetObjectItem(e, "dead")->valuedouble,
               cJSON_GetObjectItem(e, "last_status")->valuedouble,
               cJSON_GetObjectItem(e, "last_error")->valuestring);
    }
}

static void usage(FILE *f)
{
    fputs("usage: switchyard status [-c DIR] [--admin HOST:PORT] [--json]\n"
          "\n"
          "Asks the running daemon's admin API for its endpoints and prints, for each,\n"
          "its state, success rate, pending and dead deliveries, last status and error.\n"
          "\n"
          "  -c, --config DIR      the listen address and token are DIR's core.admin\n"
          "                        (default conf.d)\n"
          "  --admin HOST:PORT     ask there instead of core.admin.listen\n"
          "  --json                print the API's JSON array as is\n"
          "  -h, --help            print this help\n"
          "\n"
          "Exit status: 0, 1 when the daemon cannot be asked, 2 on bad usage or\n"
          "configuration.\n", f);
}

int status_main(int argc, char **argv)
{
    const char *conf_dir = "conf.d", *addr = NULL;
    int json = 0;
    static const struct option longs[] = {{"config", required_argument, 0, 'c'},
                                          {"admin", required_argument, 0, 'a'},
                                          {"json", no_argument, 0, 'j'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': conf_dir = optarg; break;
        case 'a': addr = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cli_extra_args("status", argc, argv))
        return 2;
    admin_target t;
    int rc = admin_target_load("status", conf_dir, addr, &t);
    if (rc)
        return rc;
    char err[512], *body = NULL;
    int st = admin_request(&t, "GET", "/api/v1/endpoints", &body, err, sizeof err);
    admin_target_free(&t);
    if (st < 0) {
        fprintf(stderr, "switchyard status: %s (is the daemon running?)\n", err);
        return 1;
    }
    if (st != 200) {
        fprintf(stderr, "switchyard status: admin API answered %d: %s\n", st, body);
        free(body);
        return 1;
    }
    if (json) {
        printf("%s\n", body);
    } else {
        cJSON *arr = cJSON_Parse(body);
        if (cJSON_IsArray(arr))
            print_table(arr);
        cJSON_Delete(arr);
    }
    free(body);
    return 0;
}
