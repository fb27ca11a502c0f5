/*
 * cli/admin_client.c - the admin API as the command line reaches it.
 *
 * The API listens on loopback, so a small HTTP/1.0 client over a plain
 * socket is enough and keeps libcurl out of the daemon.
 */
#include "admin_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

int admin_target_load(const char *cmd, const char *conf_dir, const char *addr, admin_target *t)
{
    memset(t, 0, sizeof *t);
    if (!(t->conf = config_load_or_report(conf_dir)))
        return 2;
    t->addr = addr ? addr : t->conf->admin_listen;
    t->token = t->conf->admin_token;
    if (!t->addr || !t->token) {
        fprintf(stderr, "switchyard %s: %s has no core.admin listen address and token\n", cmd,
                conf_dir);
        admin_target_free(t);
        return 2;
    }
    return 0;
}

void admin_target_free(admin_target *t)
{
    config_free(t->conf);
    memset(t, 0, sizeof *t);
}

/* Reads the whole answer (the server closes: HTTP/1.0). NULL when out of memory. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 65536;
    char *buf = malloc(cap);
    *len = 0;
    while (buf) {
        ssize_t r = read(fd, buf + *len, cap - *len - 1);
        if (r <= 0)
            break;
        *len += (size_t)r;
        if (*len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    if (buf)
        buf[*len] = '\0';
    return buf;
}

/* Writes all n bytes (a body may be up to the API's 1 MiB); 0, or -1 with errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int admin_request(const admin_target *t, const char *method, const char *path, char **body,
                  char *err, size_t errlen)
{
    return admin_request_json(t, method, path, NULL, body, err, errlen);
}

int admin_request_json(const admin_target *t, const char *method, const char *path,
                       const char *json, char **body, char *err, size_t errlen)
{
    const char *hostport = t->addr;
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
    if (fd < 0) {
        snprintf(err, errlen, "cannot open a socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to the admin API at %s: %s", hostport,
                 strerror(errno));
        close(fd);
        return -1;
    }
    char req[1024], length[96] = "";
    size_t blen = json ? strlen(json) : 0;
    if (json)
        snprintf(length, sizeof length,
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    else if (strcmp(method, "GET") && strcmp(method, "DELETE"))
        snprintf(length, sizeof length, "Content-Length: 0\r\n");
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s"
                     "Connection: close\r\n\r\n",
                     method, path, hostport, t->token, length);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(err, errlen, "request to %s too long", path);
        close(fd);
        return -1;
    }
    if (write_all(fd, req, (size_t)n) != 0 || (json && write_all(fd, json, blen) != 0)) {
        snprintf(err, errlen, "cannot send to %s: %s", hostport, strerror(errno));
        close(fd);
        return -1;
    }
    size_t len;
    char *buf = read_all(fd, &len);
    close(fd);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading the answer of %s", hostport);
        return -1;
    }
    int status = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1 || !sep) {
        snprintf(err, errlen, "no HTTP answer from %s", hostport);
        free(buf);
        return -1;
    }
    *body = strdup(sep + 4);
    free(buf);
    if (!*body) {
        snprintf(err, errlen, "out of memory reading the answer of %s", hostport);
        return -1;
    }
    return status;
}

int admin_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

void admin_print_refusal(const char *cmd, int status, const char *body)
{
    cJSON *o = cJSON_Parse(body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
    fprintf(stderr, "switchyard %s: admin API answered %d: %s%s%s%s\n", cmd, status,
            cJSON_IsString(e) ? e->valuestring : body, cJSON_IsString(p) ? " (at " : "",
            cJSON_IsString(p) ? p->valuestring : "", cJSON_IsString(p) ? ")" : "");
    cJSON_Delete(o);
}
