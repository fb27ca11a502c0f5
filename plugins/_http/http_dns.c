/*
 * http_dns.c - the lookup thread of the plain-http transport (http_dns.h).
 */
#include "http_dns.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct http_dns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_lookup *todo, *todo_tail, *done, *done_tail;
    int stop, started;
    pthread_t thread;
    void (*wake)(void *);
    void *arg;
};

static void append(http_lookup **head, http_lookup **tail, http_lookup *q)
{
    q->next = NULL;
    if (*tail)
        (*tail)->next = q;
    else
        *head = q;
    *tail = q;
}

static void *dns_main(void *arg)
{
    http_dns *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->todo && !d->stop)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stop)
            break;
        http_lookup *q = d->todo;
        d->todo = q->next;
        if (!d->todo)
            d->todo_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        q->res = NULL;
        q->rc = getaddrinfo(q->name, q->port, &hints, &q->res);
        pthread_mutex_lock(&d->mu);
        append(&d->done, &d->done_tail, q);
        pthread_mutex_unlock(&d->mu);
        d->wake(d->arg);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

http_dns *http_dns_new(void (*wake)(void *), void *arg)
{
    http_dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->wake = wake;
    d->arg = arg;
    return d;
}

int http_dns_ask(http_dns *d, http_lookup *q)
{
    pthread_mutex_lock(&d->mu);
    if (!d->started) {
        if (pthread_create(&d->thread, NULL, dns_main, d) != 0) {
            pthread_mutex_unlock(&d->mu);
            return -1;
        }
        d->started = 1;
    }
    q->rc = 0;
    q->res = NULL;
    append(&d->todo, &d->todo_tail, q);
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

http_lookup *http_dns_done(http_dns *d)
{
    pthread_mutex_lock(&d->mu);
    http_lookup *q = d->done;
    d->done = d->done_tail = NULL;
    pthread_mutex_unlock(&d->mu);
    return q;
}

void http_dns_free(http_dns *d, http_lookup **left)
{
    *left = NULL;
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        pthread_join(d->thread, NULL);
    for (http_lookup *q = d->todo, *n; q; q = n) {
        n = q->next;
        q->rc = EAI_SYSTEM;
        append(&d->done, &d->done_tail, q);
    }
    *left = d->done;
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
