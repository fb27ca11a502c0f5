/*
 * example_batch_sink.c - the example sink again, taking deliveries in batches.
 *
 * Same output as example_sink.c ("event_id event_type attempt" per line),
 * but the core hands it up to 64 deliveries of one endpoint per call and
 * it writes them with one writev(). Batches pay off whenever the peer has
 * a per-call cost: a system call, a round trip, a broker confirm.
 *
 * What changes from the one-at-a-time example:
 *  - deliver_batch instead of deliver, plus batch_max and batch_linger_ms
 *    in the descriptor;
 *  - every delivery gets its own outcome: out[i] belongs to d[i], and here
 *    a short write fails exactly the lines that did not make it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <switchyard/sink.h>

#define BATCH_MAX 64
#define LINE_MAX_BYTES 600 /* event ids and types are at most 255 bytes each */

typedef struct example_conf {
    const char *output;
} example_conf;

static const sy_config_key example_keys[] = {
    {SY_KEY("output", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, example_conf, output,
            "file to append \"event_id event_type attempt\" lines to")},
};
static const sy_config_table example_table = SY_CONFIG_TABLE(example_keys, example_conf);

typedef struct example_state {
    int fd; /* O_APPEND: concurrent writev calls never interleave inside a batch's bytes */
} example_state;

static int example_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                        const void *conf, void **state, char *err, size_t errlen)
{
    const example_conf *c = conf;
    (void)cfg;
    example_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->fd = open(c->output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (st->fd < 0) {
        /* "output: ..." makes the core report it at the key's path. */
        snprintf(err, errlen, "output: cannot open %s: %s", c->output, strerror(errno));
        free(st);
        return -1;
    }
    host->log(inst, SY_LOG_INFO, "writing batches to %s", c->output);
    *state = st;
    return 0;
}

static void example_destroy(void *state)
{
    example_state *st = state;
    close(st->fd);
    free(st);
}

/*
 * n deliveries of one endpoint (1 <= n <= BATCH_MAX). Each line is built on
 * the stack, then all of them go in one writev. Lines that were written
 * are delivered; the rest are retried, each with its own outcome.
 */
static void example_deliver_batch(void *state, void *ep_state, const sy_delivery *const *d,
                                  size_t n, sy_outcome *const *out)
{
    example_state *st = state;
    (void)ep_state;
    char lines[BATCH_MAX][LINE_MAX_BYTES];
    struct iovec iov[BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(lines[i], sizeof lines[i], "%s %s %u\n", d[i]->event_id,
                           d[i]->event_type, (unsigned)d[i]->attempt);
        iov[i].iov_base = lines[i];
        iov[i].iov_len = (size_t)len;
    }
    ssize_t wrote = writev(st->fd, iov, (int)n);
    int err = wrote < 0 ? errno : 0;
    size_t left = wrote > 0 ? (size_t)wrote : 0;
    for (size_t i = 0; i < n; i++) {
        if (left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            sy_outcome_set(out[i], SY_OK, 0, NULL);
        } else {
            sy_outcome_set(out[i], SY_RETRY, 0, err ? strerror(err) : "short write");
            left = 0; /* a torn line is written again whole: at-least-once */
        }
    }
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "example_batch",
    .version = "2.0.0",
    .description = "example: appends event id, type and attempt to a file, in batches",
    .instance_config = &example_table,
    .init = example_init,
    .destroy = example_destroy,
    .deliver_batch = example_deliver_batch,
    .batch_max = BATCH_MAX,
    .batch_linger_ms = 20, /* wait up to 20 ms for a fuller batch */
};
