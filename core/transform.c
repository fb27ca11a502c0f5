/*
 * transform.c - the Lua sandbox: one state with safe libraries, a memory
 * cap in its allocator, an instruction budget in a count hook, and the
 * calling convention of transform(event) (docs/TRANSFORMS.md).
 *
 * Every call into Lua that may allocate runs inside lua_pcall: a memory
 * or budget error then unwinds to us as a status, never through C frames
 * that hold resources. What C allocates on the way (the result) lives in
 * a context the caller frees whatever happened.
 */
#include "transform.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TF_SCRIPT_MAX (1024 * 1024)
#define TF_HOOK_STEP 1000
#define TF_VALUE_MAX 255   /* content type, route */
#define TF_HEADERS_MAX 64
#define TF_HEADER_VALUE_MAX 4096

struct tf_vm {
    lua_State *L;
    size_t used, limit;
    int64_t budget, spent;
    int step;          /* the hook's current count */
    int over_budget;
    int mem_refused;   /* the allocator said no during this call */
};

/* ---- limits ------------------------------------------------------------- */

static void *tf_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    tf_vm *vm = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && vm->used - old + nsize > vm->limit) {
        vm->mem_refused = 1; /* Lua collects and asks once more before it gives up */
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize <= old)
            return ptr; /* Lua counts on shrinking never failing */
        vm->mem_refused = 1;
        return NULL;
    }
    vm->used = vm->used - old + nsize;
    return p;
}

static tf_vm *vm_of(lua_State *L)
{
    return *(tf_vm **)lua_getextraspace(L);
}

/*
 * Every TF_HOOK_STEP instructions. Past the budget the hook fires at
 * every instruction and raises each time, so a script that catches the
 * error with pcall gets no further than its next instruction.
 */
static void tf_hook(lua_State *L, lua_Debug *ar)
{
    tf_vm *vm = vm_of(L);
    vm->spent += vm->step;
    if (vm->spent < vm->budget)
        return;
    if (!vm->over_budget) {
        vm->over_budget = 1;
        vm->step = 1;
        lua_sethook(L, tf_hook, LUA_MASKCOUNT, 1);
    }
    /* Where the script was, as Lua says it for its own errors. */
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        luaL_error(L, "%s:%d: instruction budget of %I exceeded", ar->short_src, ar->currentline,
                   (lua_Integer)vm->budget);
    luaL_error(L, "instruction budget of %I exceeded", (lua_Integer)vm->budget);
}

static void arm(tf_vm *vm)
{
    vm->spent = 0;
    vm->over_budget = 0;
    vm->mem_refused = 0;
    vm->step = vm->budget < TF_HOOK_STEP ? (int)vm->budget : TF_HOOK_STEP;
    lua_sethook(vm->L, tf_hook, LUA_MASKCOUNT, vm->step);
}

void tf_vm_set_limits(tf_vm *vm, const tf_limits *lim)
{
    vm->budget = lim->instructions > 0 ? lim->instructions : 1000000;
    vm->limit = lim->memory > 0 ? (size_t)lim->memory : 64u << 20;
}

size_t tf_vm_memory(const tf_vm *vm)
{
    return vm->used;
}

/* ---- the sandbox ------------------------------------------------------------ */

/* Base functions a script may call; everything else of _G stays out of reach. */
static const char *const safe_base[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal",
    "rawget", "rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall",
    "_VERSION", NULL};
static const char *const safe_libs[] = {"string", "table", "math", "utf8", NULL};

static const char env_tmpl_key = 0; /* registry: the original setmetatable */

/* load(chunk [, name [, mode [, env]]]): text chunks only, in the caller's environment. */
static int safe_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    int has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushvalue(L, has_env ? 4 : lua_upvalueindex(1));
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* setmetatable without __gc: a finalizer would run at an unknown time, outside any budget. */
static int safe_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc is not available in transforms");
        lua_pop(L, 1);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &env_tmpl_key);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Pushes a shallow copy of the table at idx. */
static void copy_table(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Pushes a fresh environment: copies of the safe functions and libraries. */
static void push_env(lua_State *L)
{
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    for (const char *const *n = safe_base; *n; n++) {
        lua_getfield(L, g, *n);
        lua_setfield(L, env, *n);
    }
    for (const char *const *n = safe_libs; *n; n++) {
        lua_getfield(L, g, *n);
        copy_table(L, -1);
        lua_setfield(L, env, *n);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, env);
    lua_pushcclosure(L, safe_load, 1);
    lua_setfield(L, env, "load");
    lua_pushcfunction(L, safe_setmetatable);
    lua_setfield(L, env, "setmetatable");
    tf_push_null(L);
    lua_setfield(L, env, "null");
    tf_push_array_fn(L);
    lua_setfield(L, env, "array");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
}

static int setup_k(lua_State *L)
{
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_settop(L, 0);
    /* string.dump would hand out bytecode; strings' methods come from this very table. */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    /* getmetatable("") must not give scripts the shared string metatable to change. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_getglobal(L, "setmetatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &env_tmpl_key);
    tf_json_setup(L);
    return 0;
}

tf_vm *tf_vm_new(const tf_limits *lim, char *err, size_t errlen)
{
    tf_vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tf_vm_set_limits(vm, lim);
    /* The libraries need a little room whatever the configured cap. */
    size_t cap = vm->limit;
    if (vm->limit < (1u << 20))
        vm->limit = 1u << 20;
    vm->L = lua_newstate(tf_alloc, vm);
    if (!vm->L) {
        snprintf(err, errlen, "out of memory creating a Lua state");
        free(vm);
        return NULL;
    }
    *(tf_vm **)lua_getextraspace(vm->L) = vm;
    lua_pushcfunction(vm->L, setup_k);
    if (lua_pcall(vm->L, 0, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "setting up Lua: %s", lua_tostring(vm->L, -1));
        tf_vm_free(vm);
        return NULL;
    }
    vm->limit = cap;
    return vm;
}

void tf_vm_free(tf_vm *vm)
{
    if (!vm)
        return;
    if (vm->L) {
        lua_sethook(vm->L, NULL, 0, 0);
        lua_close(vm->L);
    }
    free(vm);
}

/* ---- errors ------------------------------------------------------------------ */

/* The message of a failed protected call, told apart by cause; pops it. */
static void failed(tf_vm *vm, int status, char *err, size_t errlen)
{
    lua_State *L = vm->L;
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (status == LUA_ERRMEM || (vm->mem_refused && msg && strstr(msg, "not enough memory")))
        snprintf(err, errlen, "memory limit of %zu bytes exceeded", vm->limit);
    else if (msg)
        snprintf(err, errlen, "%s", msg);
    else
        snprintf(err, errlen, "error object is a %s value", luaL_typename(L, -1));
    lua_settop(L, 0);
    /* Whatever the failed call left behind goes now, not at the next call's expense. */
    lua_sethook(L, NULL, 0, 0);
    lua_gc(L, LUA_GCCOLLECT);
}

/* ---- compiling ------------------------------------------------------------------ */

typedef struct compile_ctx {
    const char *name, *src;
    size_t len;
    int ref;
} compile_ctx;

/*
 * Lua cuts chunk names to 60 bytes ("...end/of/the/path.lua"), so scripts
 * are known by their file name: what delivery details show. Errors of
 * tf_compile put the whole path back.
 */
static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b && b[1] ? b + 1 : path;
}

static int compile_k(lua_State *L)
{
    compile_ctx *c = lua_touserdata(L, 1);
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@%s", base_name(c->name));
    if (luaL_loadbufferx(L, c->src, c->len, chunk, "t") != LUA_OK)
        return lua_error(L);
    push_env(L);
    lua_pushvalue(L, -1);
    lua_setupvalue(L, -3, 1); /* _ENV of the chunk */
    lua_insert(L, -2);
    lua_call(L, 0, 0);
    if (lua_getfield(L, -1, "transform") != LUA_TFUNCTION)
        return luaL_error(L, "%s: defines no function transform(event)", base_name(c->name));
    c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int tf_compile(tf_vm *vm, const char *name, const char *src, size_t len, char *err,
               size_t errlen)
{
    compile_ctx c = {name, src, len, LUA_NOREF};
    lua_State *L = vm->L;
    lua_settop(L, 0);
    arm(vm);
    lua_pushcfunction(L, compile_k);
    lua_pushlightuserdata(L, &c);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
        char msg[512];
        failed(vm, st, msg, sizeof msg);
        const char *b = base_name(name);
        size_t bl = strlen(b);
        if (b != name && !strncmp(msg, b, bl) && msg[bl] == ':')
            snprintf(err, errlen, "%s%s", name, msg + bl);
        else
            snprintf(err, errlen, "%s", msg);
        return -1;
    }
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, 0);
    return c.ref;
}

void tf_release(tf_vm *vm, int handle)
{
    if (vm && handle >= 0)
        luaL_unref(vm->L, LUA_REGISTRYINDEX, handle);
}

/* ---- calling ---------------------------------------------------------------------- */

typedef struct run_ctx {
    int ref;
    const cJSON *event;
    int drop;
    tf_buf body;
    tf_out *o;
} run_ctx;

/* A string option's value, checked: no control characters, at most TF_VALUE_MAX bytes. */
static char *opt_string(lua_State *L, int idx, const char *what, size_t max)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "%s must be a string, not a %s", what, luaL_typename(L, idx));
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (n == 0 || n > max)
        luaL_error(L, "%s must be 1 to %d bytes long", what, (int)max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            luaL_error(L, "%s must not contain control characters", what);
    char *copy = malloc(n + 1);
    if (!copy)
        luaL_error(L, "out of memory");
    memcpy(copy, s, n + 1);
    return copy;
}

static int token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* headers = {["X-Name"] = "value", ...}: into one block, name, value, ..., NULL. */
static void opt_headers(lua_State *L, int t, tf_out *o)
{
    if (!lua_istable(L, t))
        luaL_error(L, "headers must be a table of name = value, not a %s", luaL_typename(L, t));
    size_t n = 0, bytes = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t kl, vl;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "headers must map strings to strings");
        const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
        if (kl == 0 || kl > TF_VALUE_MAX)
            luaL_error(L, "a header name must be 1 to %d bytes long", TF_VALUE_MAX);
        for (size_t i = 0; i < kl; i++)
            if (!token_char((unsigned char)k[i]))
                luaL_error(L, "header name \"%s\" is not an HTTP token", k);
        if (vl > TF_HEADER_VALUE_MAX)
            luaL_error(L, "header %s: the value is longer than %d bytes", k, TF_HEADER_VALUE_MAX);
        for (size_t i = 0; i < vl; i++)
            if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
                luaL_error(L, "header %s: the value contains control characters", k);
        if (++n > TF_HEADERS_MAX)
            luaL_error(L, "more than %d headers", TF_HEADERS_MAX);
        bytes += kl + vl + 2;
        lua_pop(L, 1);
    }
    if (!n)
        return;
    char **block = malloc((2 * n + 1) * sizeof(char *) + bytes);
    if (!block)
        luaL_error(L, "out of memory");
    o->headers = block;
    char *p = (char *)(block + 2 * n + 1);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        for (int side = -2; side <= -1; side++) {
            size_t l;
            const char *s = lua_tolstring(L, side, &l);
            memcpy(p, s, l + 1);
            block[i++] = p;
            p += l + 1;
        }
        lua_pop(L, 1);
    }
    block[i] = NULL;
}

/* The second result: a content type, or {content_type=, headers=, route=}. */
static void take_options(lua_State *L, int idx, tf_out *o)
{
    if (lua_isnil(L, idx))
        return;
    if (lua_type(L, idx) == LUA_TSTRING) {
        o->content_type = opt_string(L, idx, "the content type", TF_VALUE_MAX);
        return;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "transform returned a %s as its second value; expected a content type "
                      "or a table of options", luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int v = lua_gettop(L);
        if (k && !strcmp(k, "content_type") && !o->content_type)
            o->content_type = opt_string(L, v, "content_type", TF_VALUE_MAX);
        else if (k && !strcmp(k, "route") && !o->route)
            o->route = opt_string(L, v, "route", TF_VALUE_MAX);
        else if (k && !strcmp(k, "headers") && !o->headers)
            opt_headers(L, v, o);
        else
            luaL_error(L, "unknown option %s (content_type, headers, route)",
                       k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
}

static int run_k(lua_State *L)
{
    run_ctx *c = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
    tf_push_json(L, c->event);
    lua_call(L, 1, 2);
    switch (lua_type(L, 1)) {
    case LUA_TNIL:
        c->drop = 1;
        return 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, 1, &n);
        if (n > c->body.max)
            luaL_error(L, "the result is larger than %d bytes", (int)c->body.max);
        if (!(c->body.p = malloc(n ? n : 1)))
            luaL_error(L, "out of memory");
        memcpy(c->body.p, s, n);
        c->body.len = n;
        break;
    }
    case LUA_TTABLE:
        tf_encode_json(L, 1, &c->body);
        break;
    default:
        return luaL_error(L, "transform returned a %s; expected a table, a string or nil",
                          luaL_typename(L, 1));
    }
    take_options(L, 2, c->o);
    /* A table became JSON: say so unless the script named another type. */
    if (lua_istable(L, 1) && !c->o->content_type &&
        !(c->o->content_type = strdup("application/json")))
        luaL_error(L, "out of memory");
    return 0;
}

void tf_out_free(tf_out *o)
{
    if (!o)
        return;
    free(o->body);
    free(o->content_type);
    free(o->headers);
    free(o->route);
    free(o);
}

tf_status tf_run(tf_vm *vm, int handle, const cJSON *event, tf_out **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    tf_out *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return TF_ERROR;
    }
    run_ctx c = {.ref = handle, .event = event, .o = o, .body = {.max = vm->limit}};
    lua_State *L = vm->L;
    lua_settop(L, 0);
    arm(vm);
    lua_pushcfunction(L, run_k);
    lua_pushlightuserdata(L, &c);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
        failed(vm, st, err, errlen);
        free(c.body.p);
        tf_out_free(o);
        return TF_ERROR;
    }
    lua_sethook(L, NULL, 0, 0);
    lua_settop(L, 0);
    if (c.drop) {
        tf_out_free(o);
        return TF_DROP;
    }
    o->body = c.body.p;
    o->body_len = c.body.len;
    *out = o;
    return TF_OK;
}

/* ---- files and checks ---------------------------------------------------------------- */

char *tf_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > TF_SCRIPT_MAX) {
        snprintf(err, errlen, "%s: %s", path,
                 S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file");
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, errlen, "cannot read %s: %s", path, buf ? "short read" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

int tf_check(const char *name, const char *src, size_t len, const tf_limits *lim, char *err,
             size_t errlen)
{
    tf_vm *vm = tf_vm_new(lim, err, errlen);
    if (!vm)
        return -1;
    int ref = tf_compile(vm, name, src, len, err, errlen);
    tf_vm_free(vm);
    return ref < 0 ? -1 : 0;
}
