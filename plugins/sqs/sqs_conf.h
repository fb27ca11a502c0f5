/*
 * sqs_conf.h - configuration of the sqs sink: key tables, checked
 * settings, and the queues (targets) endpoints send to.
 */
#ifndef SY_SQS_CONF_H
#define SY_SQS_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "../_queue/keytmpl.h"
#include "switchyard/sink.h"

/* The struct the core fills from sqs_instance_keys. */
typedef struct sqs_conf {
    const char *queue_url;
    const char *region;
    const char *endpoint_url;
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *credentials_file;
    const char *profile;
    const char *message_group_id;
    int64_t max_batch_bytes;
    int64_t max_requests;
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
} sqs_conf;

/* The struct the core fills from sqs_endpoint_keys. */
typedef struct sqs_ep_conf {
    const char *queue_url;
    const char *message_group_id;
} sqs_ep_conf;

extern const sy_config_table sqs_instance_table;
extern const sy_config_table sqs_endpoint_table;

typedef struct sqs_entry sqs_entry;
typedef struct sqs_batch sqs_batch;

/*
 * One queue. Endpoints naming the same URL share it (and, for a FIFO
 * queue, its one request at a time). Pending batches belong to the I/O
 * thread.
 */
typedef struct sqs_target {
    char *queue_url;
    char *queue_url_json; /* the URL as a JSON string, quotes included */
    int fifo;             /* the URL ends in ".fifo" */
    sqs_batch *head, *tail; /* batches with entries not yet in a request, in order */
    int inflight; /* requests in flight to this queue */
    struct sqs_target *next;
} sqs_target;

/* What an endpoint sends to; the instance's own when it names nothing. */
typedef struct sqs_ep {
    sqs_target *target;
    const keytmpl *group; /* FIFO MessageGroupId template */
    keytmpl *own_group;   /* owned when the endpoint has its own template */
} sqs_ep;

/* Checked instance settings. */
typedef struct sqs_settings {
    char *region;
    char *endpoint_url;
    char sigv4[128]; /* "aws:amz:<region>:sqs" for CURLOPT_AWS_SIGV4 */
    keytmpl *group;
    size_t max_batch_bytes;
    int max_requests;
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
    sqs_target *targets; /* every queue; the first is the instance's */
    sqs_ep defaults;
} sqs_settings;

#define SQS_MAX_BATCH 10 /* SendMessageBatch takes at most ten entries: the plugin's batch_max */

/*
 * Checks conf into *out (free with sqs_settings_free). The region comes
 * from the key, else AWS_REGION / AWS_DEFAULT_REGION, else the queue URL's
 * host (sqs.<region>.amazonaws.com). Returns 0, or -1 with the reason in
 * err, prefixed with the key.
 */
int sqs_settings_parse(const sqs_conf *conf, sqs_settings *out, char *err, size_t errlen);
void sqs_settings_free(sqs_settings *s);

/*
 * Builds an endpoint: its own queue_url and group template, or the
 * instance's. Targets are shared by URL. Returns NULL with err set.
 */
sqs_ep *sqs_ep_new(sqs_settings *s, const sqs_ep_conf *ec, char *err, size_t errlen);
void sqs_ep_free(sqs_ep *ep);

/* Region from a queue URL host like sqs.eu-west-1.amazonaws.com; 0 or -1. */
int sqs_region_from_url(const char *url, char *out, size_t outlen);

#endif
