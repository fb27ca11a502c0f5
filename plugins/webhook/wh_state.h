/*
 * wh_state.h - the webhook sink's runtime state, shared by its files:
 * the instance, its endpoints, and the functions each file offers.
 */
#ifndef SY_WH_STATE_H
#define SY_WH_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http_pool.h"
#include "switchyard/sink.h"
#include "wh_conf.h"

typedef struct wh_counters {
    sy_counter *delivered;     /* attempts that got a 2xx */
    sy_counter *retried;       /* attempts reported as SY_RETRY */
    sy_counter *failed;        /* attempts reported as SY_FAIL */
    sy_counter *gone;          /* 410 answers */
    sy_counter *fallbacks;     /* switches to the next URL */
    sy_counter *not_verified;  /* attempts refused while the handshake is pending */
    sy_counter *verified;      /* handshakes that succeeded */
    sy_counter *verify_failed; /* handshake attempts that failed */
    sy_counter *batches;       /* batched POSTs sent */
} wh_counters;

typedef struct wh_state {
    const sy_host *host;
    const sy_instance *inst;
    const wh_conf *conf;
    http_pool *pool;
    wh_counters c;
    pthread_mutex_t mu;  /* guards eps */
    struct wh_ep *eps;   /* every endpoint of the instance, freed in destroy */
} wh_state;

struct wh_verify;

typedef struct wh_ep {
    wh_state *st;
    char *id;
    char *org_id;         /* the endpoint's org, for system events; may be NULL */
    wh_settings set;
    pthread_mutex_t mu;   /* guards cur, fails, gone */
    size_t cur;           /* index in set.urls deliveries go to */
    int64_t fails;        /* consecutive failed attempts on urls[cur] */
    int gone;             /* the last answer was 410: reported once until a 2xx */
    struct wh_verify *verify; /* NULL without the handshake */
    atomic_int closed;    /* endpoint_destroy ran: start nothing new */
    int batch;            /* the endpoint's batch key: one POST per batch (wh_batch.h) */
    struct wh_ep *next;
} wh_ep;

/*
 * The per-message headers of one signed request, ready to hand to libcurl
 * without a single allocation: three list nodes (id, timestamp, signature)
 * that point at the buffers below and chain on to the endpoint's shared
 * `fixed` list. Allocate wh_signed_size(ep) bytes for one.
 */
typedef struct wh_signed {
    struct curl_slist node[3];
    char id[WH_HEADER_NAME_MAX + 16 + WH_ID_MAX + 1];
    char ts[WH_HEADER_NAME_MAX + 40];
    char sig[]; /* "<prefix>-signature: v1,... v1a,..." */
} wh_signed;

size_t wh_signed_size(const wh_ep *ep);

/*
 * Signs one message (id, timestamp ts, body) with every key of the
 * endpoint into s, whose node[0] is then the head of the request's header
 * list. Returns 0, or -1 with the reason in err (an id longer than
 * WH_ID_MAX, an OpenSSL failure).
 */
int wh_sign(const wh_ep *ep, wh_signed *s, const char *id, int64_t ts, const char *body,
            size_t len, char *err, size_t errlen);

/* The sink's submit_batch callback (wh_send.c). */
void wh_submit_batch(void *state, void *ep_state, const sy_delivery *const *d, size_t n);

/* The verification handshake (wh_verify.c). */
struct wh_verify *wh_verify_new(wh_ep *ep);
/* Schedules the first attempt unless an earlier call did; 0, or -1 when
 * the loop is stopping. Any thread. */
int wh_verify_start(struct wh_verify *v);
/* 1 once the receiver echoed a challenge. Any thread. */
int wh_verify_passed(const struct wh_verify *v);
/* Frees v; only after the loop stopped (nothing of v may still be queued). */
void wh_verify_free(struct wh_verify *v);

#endif
