/*
 * mixed.c - test sink: a blocking batch plugin whose outcomes differ
 * inside one batch. Each delivery's result comes from its event's
 * data.outcome ("ok", "retry" or "fail"; anything else is ok); every call
 * appends one line to the log file: the batch size and its event ids in
 * order, so a test can see that deliveries really came in batches and
 * that each followed its own outcome.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <switchyard/sink.h>

typedef struct mixed_conf {
    const char *log;
} mixed_conf;

static const sy_config_key mixed_keys[] = {
    {SY_KEY("log", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, mixed_conf, log,
            "file that gets one line per call: {\"n\": N, \"ids\": [...], \"attempts\": [...]}")},
};
static const sy_config_table mixed_table = SY_CONFIG_TABLE(mixed_keys, mixed_conf);

typedef struct mixed_state {
    const sy_host *host;
    FILE *log;
    pthread_mutex_t mu;
} mixed_state;

static int mixed_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                      const void *conf, void **state, char *err, size_t errlen)
{
    (void)inst;
    (void)cfg;
    const mixed_conf *c = conf;
    mixed_state *st = calloc(1, sizeof *st);
    if (!st || !(st->log = fopen(c->log, "ae"))) {
        snprintf(err, errlen, "log: cannot open %s: %s", c->log, strerror(errno));
        free(st);
        return -1;
    }
    st->host = host;
    pthread_mutex_init(&st->mu, NULL);
    *state = st;
    return 0;
}

static void mixed_destroy(void *state)
{
    mixed_state *st = state;
    fclose(st->log);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void mixed_deliver_batch(void *state, void *ep_state, const sy_delivery *const *d,
                                size_t n, sy_outcome *const *out)
{
    mixed_state *st = state;
    (void)ep_state;
    pthread_mutex_lock(&st->mu);
    fprintf(st->log, "{\"n\":%zu,\"ids\":[", n);
    for (size_t i = 0; i < n; i++)
        fprintf(st->log, "%s\"%s\"", i ? "," : "", d[i]->event_id);
    fprintf(st->log, "],\"attempts\":[");
    for (size_t i = 0; i < n; i++)
        fprintf(st->log, "%s%u", i ? "," : "", (unsigned)d[i]->attempt);
    fprintf(st->log, "]}\n");
    fflush(st->log);
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        char want[16] = "";
        sy_field_kind kind;
        int has = st->host->field(d[i], "data.outcome", want, sizeof want, &kind, NULL) == 0 &&
                  kind == SY_FIELD_STRING;
        if (has && !strcmp(want, "retry"))
            sy_outcome_set(out[i], SY_RETRY, 503, "mixed: asked to retry");
        else if (has && !strcmp(want, "fail"))
            sy_outcome_set(out[i], SY_FAIL, 400, "mixed: asked to fail");
        else
            sy_outcome_set(out[i], SY_OK, 200, NULL);
    }
}

SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "mixed",
    .version = "1.0.0",
    .description = "test sink: batches whose deliveries each follow data.outcome",
    .instance_config = &mixed_table,
    .init = mixed_init,
    .destroy = mixed_destroy,
    .deliver_batch = mixed_deliver_batch,
    .batch_max = 16,
    .batch_linger_ms = 200,
};
