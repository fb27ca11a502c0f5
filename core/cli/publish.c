/*
 * cli/publish.c - `switchyard publish`: send events to a running daemon.
 *
 * Operators use it to test routing; tests and benchmarks use it to push
 * many events. Events are either built from flags (a fresh envelope with a
 * random event_id and the current time) or read one per line from a file
 * or stdin and sent byte for byte.
 */
#include "publish.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <zmq.h>

#include "cli.h"
#include "clock.h"
#include "envelope.h"
#include "switchyard/publisher.h"

typedef struct {
    const char *addr;
    int bind;
    int pub;
    int frames; /* 0 = default for the socket type */
    const char *type, *org, *org_slug, *data, *id, *file;
    long count;
    long settle_ms;
    int quiet;
    int ack;
    long timeout_ms, retries;
} pub_opts;

/* With --ack, events are collected and sent in pipelined batches. */
typedef struct ack_batch {
    char **bodies;
    size_t *lens;
    long *lines;
    size_t n, cap;
    sy_publisher *pub;
    long ok, dup, rejected, timeout, unsent;
    int quiet;
} ack_batch;

static ack_batch *g_ack; /* set while --ack runs */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: switchyard publish (--connect ADDR | --bind ADDR) [options] EVENTS\n"
            "\n"
            "EVENTS is one of:\n"
            "  --type TYPE [--org ORG] [--org-slug SLUG] [--data JSON] [--id ID] [--count N]\n"
            "        build envelopes (event_id random unless --id, occurred_at now);\n"
            "        prints each event_id on stdout\n"
            "  --file PATH | --file -\n"
            "        send each non-empty line of PATH (or stdin) as one event, byte for byte\n"
            "\n"
            "options:\n"
            "  --socket push|pub   push (default; to a pull ingress) or pub (to a sub ingress)\n"
            "  --frames 1|2        [body] or [event_type, body]; default 1 for push, 2 for pub\n"
            "  --settle MS         with pub: once a subscriber is there, wait MS more for others\n"
            "                      before sending (default 500)\n"
            "  --ack               connect to an ack ingress (ROUTER) and wait for every answer:\n"
            "                      ok/dup count as stored; exit 1 if any event was refused,\n"
            "                      never answered or never sent\n"
            "  --timeout MS        the deadline of every send (default 5000): without --ack, how\n"
            "                      long to wait for a peer to connect (or subscribe) and then\n"
            "                      to take each event; with --ack, how long one try waits for\n"
            "                      a peer and its answer before resending\n"
            "  --retries N         with --ack: resends before giving up (default 5)\n"
            "  --quiet             print nothing on success\n"
            "  -h, --help          print this help\n"
            "\n"
            "Without --ack an event counts as published once a connected peer took it; only\n"
            "--ack says it was stored. Nothing listening (or no subscriber): exit 1 after\n"
            "--timeout, nothing sent. Exit status: 0 all sent (and, with --ack, stored),\n"
            "1 not all, 2 bad usage.\n");
}

static void random_id(char *out, size_t len)
{
    unsigned char raw[12];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
        for (size_t i = 0; i < sizeof raw; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    if (f)
        fclose(f);
    size_t o = (size_t)snprintf(out, len, "evt_");
    for (size_t i = 0; i < sizeof raw && o + 2 < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%02x", raw[i]);
}

static void now_rfc3339(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/*
 * Says why event number sent + 1 did not go out. A timeout before the first
 * event means nothing took the connection; later, that the peer stopped
 * reading (or went away) with events still to send.
 */
static void send_failed(const pub_opts *o, long sent)
{
    if (g_ack)
        return; /* ack_flush said it */
    if (zmq_errno() != EAGAIN)
        fprintf(stderr, "switchyard publish: send failed: %s\n", zmq_strerror(zmq_errno()));
    else if (sent == 0 && o->bind)
        fprintf(stderr, "switchyard publish: no peer connected to %s within %ld ms; nothing "
                        "was sent\n", o->addr, o->timeout_ms);
    else if (sent == 0)
        fprintf(stderr, "switchyard publish: nothing took the connection to %s within %ld ms "
                        "(is the daemon running, with a %s ingress there?); nothing was sent\n",
                o->addr, o->timeout_ms, o->pub ? "sub" : "pull");
    else
        fprintf(stderr, "switchyard publish: %s took no event for %ld ms; %ld event%s sent "
                        "before that (without --ack, whether they were stored is unknown)\n",
                o->addr, o->timeout_ms, sent, sent == 1 ? " was" : "s were");
}

static int send_event(void *s, const pub_opts *o, const char *body, size_t len, const char *type)
{
    int frames = o->frames ? o->frames : (o->pub ? 2 : 1);
    if (frames == 2) {
        const char *t = type ? type : "";
        if (zmq_send(s, t, strlen(t), ZMQ_SNDMORE) < 0)
            return -1;
    }
    return zmq_send(s, body, len, 0) < 0 ? -1 : 0;
}

/* The event type of a raw line, for the topic frame; "" when not parseable. */
static char *type_of(const char *line, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "event_type");
    char *r = strdup(cJSON_IsString(t) ? t->valuestring : "");
    cJSON_Delete(j);
    return r;
}

static void ack_cb(void *arg, size_t index, sy_pub_result r, const char *answer)
{
    ack_batch *b = arg;
    switch (r) {
    case SY_PUB_OK: b->ok++; break;
    case SY_PUB_DUP: b->dup++; break;
    case SY_PUB_REJECTED:
        b->rejected++;
        fprintf(stderr, "switchyard publish: event %ld refused: %s\n", b->lines[index], answer);
        break;
    case SY_PUB_UNSENT: b->unsent++; break; /* one line for them all, at the end */
    default:
        b->timeout++;
        fprintf(stderr, "switchyard publish: event %ld: no answer after every resend\n",
                b->lines[index]);
    }
}

static int ack_flush(ack_batch *b)
{
    if (!b->n)
        return 0;
    long rc = sy_publish_many(b->pub, b->n, (const void *const *)b->bodies, b->lens, 1000,
                              ack_cb, b);
    for (size_t i = 0; i < b->n; i++)
        free(b->bodies[i]);
    b->n = 0;
    if (rc < 0) {
        fprintf(stderr, "switchyard publish: socket error: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* Takes ownership of body. Sends a batch every 10,000 events. */
static int ack_add(ack_batch *b, char *body, size_t len, long line)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->bodies = realloc(b->bodies, b->cap * sizeof *b->bodies);
        b->lens = realloc(b->lens, b->cap * sizeof *b->lens);
        b->lines = realloc(b->lines, b->cap * sizeof *b->lines);
    }
    b->bodies[b->n] = body;
    b->lens[b->n] = len;
    b->lines[b->n] = line;
    b->n++;
    return b->n >= 10000 ? ack_flush(b) : 0;
}

static int emit(void *s, const pub_opts *o, char *body, size_t len, const char *type, long line,
                int owned)
{
    if (g_ack) {
        char *copy = owned ? body : memcpy(malloc(len + 1), body, len);
        return ack_add(g_ack, copy, len, line);
    }
    int rc = send_event(s, o, body, len, type);
    if (owned)
        free(body);
    return rc;
}

static int publish_built(void *s, const pub_opts *o)
{
    cJSON *data = NULL;
    if (o->data) {
        data = cJSON_Parse(o->data);
        if (!cJSON_IsObject(data)) {
            fprintf(stderr, "switchyard publish: --data must be a JSON object\n");
            cJSON_Delete(data);
            return 2;
        }
    }
    if (!envelope_type_valid(o->type)) {
        fprintf(stderr, "switchyard publish: --type \"%s\" is not a valid event type "
                        "(lowercase words separated by dots, e.g. job.completed)\n", o->type);
        cJSON_Delete(data);
        return 2;
    }
    for (long i = 0; i < o->count; i++) {
        char id[64], ts[40];
        if (o->id && o->count == 1)
            snprintf(id, sizeof id, "%s", o->id);
        else if (o->id)
            snprintf(id, sizeof id, "%.40s-%ld", o->id, i + 1);
        else
            random_id(id, sizeof id);
        now_rfc3339(ts, sizeof ts);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "event_id", id);
        cJSON_AddStringToObject(e, "event_type", o->type);
        cJSON_AddStringToObject(e, "occurred_at", ts);
        cJSON_AddStringToObject(e, "version", "1");
        if (o->org)
            cJSON_AddStringToObject(e, "org_id", o->org);
        if (o->org_slug || o->org)
            cJSON_AddStringToObject(e, "org_slug", o->org_slug ? o->org_slug : o->org);
        cJSON_AddItemToObject(e, "data", data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
        char *body = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        int rc = emit(s, o, body, strlen(body), o->type, i + 1, 1);
        if (rc) {
            send_failed(o, i);
            cJSON_Delete(data);
            return 1;
        }
        if (!o->quiet)
            printf("%s\n", id);
    }
    cJSON_Delete(data);
    return 0;
}

static int publish_lines(void *s, const pub_opts *o, long *sent)
{
    FILE *f = strcmp(o->file, "-") ? fopen(o->file, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "switchyard publish: %s: %s\n", o->file, strerror(errno));
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    long lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n == 0)
            continue;
        char *t = o->frames == 2 || (!o->frames && o->pub) ? type_of(line, (size_t)n) : NULL;
        int r = emit(s, o, line, (size_t)n, t, lineno, 0);
        free(t);
        if (r) {
            send_failed(o, *sent);
            rc = 1;
            break;
        }
        (*sent)++;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* A whole number from min to INT_MAX for option name, or a message and -1. */
static int number_opt(const char *name, const char *text, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > INT_MAX) {
        fprintf(stderr, "switchyard publish: %s is a whole number from %ld to %d, not \"%s\"\n",
                name, min, INT_MAX, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int publish_ack(const pub_opts *o)
{
    if (o->pub || o->bind) {
        fprintf(stderr, "switchyard publish: --ack connects to an ack ingress; "
                        "it does not go with --socket pub or --bind\n");
        return 2;
    }
    char err[512];
    ack_batch b = {.quiet = o->quiet};
    b.pub = sy_publisher_open(o->addr, (int)o->timeout_ms, (int)o->retries, err, sizeof err);
    if (!b.pub) {
        fprintf(stderr, "switchyard publish: %s\n", err);
        return 1;
    }
    g_ack = &b;
    long unused = 0;
    int rc = o->type ? publish_built(NULL, o) : publish_lines(NULL, o, &unused);
    if (rc == 0)
        rc = ack_flush(&b) ? 1 : 0;
    g_ack = NULL;
    sy_publisher_close(b.pub);
    free(b.bodies);
    free(b.lens);
    free(b.lines);
    long sent = b.ok + b.dup + b.rejected + b.timeout;
    if (b.unsent)
        fprintf(stderr, "switchyard publish: %ld event%s not sent: no ack ingress took the "
                        "connection to %s within %ld ms (is the daemon running, and is that its "
                        "ack socket?)\n", b.unsent, b.unsent == 1 ? "" : "s", o->addr,
                o->timeout_ms * (o->retries + 1));
    if (sent && (!o->quiet || b.rejected || b.timeout || b.unsent)) {
        fprintf(stderr, "published %ld event%s to %s: %ld stored, %ld duplicates, %ld refused, "
                        "%ld unanswered", sent, sent == 1 ? "" : "s", o->addr, b.ok, b.dup,
                b.rejected, b.timeout);
        if (b.unsent)
            fprintf(stderr, ", %ld not sent", b.unsent);
        fputc('\n', stderr);
    }
    return rc ? rc : (b.rejected || b.timeout || b.unsent) ? 1 : 0;
}

/*
 * With pub, an XPUB: it reports subscriptions, so publish waits for a
 * subscriber instead of sending into the void, which a PUB does silently.
 */
static int wait_subscriber(void *s, const pub_opts *o)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, o->timeout_ms) <= 0) {
        fprintf(stderr, "switchyard publish: no subscriber at %s within %ld ms (is the daemon "
                        "running, with a sub ingress there?); nothing was sent\n", o->addr,
                o->timeout_ms);
        return -1;
    }
    if (o->settle_ms > 0) {
        struct timespec ts = {o->settle_ms / 1000, (o->settle_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int publish_plain(const pub_opts *o)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, o->pub ? ZMQ_XPUB : ZMQ_PUSH);
    /* Events go only to connections whose handshake succeeded, and every
     * send, like the wait at close for queued events, has a deadline. */
    int deadline = (int)o->timeout_ms, hwm = 100000, one = 1;
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &deadline, sizeof deadline);
    zmq_setsockopt(s, ZMQ_CONNECT_TIMEOUT, &deadline, sizeof deadline);
    zmq_setsockopt(s, ZMQ_LINGER, &deadline, sizeof deadline);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (o->pub) /* a full queue blocks (until the deadline) instead of dropping */
        zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof one);
    int rc = 1;
    long sent = 0;
    if ((o->bind ? zmq_bind(s, o->addr) : zmq_connect(s, o->addr)) != 0) {
        fprintf(stderr, "switchyard publish: cannot %s %s: %s\n", o->bind ? "bind" : "connect",
                o->addr, zmq_strerror(zmq_errno()));
    } else if (!o->pub || wait_subscriber(s, o) == 0) {
        rc = o->type ? publish_built(s, o) : publish_lines(s, o, &sent);
        if (o->type && rc == 0)
            sent = o->count;
    }
    /* Closing waits up to the linger period for queued events to leave;
     * a close that used all of it dropped what was left. */
    int64_t closing = mono_ms();
    zmq_close(s);
    zmq_ctx_term(ctx);
    if (rc == 0 && sent > 0 && mono_ms() - closing >= o->timeout_ms) {
        fprintf(stderr, "switchyard publish: %s did not take the queued events within %ld ms; "
                        "some of the %ld may not have left (use --ack to know what was "
                        "stored)\n", o->addr, o->timeout_ms, sent);
        rc = 1;
    }
    if (rc == 0 && !o->quiet)
        fprintf(stderr, "published %ld event%s to %s\n", sent, sent == 1 ? "" : "s", o->addr);
    return rc;
}

int publish_main(int argc, char **argv)
{
    pub_opts o = {.count = 1, .settle_ms = 500, .timeout_ms = 5000, .retries = 5};
    static const struct option longs[] = {
        {"connect", required_argument, 0, 'c'}, {"bind", required_argument, 0, 'b'},
        {"socket", required_argument, 0, 's'},  {"frames", required_argument, 0, 'F'},
        {"type", required_argument, 0, 't'},    {"org", required_argument, 0, 'o'},
        {"org-slug", required_argument, 0, 'O'}, {"data", required_argument, 0, 'd'},
        {"id", required_argument, 0, 'i'},      {"count", required_argument, 0, 'n'},
        {"file", required_argument, 0, 'f'},    {"settle", required_argument, 0, 'S'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {"ack", no_argument, 0, 'A'},           {"timeout", required_argument, 0, 'T'},
        {"retries", required_argument, 0, 'R'},
        {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:b:t:o:d:f:n:qh", longs, NULL)) != -1) {
        switch (ch) {
        case 'c': o.addr = optarg; o.bind = 0; break;
        case 'b': o.addr = optarg; o.bind = 1; break;
        case 's':
            if (strcmp(optarg, "push") && strcmp(optarg, "pub")) {
                fprintf(stderr, "switchyard publish: --socket is push or pub\n");
                return 2;
            }
            o.pub = !strcmp(optarg, "pub");
            break;
        case 'F':
            o.frames = atoi(optarg);
            if (o.frames != 1 && o.frames != 2) {
                fprintf(stderr, "switchyard publish: --frames is 1 or 2\n");
                return 2;
            }
            break;
        case 't': o.type = optarg; break;
        case 'o': o.org = optarg; break;
        case 'O': o.org_slug = optarg; break;
        case 'd': o.data = optarg; break;
        case 'i': o.id = optarg; break;
        case 'n': if (number_opt("--count", optarg, 1, &o.count)) return 2; break;
        case 'f': o.file = optarg; break;
        case 'S': if (number_opt("--settle", optarg, 0, &o.settle_ms)) return 2; break;
        case 'q': o.quiet = 1; break;
        case 'A': o.ack = 1; break;
        case 'T': if (number_opt("--timeout", optarg, 1, &o.timeout_ms)) return 2; break;
        case 'R': if (number_opt("--retries", optarg, 0, &o.retries)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cli_extra_args("publish", argc, argv))
        return 2;
    if (!o.addr || (!o.type == !o.file)) {
        usage(stderr);
        return 2;
    }
    if (o.ack)
        return publish_ack(&o);
    return publish_plain(&o);
}
