/*
 * filter.c - event type patterns and payload filters of endpoints.
 *
 * A spec compiles into a small tree of AND / OR / comparison nodes. The tree
 * owns copies of everything it needs, so the config JSON can be freed after
 * load and matching never has to interpret the spec again.
 */
#include "filter.h"
#include "envelope.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Type patterns                                                       */
/* ------------------------------------------------------------------ */

/* The event type grammar on s[0..n): [a-z0-9_-]+(\.[a-z0-9_-]+)* */
static int type_valid_n(const char *s, size_t n)
{
    size_t seg = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (seg == 0)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

int type_pattern_valid(const char *pattern)
{
    size_t n;
    if (!pattern)
        return 0;
    n = strlen(pattern);
    if (n == 1 && pattern[0] == '*')
        return 1;
    if (n > 2 && pattern[n - 2] == '.' && pattern[n - 1] == '*')
        return type_valid_n(pattern, n - 2);
    return type_valid_n(pattern, n);
}

int type_pattern_match(const char *pattern, const char *type)
{
    size_t n;
    if (!pattern || !type)
        return 0;
    n = strlen(pattern);
    if (n == 1 && pattern[0] == '*')
        return 1;
    if (n > 2 && pattern[n - 2] == '.' && pattern[n - 1] == '*')
        /* "job.*": type starts with "job." and has something after the dot. */
        return strncmp(type, pattern, n - 1) == 0 && type[n - 1] != '\0';
    return strcmp(pattern, type) == 0;
}

/* ------------------------------------------------------------------ */
/* Filter tree                                                         */
/* ------------------------------------------------------------------ */

typedef enum { N_AND, N_OR, N_CMP } node_kind;

typedef enum {
    OP_EQ, OP_NE, OP_IN, OP_NIN, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_EXISTS, OP_PREFIX
} op_kind;

static const struct {
    const char *name;
    op_kind op;
} ops[] = {
    {"$eq", OP_EQ}, {"$ne", OP_NE},   {"$in", OP_IN},         {"$nin", OP_NIN},
    {"$gt", OP_GT}, {"$gte", OP_GTE}, {"$lt", OP_LT},         {"$lte", OP_LTE},
    {"$exists", OP_EXISTS},           {"$prefix", OP_PREFIX},
};

typedef struct node {
    node_kind kind;
    /* N_AND / N_OR */
    struct node **kids;
    size_t nkids;
    /* N_CMP */
    op_kind op;
    char *path;   /* dotted, from the event root */
    cJSON *value; /* owned copy of the operand */
} node;

struct sy_filter {
    node *root;
};

static void node_free(node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->path);
    cJSON_Delete(n->value);
    free(n);
}

static node *node_new(node_kind kind)
{
    node *n = calloc(1, sizeof(*n));
    if (n)
        n->kind = kind;
    return n;
}

static int node_add(node *parent, node *kid)
{
    node **k = realloc(parent->kids, (parent->nkids + 1) * sizeof(*k));
    if (!k)
        return -1;
    k[parent->nkids++] = kid;
    parent->kids = k;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Compile                                                             */
/* ------------------------------------------------------------------ */

/*
 * Error paths are built in a fixed buffer while descending: "$or.1.data.x".
 * A path longer than the buffer is cut short, which only shortens the message.
 */
typedef struct {
    char *err;
    size_t errlen;
    char path[512];
} ctx;

__attribute__((format(printf, 2, 3)))
static void fail(ctx *c, const char *fmt, ...)
{
    char what[128];
    va_list ap;
    if (!c->err || !c->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", c->path[0] ? c->path : "filter", what);
}

/* Appends ".seg" (or "seg" at the root) to the error path; returns the old length. */
static size_t path_push(ctx *c, const char *seg)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", seg);
    return old;
}

static void path_pop(ctx *c, size_t old)
{
    c->path[old] = '\0';
}

static node *compile_object(ctx *c, const cJSON *obj);

static int field_path_valid(const char *p)
{
    if (!p[0] || p[0] == '$')
        return 0;
    /* Empty segments ("a..b", "a.") could never be found in an event. */
    for (const char *s = p; *s; s++)
        if (*s == '.' && (s == p || s[1] == '.' || s[1] == '\0'))
            return 0;
    return 1;
}

static node *compile_cmp(ctx *c, const char *field, op_kind op, const cJSON *arg)
{
    node *n;
    switch (op) {
    case OP_IN:
    case OP_NIN:
        if (!cJSON_IsArray(arg)) {
            fail(c, "expected an array");
            return NULL;
        }
        break;
    case OP_GT:
    case OP_GTE:
    case OP_LT:
    case OP_LTE:
        if (!cJSON_IsNumber(arg) && !cJSON_IsString(arg)) {
            fail(c, "expected a number or a string");
            return NULL;
        }
        break;
    case OP_EXISTS:
        if (!cJSON_IsBool(arg)) {
            fail(c, "expected true or false");
            return NULL;
        }
        break;
    case OP_PREFIX:
        if (!cJSON_IsString(arg)) {
            fail(c, "expected a string");
            return NULL;
        }
        break;
    case OP_EQ:
    case OP_NE:
        break;
    }
    n = node_new(N_CMP);
    if (!n || !(n->path = strdup(field)) || !(n->value = cJSON_Duplicate(arg, 1))) {
        node_free(n);
        fail(c, "out of memory");
        return NULL;
    }
    n->op = op;
    return n;
}

/* {"$gte": 1, "$lt": 9} on one field: every operator must hold. */
static node *compile_ops(ctx *c, const char *field, const cJSON *opsobj)
{
    node *all = node_new(N_AND);
    if (!all) {
        fail(c, "out of memory");
        return NULL;
    }
    for (const cJSON *o = opsobj->child; o; o = o->next) {
        size_t old = path_push(c, o->string), i;
        node *kid;
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (strcmp(o->string, ops[i].name) == 0)
                break;
        if (i == sizeof(ops) / sizeof(ops[0])) {
            fail(c, o->string[0] == '$' ? "unknown operator" : "operators and plain keys mixed");
            goto bad;
        }
        if (!(kid = compile_cmp(c, field, ops[i].op, o)))
            goto bad;
        if (node_add(all, kid) != 0) {
            node_free(kid);
            fail(c, "out of memory");
            goto bad;
        }
        path_pop(c, old);
    }
    return all;
bad:
    node_free(all);
    return NULL;
}

static int is_operator_object(const cJSON *v)
{
    /* Keys starting with '$' make it an operator object; any other object is a value. */
    if (!cJSON_IsObject(v))
        return 0;
    for (const cJSON *k = v->child; k; k = k->next)
        if (k->string[0] == '$')
            return 1;
    return 0;
}

/* "$and" / "$or": a non-empty array of filter objects. */
static node *compile_logic(ctx *c, node_kind kind, const cJSON *arr)
{
    node *n;
    int i = 0;
    if (!cJSON_IsArray(arr) || !arr->child) {
        fail(c, "expected a non-empty array of objects");
        return NULL;
    }
    for (const cJSON *e = arr->child; e; e = e->next)
        if (!cJSON_IsObject(e)) {
            fail(c, "expected a non-empty array of objects");
            return NULL;
        }
    if (!(n = node_new(kind))) {
        fail(c, "out of memory");
        return NULL;
    }
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        char idx[16];
        size_t old;
        node *kid;
        snprintf(idx, sizeof(idx), "%d", i);
        old = path_push(c, idx);
        kid = compile_object(c, e);
        if (!kid || node_add(n, kid) != 0) {
            if (kid) {
                node_free(kid);
                fail(c, "out of memory");
            }
            node_free(n);
            return NULL;
        }
        path_pop(c, old);
    }
    return n;
}

static node *compile_key(ctx *c, const cJSON *kv)
{
    const char *key = kv->string;
    if (strcmp(key, "$and") == 0)
        return compile_logic(c, N_AND, kv);
    if (strcmp(key, "$or") == 0)
        return compile_logic(c, N_OR, kv);
    if (key[0] == '$') {
        fail(c, "unknown operator");
        return NULL;
    }
    if (!field_path_valid(key)) {
        fail(c, "invalid field path");
        return NULL;
    }
    if (is_operator_object(kv))
        return compile_ops(c, key, kv);
    return compile_cmp(c, key, OP_EQ, kv);
}

/* Every key of the object must hold. */
static node *compile_object(ctx *c, const cJSON *obj)
{
    node *all;
    if (!cJSON_IsObject(obj)) {
        fail(c, "expected an object");
        return NULL;
    }
    if (!(all = node_new(N_AND))) {
        fail(c, "out of memory");
        return NULL;
    }
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        size_t old = path_push(c, kv->string);
        node *kid = compile_key(c, kv);
        if (!kid || node_add(all, kid) != 0) {
            if (kid) {
                node_free(kid);
                fail(c, "out of memory");
            }
            node_free(all);
            return NULL;
        }
        path_pop(c, old);
    }
    return all;
}

sy_filter *filter_compile(const cJSON *spec, char *err, size_t errlen)
{
    ctx c = {.err = err, .errlen = errlen};
    sy_filter *f;
    node *root;
    if (err && errlen)
        err[0] = '\0';
    if (!spec || !cJSON_IsObject(spec)) {
        fail(&c, "expected an object");
        return NULL;
    }
    if (!(root = compile_object(&c, spec)))
        return NULL;
    if (!(f = malloc(sizeof(*f)))) {
        node_free(root);
        fail(&c, "out of memory");
        return NULL;
    }
    f->root = root;
    return f;
}

void filter_free(sy_filter *f)
{
    if (!f)
        return;
    node_free(f->root);
    free(f);
}

/* ------------------------------------------------------------------ */
/* Match                                                               */
/* ------------------------------------------------------------------ */

/* JSON equality: same type and value, arrays in order, objects by key set. */
static int json_equal(const cJSON *a, const cJSON *b)
{
    int ta = a->type & 0xFF, tb = b->type & 0xFF;
    if (ta != tb)
        return 0;
    switch (ta) {
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
        return strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array:
        for (a = a->child, b = b->child; a && b; a = a->next, b = b->next)
            if (!json_equal(a, b))
                return 0;
        return !a && !b;
    case cJSON_Object: {
        int na = 0, nb = 0;
        for (const cJSON *x = a->child; x; x = x->next)
            na++;
        for (const cJSON *y = b->child; y; y = y->next)
            nb++;
        if (na != nb)
            return 0;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y || !json_equal(x, y))
                return 0;
        }
        /* Both ways, or duplicate keys in a could hide a key only b has. */
        for (const cJSON *y = b->child; y; y = y->next)
            if (!cJSON_GetObjectItemCaseSensitive(a, y->string))
                return 0;
        return 1;
    }
    default: /* null, true, false: the type is the value */
        return 1;
    }
}

static int in_array(const cJSON *v, const cJSON *arr)
{
    for (const cJSON *e = arr->child; e; e = e->next)
        if (json_equal(v, e))
            return 1;
    return 0;
}

/* Ordered comparison: <0, 0, >0, or 2 when the types cannot be compared. */
static int order(const cJSON *v, const cJSON *arg)
{
    if (cJSON_IsNumber(v) && cJSON_IsNumber(arg))
        return v->valuedouble < arg->valuedouble ? -1 : v->valuedouble > arg->valuedouble;
    if (cJSON_IsString(v) && cJSON_IsString(arg)) {
        int r = strcmp(v->valuestring, arg->valuestring); /* compares as unsigned char */
        return r < 0 ? -1 : r > 0;
    }
    return 2;
}

static int cmp_match(const node *n, const cJSON *event)
{
    const cJSON *v = json_path(event, n->path);
    int o;
    switch (n->op) {
    case OP_EQ: return v && json_equal(v, n->value);
    case OP_NE: return !v || !json_equal(v, n->value);
    case OP_IN: return v && in_array(v, n->value);
    case OP_NIN: return !v || !in_array(v, n->value);
    case OP_EXISTS: return (v != NULL) == cJSON_IsTrue(n->value);
    case OP_PREFIX:
        return cJSON_IsString(v) &&
               strncmp(v->valuestring, n->value->valuestring, strlen(n->value->valuestring)) == 0;
    default: break;
    }
    if (!v || (o = order(v, n->value)) == 2)
        return 0;
    switch (n->op) {
    case OP_GT: return o > 0;
    case OP_GTE: return o >= 0;
    case OP_LT: return o < 0;
    case OP_LTE: return o <= 0;
    default: return 0;
    }
}

static int node_match(const node *n, const cJSON *event)
{
    switch (n->kind) {
    case N_AND:
        for (size_t i = 0; i < n->nkids; i++)
            if (!node_match(n->kids[i], event))
                return 0;
        return 1;
    case N_OR:
        for (size_t i = 0; i < n->nkids; i++)
            if (node_match(n->kids[i], event))
                return 1;
        return 0;
    case N_CMP:
        return cmp_match(n, event);
    }
    return 0;
}

int filter_match(const sy_filter *f, const cJSON *event)
{
    if (!f)
        return 1;
    return node_match(f->root, event);
}
