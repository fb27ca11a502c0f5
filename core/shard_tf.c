/*
 * shard_tf.c - a shard's transforms: one Lua state per shard thread,
 * each owned endpoint's script compiled into it when the shard adopts a
 * runtime, run once per delivery just before its first attempt.
 *
 * The runtime compiled every script already (runtime.c), so a reload
 * with a broken script never reaches a shard. A script can still fail to
 * compile here (this state's memory is shared by the shard's other
 * scripts); then its deliveries fail with that message until a reload.
 */
#include "shard_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void sh_tf_forget(shard *sh, sep *s)
{
    tf_release(sh->vm, s->tf_ref);
    s->tf_ref = -1;
    free(s->tf_error);
    s->tf_error = NULL;
}

void sh_tf_adopt(shard *sh, sep *s, const sy_runtime *rt)
{
    sh_tf_forget(sh, s);
    const sy_endpoint *ep = s->ep;
    if (!ep || !ep->tf_src)
        return;
    char err[512];
    tf_limits lim = {rt->conf->transform_instructions, rt->conf->transform_memory};
    if (!sh->vm && !(sh->vm = tf_vm_new(&lim, err, sizeof err))) {
        s->tf_error = strdup(err);
        return;
    }
    tf_vm_set_limits(sh->vm, &lim);
    s->tf_ref = tf_compile(sh->vm, ep->conf->transform, ep->tf_src, ep->tf_len, err, sizeof err);
    if (s->tf_ref < 0) {
        s->tf_error = strdup(err);
        log_fields(SY_LOG_ERROR, "transform did not compile in its shard; its deliveries fail",
                   LOG_S("endpoint", s->id), LOG_S("detail", err));
    }
}

int sh_tf_apply(shard *sh, sep *s, dlv *d, char *detail, size_t detail_len)
{
    if (d->tf_done || !s->ep || !s->ep->tf_src)
        return 0;
    if (s->tf_ref < 0) {
        snprintf(detail, detail_len, "transform: %s",
                 s->tf_error ? s->tf_error : "out of memory");
        return -1;
    }
    const cJSON *json = event_json(d->ev);
    if (!json) {
        snprintf(detail, detail_len, "transform: out of memory decoding the event");
        return -1;
    }
    char err[SY_DETAIL_MAX];
    tf_out *o = NULL;
    switch (tf_run(sh->vm, s->tf_ref, json, &o, err, sizeof err)) {
    case TF_OK:
        d->tf = o;
        d->tf_done = 1;
        return 0;
    case TF_DROP:
        return 1;
    case TF_ERROR:
        break;
    }
    STAT_INC(transform_errors, 1);
    snprintf(detail, detail_len, "transform: %s", err);
    log_fields_limited(SY_LOG_WARN, "transform failed; the delivery fails",
                       LOG_S("endpoint", s->id), LOG_S("event_id", d->ev->event_id),
                       LOG_S("detail", err));
    return -1;
}
