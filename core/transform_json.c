/*
 * transform_json.c - events into Lua tables, and Lua values back into
 * JSON text, for the sandboxed transformations (transform.h).
 *
 * Lua has one table type for JSON's arrays and objects, and no null. So
 * decoded arrays carry a shared metatable (the `array` mark) and null is
 * a sentinel light userdata the scripts know as `null`; the encoder reads
 * both back. A table without the mark is an array when its keys are
 * exactly 1..n, an object when they are all strings, and `{}` when empty.
 */
#include "transform.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* Registry keys: their addresses are unique. */
static const char null_tag = 0;
static const char array_mt_key = 0;

#define MAX_NESTING 100

void tf_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&null_tag);
}

static void push_array_mt(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

/* array(t): marks t as a JSON array (so an empty one encodes as []); returns t. */
static int array_fn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

void tf_push_array_fn(lua_State *L)
{
    lua_pushcfunction(L, array_fn);
}

void tf_json_setup(lua_State *L)
{
    lua_createtable(L, 0, 1);
    /* Protected: getmetatable answers "array" and setmetatable cannot swap it. */
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

/* ---- JSON -> Lua -------------------------------------------------------- */

static void push_number(lua_State *L, double d)
{
    /* Integers as Lua integers: scripts compare and format them as such. */
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == floor(d))
        lua_pushinteger(L, (lua_Integer)d);
    else
        lua_pushnumber(L, d);
}

void tf_push_json(lua_State *L, const cJSON *v)
{
    luaL_checkstack(L, 4, "event nested too deep");
    if (!v || cJSON_IsNull(v)) {
        tf_push_null(L);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else if (cJSON_IsNumber(v)) {
        push_number(L, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring ? v->valuestring : "");
    } else if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v), i = 1;
        lua_createtable(L, n, 0);
        for (const cJSON *c = v->child; c; c = c->next) {
            tf_push_json(L, c);
            lua_rawseti(L, -2, i++);
        }
        push_array_mt(L);
        lua_setmetatable(L, -2);
    } else {
        lua_createtable(L, 0, cJSON_GetArraySize(v));
        for (const cJSON *c = v->child; c; c = c->next) {
            lua_pushstring(L, c->string ? c->string : "");
            tf_push_json(L, c);
            lua_rawset(L, -3);
        }
    }
}

/* ---- Lua -> JSON ---------------------------------------------------------- */

static void put(lua_State *L, tf_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->max)
        luaL_error(L, "the result is larger than %d bytes", (int)b->max);
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        char *p = realloc(b->p, ncap);
        if (!p)
            luaL_error(L, "out of memory encoding the result");
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_string(lua_State *L, tf_buf *b, const char *s, size_t n)
{
    if (!envelope_utf8_valid(s, n))
        luaL_error(L, "a string in the result is not valid UTF-8");
    put(L, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(L, b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': put(L, b, "\\\"", 2); break;
        case '\\': put(L, b, "\\\\", 2); break;
        case '\n': put(L, b, "\\n", 2); break;
        case '\r': put(L, b, "\\r", 2); break;
        case '\t': put(L, b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(L, b, esc, 6);
        }
    }
    put(L, b, s + run, n - run);
    put(L, b, "\"", 1);
}

static void put_number(lua_State *L, tf_buf *b, int idx)
{
    char num[64];
    int n;
    if (lua_isinteger(L, idx)) {
        n = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
    } else {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d))
            luaL_error(L, "cannot encode %s as JSON", isnan(d) ? "NaN" : "an infinite number");
        n = snprintf(num, sizeof num, "%.17g", d);
    }
    put(L, b, num, (size_t)n);
}

typedef struct kref {
    const char *k;
    size_t n;
} kref;

static int cmp_kref(const void *a, const void *b)
{
    const kref *x = a, *y = b;
    int c = memcmp(x->k, y->k, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static void encode(lua_State *L, int idx, tf_buf *b, int depth);

/* An object with sorted keys: the same table always gives the same bytes. */
static void encode_object(lua_State *L, int t, size_t nkeys, tf_buf *b, int depth)
{
    /* Scratch in a userdata: a Lua error frees it with everything else. */
    kref *keys = lua_newuserdatauv(L, nkeys * sizeof *keys, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        keys[i].k = lua_tolstring(L, -1, &keys[i].n); /* a string key: no conversion */
        i++;
    }
    qsort(keys, nkeys, sizeof *keys, cmp_kref);
    put(L, b, "{", 1);
    for (i = 0; i < nkeys; i++) {
        if (i)
            put(L, b, ",", 1);
        put_string(L, b, keys[i].k, keys[i].n);
        put(L, b, ":", 1);
        lua_pushlstring(L, keys[i].k, keys[i].n);
        lua_rawget(L, t);
        encode(L, lua_gettop(L), b, depth + 1);
        lua_pop(L, 1);
    }
    put(L, b, "}", 1);
    lua_pop(L, 1); /* the scratch */
}

static void encode_array(lua_State *L, int t, lua_Integer n, tf_buf *b, int depth)
{
    put(L, b, "[", 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            put(L, b, ",", 1);
        lua_rawgeti(L, t, i);
        if (lua_isnil(L, -1))
            put(L, b, "null", 4);
        else
            encode(L, lua_gettop(L), b, depth + 1);
        lua_pop(L, 1);
    }
    put(L, b, "]", 1);
}

static void encode_table(lua_State *L, int t, tf_buf *b, int depth)
{
    if (depth > MAX_NESTING)
        luaL_error(L, "the result is nested deeper than %d levels (a table that contains itself?)",
                   MAX_NESTING);
    luaL_checkstack(L, 6, "the result is nested too deep");
    if (lua_getmetatable(L, t)) {
        push_array_mt(L);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) {
            encode_array(L, t, (lua_Integer)lua_rawlen(L, t), b, depth);
            return;
        }
    }
    size_t count = 0, strings = 0;
    lua_Integer max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            strings++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        } else {
            luaL_error(L, "cannot encode a table with %s keys as JSON",
                       luaL_typename(L, -1));
        }
    }
    if (count == 0) {
        put(L, b, "{}", 2);
    } else if (strings == count) {
        encode_object(L, t, count, b, depth);
    } else if (strings == 0 && (size_t)max == count) {
        encode_array(L, t, max, b, depth);
    } else {
        luaL_error(L, "cannot encode a table as JSON: its keys are %s",
                   strings ? "both numbers and strings" : "numbers with gaps");
    }
}

static void encode(lua_State *L, int idx, tf_buf *b, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(L, b, "true", 4);
        else
            put(L, b, "false", 5);
        return;
    case LUA_TNUMBER:
        put_number(L, b, idx);
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(L, b, s, n);
        return;
    }
    case LUA_TTABLE:
        encode_table(L, idx, b, depth);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == &null_tag) {
            put(L, b, "null", 4);
            return;
        }
        break;
    default:
        break;
    }
    luaL_error(L, "cannot encode a %s value as JSON", luaL_typename(L, idx));
}

void tf_encode_json(lua_State *L, int idx, tf_buf *b)
{
    encode(L, lua_absindex(L, idx), b, 0);
}
