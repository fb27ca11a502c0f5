/*
 * cli/status.c - `switchyard status`, a client of the admin API.
 *
 * The admin API listens on loopback, so a small HTTP/1.0 client over a
 * plain socket is enough and keeps libcurl out of the daemon.
 */
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "cli.h"
#include "config.h"

int http_get(const char *hostport, const char *path, const char *token, char **body, char *err,
             size_t errlen)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) {
        snprintf(err, errlen, "\"%s\" is not HOST:PORT", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sa.sin_addr) != 1) {
        snprintf(err, errlen, "\"%s\" is not an IPv4 address", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to the admin API at %s: %s", hostport,
                 strerror(errno));
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n",
                     path, hostport, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        snprintf(err, errlen, "cannot send to %s: %s", hostport, strerror(errno));
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1 || !sep) {
        snprintf(err, errlen, "no HTTP answer from %s", hostport);
        free(buf);
        return -1;
    }
    *body = strdup(sep + 4);
    free(buf);
    return status;
}

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
    sy_conf *c = config_load_or_report(conf_dir);
    if (!c)
        return 2;
    if (!addr)
        addr = c->admin_listen;
    if (!addr || !c->admin_token) {
        fprintf(stderr, "switchyard status: %s has no core.admin listen address and token\n",
                conf_dir);
        config_free(c);
        return 2;
    }
    char err[512], *body = NULL;
    int st = http_get(addr, "/api/v1/endpoints", c->admin_token, &body, err, sizeof err);
    config_free(c);
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
