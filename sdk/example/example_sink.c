/*
 * example_sink.c - a complete Switchyard sink plugin, small enough to copy.
 *
 * It appends one line per delivery, "event_id event_type attempt", to the
 * file named by the instance key `output`. Start your own plugin from this
 * file: rename it, change the key table and the three callbacks.
 *
 * The only header you need is <switchyard/sink.h>; it documents every
 * callback, what the core owns and what you own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/sink.h>

/*
 * Your configuration, as a plain struct. You never parse JSON: the core
 * reads the table below, checks types (and choices and ranges, when you
 * declare them), reports mistakes with file and key, and writes each value
 * into this struct before calling init.
 */
typedef struct example_conf {
    const char *output; /* owned by the core; valid until destroy returns */
} example_conf;

static const sy_config_key example_keys[] = {
    {SY_KEY("output", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, example_conf, output,
            "file to append \"event_id event_type attempt\" lines to")},
};
/* The table's header tells the core the entry size and count, and the struct's size. */
static const sy_config_table example_table = SY_CONFIG_TABLE(example_keys, example_conf);

/* What one instance keeps between calls; you allocate it, you free it. */
typedef struct example_state {
    FILE *out;
    pthread_mutex_t lock; /* deliver() runs on many threads at once */
} example_state;

/* Called once per configured instance, before any delivery. */
static int example_init(const sy_host *host, const sy_instance *inst, const sy_config *cfg,
                        const void *conf, void **state, char *err, size_t errlen)
{
    const example_conf *c = conf;
    (void)cfg; /* the raw JSON, for keys the table cannot express */
    example_state *st = calloc(1, sizeof *st);
    if (!st || !(st->out = fopen(c->output, "a"))) {
        /* err is shown to the operator; init failing stops the daemon from starting. */
        snprintf(err, errlen, "cannot open %s: %s", c->output, strerror(errno));
        free(st);
        return -1;
    }
    pthread_mutex_init(&st->lock, NULL);
    host->log(inst, SY_LOG_INFO, "writing to %s", c->output); /* tagged with our names */
    *state = st; /* handed back to every other callback */
    return 0;
}

static void example_destroy(void *state)
{
    example_state *st = state;
    fclose(st->out);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/*
 * One delivery attempt. Fill *out and return: SY_OK (done), SY_RETRY (the
 * core retries later, with backoff) or SY_FAIL (never retried). The
 * delivery and its strings belong to the core: copy what you keep.
 */
static void example_deliver(void *state, void *ep_state, const sy_delivery *d, sy_outcome *out)
{
    example_state *st = state;
    (void)ep_state; /* NULL: this plugin has no per-endpoint settings */
    pthread_mutex_lock(&st->lock);
    fprintf(st->out, "%s %s %u\n", d->event_id, d->event_type, (unsigned)d->attempt);
    int err = fflush(st->out) != 0 ? errno : 0; /* OK only once the bytes left us */
    pthread_mutex_unlock(&st->lock);
    if (err)
        sy_outcome_set(out, SY_RETRY, 0, strerror(err)); /* detail lands in the attempts log */
    else
        sy_outcome_set(out, SY_OK, 0, NULL);
}

/*
 * The one symbol the daemon looks for. abi_version and struct_size let it
 * refuse a plugin built against an incompatible header instead of crashing.
 */
SY_EXPORT const sy_sink switchyard_sink = {
    .abi_version = SY_ABI_VERSION,
    .struct_size = sizeof(sy_sink),
    .name = "example",
    .version = "2.0.0",
    .description = "example: appends event id, type and attempt to a file",
    .instance_config = &example_table,
    .init = example_init,
    .destroy = example_destroy,
    .deliver = example_deliver, /* blocking, one at a time; example_batch_sink.c takes batches */
};
