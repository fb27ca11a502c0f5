/*
 * config_keys.c - every key the core reads, declared once.
 *
 * The order of each table is the order of its "unknown key (expected ...)"
 * message and of its table in docs/CONFIG.md. Help texts are Markdown
 * (CONFIG.md shows them as they are); the table adds the range, "never
 * shown" for secrets and "restart to change it" itself, so a help text
 * does not repeat those.
 */
#include "config_keys.h"

#include <string.h>

#include "config.h"

#ifndef SY_PLUGIN_DIR
#define SY_PLUGIN_DIR "/usr/local/lib/switchyard/plugins"
#endif
#ifndef SY_PORTAL_DIR
#define SY_PORTAL_DIR "/usr/local/share/switchyard/portal"
#endif

#define MIB (1024LL * 1024)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};
static const char *const spool_syncs[] = {"full", "normal", NULL};
static const char *const store_types[] = {"sqlite", "postgres", NULL};
static const char *const orderings[] = {"endpoint", "key", NULL};
const char *const config_ingress_types[] = {"pull", "sub", "ack", NULL};

#define CORE(name, type, def, flags, member, help) \
    SY_KEY(name, type, def, flags, sy_conf, member, help)
#define RANGE(lo, hi) .min = (lo), .max = (hi)

static const sy_config_key core_keys[] = {
    {CORE("plugin_dir", SY_CFG_STRING, SY_PLUGIN_DIR, CFG_NONEMPTY, plugin_dir,
          "folder of sink plugins (`NAME.so`); must not be group- or world-writable. The "
          "default is where `make install` puts them, `$(PREFIX)/lib/switchyard/plugins`")},
    {CORE("ingress", CFG_ARRAY, NULL, SY_CFG_REQUIRED | CFG_RESTART, ingress_json,
          "the sockets events arrive on, objects with the keys of `core.ingress[]`")},
    {CORE("admin", CFG_OBJECT, NULL, CFG_NULL_OFF, admin_json,
          "the admin HTTP API, an object with the keys of `core.admin`; `null`: none")},
    {CORE("spool", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY | CFG_RESTART, spool,
          "SQLite file holding every accepted event and delivery (WAL, group commit), created "
          "mode 0600 with its `-wal` and `-shm` files; `null` runs in memory and says so at "
          "start: unfinished deliveries are then lost if the process dies, and event ids are "
          "not de-duplicated. With `store` of type `postgres` it must be absent or `null`")},
    {CORE("spool_sync", SY_CFG_STRING, "full", CFG_RESTART, spool_sync,
          "`full`: committed data survives power loss; `normal`: survives process crashes "
          "(kill -9), faster"),
     .choices = spool_syncs},
    {CORE("spool_log", SY_CFG_BOOL, "true", CFG_RESTART, spool_log,
          "with the SQLite spool: accepted events and outcomes go first to an append-only "
          "log beside it (`<spool>-hot.NNNNNNNN`, one write and one sync per group, as "
          "`spool_sync` says) and are folded into the database in large transactions a few "
          "milliseconds later; `false`: each group is a database transaction. What reads the "
          "database (admin API, `switchyard status`) sees an event once it is folded")},
    {CORE("store", CFG_OBJECT, NULL, CFG_NULL_OFF | CFG_RESTART, store_json,
          "which store keeps events and deliveries, an object with the keys of `core.store`; "
          "absent or `null`: SQLite in the file `spool`")},
    {CORE("cluster", CFG_OBJECT, NULL, CFG_NULL_OFF | CFG_RESTART, cluster_json,
          "with `store` of type `postgres`: this node in the cluster, an object with the "
          "keys of `core.cluster`")},
    {CORE("retention", SY_CFG_DURATION, "1d", CFG_RESTART, retention_ms,
          "how long delivered rows and the attempts log are kept")},
    {CORE("dedup_window", SY_CFG_DURATION, "1d", CFG_RESTART, dedup_window_ms,
          "how long an event id is remembered: the same id again is answered `dup` and not "
          "delivered twice")},
    {CORE("spill_after", SY_CFG_DURATION, "1m", CFG_RESTART, spill_after_ms,
          "retries due later than this wait on disk instead of in memory; the pager loads "
          "them back when due")},
    {CORE("memory_deliveries", SY_CFG_INT, "100000", SY_CFG_RANGE | CFG_RESTART,
          memory_deliveries, "deliveries held in memory at most with a spool; the rest wait "
          "on disk"),
     RANGE(100, 100000000)},
    {CORE("quarantine", SY_CFG_STRING, "var/quarantine.jsonl",
          CFG_NULL_OFF | CFG_NONEMPTY | CFG_RESTART, quarantine,
          "JSON Lines file of rejected input (size, SHA-256, and the message, or its first "
          "4 KiB when over `max_event_bytes`), created mode 0600; `null` keeps only counters "
          "and log lines")},
    {CORE("quarantine_max", SY_CFG_SIZE, "64MiB", SY_CFG_RANGE | CFG_RESTART, quarantine_max,
          "the quarantine file is renamed to `PATH.1` (replacing the older one) when the next "
          "record would take it past this: on disk at most twice this"),
     RANGE(64 * 1024, INT64_MAX)},
    {CORE("quarantine_rate", SY_CFG_SIZE, "1MiB", CFG_RESTART, quarantine_rate,
          "bytes written to the quarantine file a second at most (a token bucket holding one "
          "second's worth); beyond it rejections are counted in "
          "`switchyard_events_quarantine_dropped_total`, not kept; `0`: no limit")},
    {CORE("max_event_bytes", SY_CFG_SIZE, "1MiB", SY_CFG_RANGE, max_event_bytes,
          "larger messages are rejected as `too_big`"),
     RANGE(64, 256 * MIB)},
    {CORE("max_depth", SY_CFG_INT, "64", SY_CFG_RANGE, max_depth,
          "deeper JSON nesting is rejected as `too_deep`"),
     RANGE(2, 1000)},
    {CORE("workers", SY_CFG_INT, "4", SY_CFG_RANGE | CFG_RESTART, workers,
          "threads running blocking plugins' `deliver` and `deliver_batch`"),
     RANGE(1, 256)},
    {CORE("shards", SY_CFG_INT, NULL, SY_CFG_RANGE | CFG_RESTART, shards,
          "threads owning endpoints (each endpoint belongs to one); default: one per CPU, at "
          "most 64"),
     RANGE(1, 256)},
    {CORE("max_pending", SY_CFG_INT, "10000", SY_CFG_RANGE | CFG_RESTART, max_pending,
          "unfinished deliveries plus events waiting for the spool at which ingress stops "
          "reading (PULL and ack publishers then wait; SUB drops at its high-water mark)"),
     RANGE(1, 100000000)},
    {CORE("max_pending_bytes", SY_CFG_SIZE, "256MiB", SY_CFG_RANGE | CFG_RESTART,
          max_pending_bytes, "bytes of events held in memory at which ingress stops reading, "
          "as for `max_pending`"),
     RANGE(MIB, INT64_MAX)},
    {CORE("complete_grace", SY_CFG_DURATION, "5s", CFG_RESTART, complete_grace_ms,
          "added to a plugin's attempt timeout: an attempt not completed by then is retried "
          "(\"plugin did not complete\")")},
    {CORE("drain_timeout", SY_CFG_DURATION, "10s", 0, drain_timeout_ms,
          "on SIGTERM, how long to wait for in-flight deliveries")},
    {CORE("log_level", SY_CFG_STRING, "info", 0, log_level, "`--log-level` overrides"),
     .choices = log_levels},
    {CORE("log_format", SY_CFG_STRING, "logfmt", 0, log_format, "`--log-format` overrides"),
     .choices = log_formats},
    {CORE("stats_file", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY | CFG_RESTART,
          stats_file, "JSON snapshot of every counter, rewritten atomically, mode 0640 (for "
          "monitoring in the daemon's group)")},
    {CORE("stats_interval", SY_CFG_DURATION, "1s", SY_CFG_RANGE, stats_interval_ms,
          "how often the stats file is rewritten"),
     RANGE(10, INT64_MAX)},
    {CORE("transform_instructions", SY_CFG_INT, "1000000", SY_CFG_RANGE,
          transform_instructions,
          "Lua instructions one call of an endpoint's `transform` may run (its top level when "
          "it is loaded, too); past them the delivery fails (docs/TRANSFORMS.md)"),
     RANGE(1000, 1000000000)},
    {CORE("transform_memory", SY_CFG_SIZE, "64MiB", SY_CFG_RANGE, transform_memory,
          "memory the Lua state of one shard may hold, shared by the transforms of the "
          "endpoints it owns; a call that needs more fails its delivery"),
     RANGE(MIB, 4096 * MIB)},
};
const sy_config_table config_core_table = SY_CONFIG_TABLE(core_keys, sy_conf);

static const sy_config_key admin_keys[] = {
    {CORE("listen", SY_CFG_STRING, NULL, CFG_NONEMPTY | CFG_RESTART, admin_listen,
          "`IPV4:PORT` to serve on; use loopback (`127.0.0.1:5580`) unless a proxy guards it")},
    {CORE("token", SY_CFG_STRING, NULL, SY_CFG_SECRET | CFG_CREATED, admin_token,
          "bearer token for `/api/v1/*`, at least 16 characters; a `token_file` that does not "
          "exist is created by `switchyard run`, mode 0600, with a random token")},
    {CORE("portal_dir", SY_CFG_STRING, SY_PORTAL_DIR, CFG_NONEMPTY, portal_dir,
          "folder of the customer portal's files, served at `/portal/` (docs/PORTAL.md). The "
          "default is where `make install` puts them, `$(PREFIX)/share/switchyard/portal`; "
          "from a source tree, `core/portal`")},
    {CORE("portal_url", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY, portal_url,
          "the portal's address as customers' browsers reach it, e.g. "
          "`https://hooks.example.com/portal/`: the start of the links "
          "`POST /api/v1/portal-sessions` answers; `null`: `http://` + the request's `Host` + "
          "`/portal/`")},
    {CORE("frame_ancestors", SY_CFG_STRING, "'none'", CFG_NONEMPTY, frame_ancestors,
          "who may embed the portal in a frame: the CSP `frame-ancestors` sources, "
          "space-separated (`https://app.example.com`); `'none'` (also `X-Frame-Options: "
          "DENY`) or `'self'` (also `SAMEORIGIN`)")},
};
const sy_config_table config_admin_table = SY_CONFIG_TABLE(admin_keys, sy_conf);

static const sy_config_key store_keys[] = {
    {CORE("type", SY_CFG_STRING, "sqlite", CFG_RESTART, store_type,
          "`sqlite`: the file `core.spool`, one node; `postgres`: a PostgreSQL database that "
          "any number of nodes share (docs/SCALING.md)"),
     .choices = store_types},
    {CORE("conninfo", SY_CFG_STRING, NULL, SY_CFG_SECRET | CFG_NONEMPTY | CFG_RESTART,
          store_conninfo,
          "`postgres`: a libpq connection string (`host=db1 dbname=switchyard user=sy`, or a "
          "`postgresql://` URI); it may hold a password, so it is never logged; "
          "`conninfo_file` keeps it out of the config")},
};
const sy_config_table config_store_table = SY_CONFIG_TABLE(store_keys, sy_conf);

static const sy_config_key cluster_keys[] = {
    {CORE("node_id", SY_CFG_STRING, NULL, CFG_NONEMPTY | CFG_RESTART, cluster_node_id,
          "this node's name among those sharing the database, unique to one running process "
          "(a node restarting under its name takes its partitions back at once); default: the "
          "host name")},
    {CORE("lease_timeout", SY_CFG_DURATION, "10s", SY_CFG_RANGE | CFG_RESTART,
          cluster_lease_timeout_ms,
          "how long a node's partition leases outlive its last renewal: a node that stops, "
          "dies or loses the database has its partitions taken over this long after; it "
          "renews every third of it"),
     RANGE(1000, 3600000)},
};
const sy_config_table config_cluster_table = SY_CONFIG_TABLE(cluster_keys, sy_conf);

#define INGRESS(name, type, def, flags, member, help) \
    SY_KEY(name, type, def, flags, config_ingress_keys, member, help)

static const sy_config_key ingress_keys[] = {
    {INGRESS("type", SY_CFG_STRING, NULL, SY_CFG_REQUIRED, type,
             "`pull`: PULL, no loss under back-pressure; `sub`: SUB, prefix filtering on the "
             "first frame; `ack`: a ROUTER socket that answers every event (see below)"),
     .choices = config_ingress_types},
    {INGRESS("bind", SY_CFG_STRING, NULL, CFG_NONEMPTY, bind,
             "a ZeroMQ endpoint to bind, e.g. `tcp://127.0.0.1:5556`, "
             "`ipc:///run/switchyard.sock`; give `bind` or `connect`, not both")},
    {INGRESS("connect", SY_CFG_STRING, NULL, CFG_NONEMPTY, connect,
             "a ZeroMQ endpoint to connect to instead")},
    {INGRESS("topics", SY_CFG_STRINGS, "[\"\"]", SY_CFG_GIVEN | CFG_NONEMPTY, topics,
             "`sub` only: the subscribed prefixes (`\"\"` is everything)"),
     .given_offset = offsetof(config_ingress_keys, topics_given)},
    {INGRESS("rcvhwm", SY_CFG_INT, "10000", SY_CFG_RANGE, rcvhwm,
             "ZeroMQ receive high-water mark"),
     RANGE(0, 10000000)},
};
const sy_config_table config_ingress_table =
    SY_CONFIG_TABLE(ingress_keys, config_ingress_keys);

static const sy_config_key sink_keys[] = {
    {SY_KEY("plugin", SY_CFG_STRING, NULL, SY_CFG_REQUIRED | CFG_NONEMPTY, sy_sink_conf, plugin,
            "a plugin name in `plugin_dir`, or a path containing `/`")},
    {SY_KEY("retry", CFG_NAME_OR_OBJECT, NULL, 0, sy_sink_conf, retry,
            "default retry policy of this instance's endpoints (see Retry policies)")},
    {SY_KEY("concurrency", SY_CFG_INT, NULL, SY_CFG_RANGE, sy_sink_conf, concurrency,
            "default concurrency of this instance's endpoints"),
     RANGE(1, 10000)},
};
const sy_config_table config_sink_table = SY_CONFIG_TABLE(sink_keys, sy_sink_conf);

#define EP(name, type, def, flags, member, help) \
    SY_KEY(name, type, def, flags, sy_endpoint_conf, member, help)

static const sy_config_key endpoint_keys[] = {
    {EP("sink", SY_CFG_STRING, NULL, SY_CFG_REQUIRED | CFG_NONEMPTY, sink,
        "the sink instance that delivers")},
    {EP("org_id", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY, org_id,
        "only events of this org; `null` receives every org's events (and events without "
        "org)")},
    {EP("enabled_events", SY_CFG_STRINGS, "[\"*\"]", CFG_NONEMPTY, events,
        "`job.completed` (exact), `job.*` (every type starting with `job.`), `*` (every type "
        "but system events)")},
    {EP("filter", CFG_OBJECT, NULL, CFG_NULL_OFF, filter_spec,
        "payload filter, see Filters; `null`: none")},
    {EP("retry", CFG_NAME_OR_OBJECT, NULL, 0, retry,
        "`\"standard\"`, `\"legacy\"` or a custom policy, see Retry policies; default: the "
        "sink's, else the plugin's default, else `standard`")},
    {EP("concurrency", SY_CFG_INT, NULL, SY_CFG_RANGE, concurrency,
        "deliveries in flight at once for this endpoint; default: the sink's, else 4"),
     RANGE(1, 10000)},
    {EP("enabled", SY_CFG_BOOL, "true", 0, enabled,
        "`false` keeps the endpoint configured but routes nothing to it")},
    {EP("rate_limit", SY_CFG_STRING, NULL, CFG_NULL_OFF, rate_limit,
        "`\"1000/min\"`, `\"50/s\"`, `\"20/10s\"` (at most 1000000 per window): at most that "
        "many attempts in any window of that length, as the receiver counts them too (see "
        "Rate limits); the rest wait (on disk beyond 1,000 per endpoint)")},
    {EP("breaker", CFG_OBJECT, NULL, CFG_FALSE_OFF | SY_CFG_GIVEN, breaker,
        "the circuit breaker, an object with the keys of `endpoints.ID.breaker` (absent: "
        "their defaults); `false`: none"),
     .given_offset = offsetof(sy_endpoint_conf, breaker_given)},
    {EP("disable_after", SY_CFG_DURATION, "5d", CFG_NULL_OFF | CFG_FALSE_OFF,
        gate.disable_after_ms,
        "failing (retryable failures, no success) this long disables the endpoint: an "
        "`endpoint.disabled` system event, its pending deliveries become dead letters, new "
        "events skip it. It stays disabled across reloads and (with a spool) restarts until "
        "`switchyard endpoint enable ID` or the admin API enables it; `null` or `false`: never")},
    {EP("transform", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY, transform,
        "a Lua script defining `transform(event)` that reshapes, routes or drops each "
        "delivery (docs/TRANSFORMS.md); a relative path is taken from the daemon's working "
        "directory, like `spool`; reloads read it again")},
    {EP("ordering", SY_CFG_STRING, NULL, CFG_NULL_OFF, ordering,
        "`\"endpoint\"`: deliveries reach the endpoint one at a time, in the order ingress "
        "accepted their events; `\"key\"`: the same per value of `ordering_key`, keys in "
        "parallel (see Ordering); `null`: no order, up to `concurrency` at once"),
     .choices = orderings},
    {EP("ordering_key", SY_CFG_STRING, NULL, CFG_NONEMPTY, ordering_key,
        "with `\"ordering\": \"key\"`: the field whose value is the key, a dotted path like "
        "`data.job_id`; events without it share one key")},
    {EP("batch", CFG_OBJECT, NULL, CFG_NULL_OFF, batch,
        "send deliveries in batches, an object with the keys of `endpoints.ID.batch`; only "
        "for sinks that take it (webhook: one POST with a JSON array, see docs/WEBHOOKS.md); "
        "`null`: one delivery per request")},
    {EP("description", SY_CFG_STRING, NULL, CFG_NULL_OFF | CFG_NONEMPTY, description,
        "free text")},
};
const sy_config_table config_endpoint_table = SY_CONFIG_TABLE(endpoint_keys, sy_endpoint_conf);

#define BREAKER(name, type, def, flags, member, help) \
    SY_KEY(name, type, def, flags, config_breaker_keys, member, help)

static const sy_config_key breaker_keys[] = {
    {BREAKER("failures", SY_CFG_INT, "10", SY_CFG_RANGE, failures,
             "attempts in a row that the sink asked to retry before the breaker opens "
             "(permanent failures are answers: they do not count)"),
     RANGE(1, 1000000)},
    {BREAKER("probe", SY_CFG_DURATION, "5s", SY_CFG_RANGE, probe,
             "while open, deliveries are held and one probe goes through after this"),
     RANGE(1, INT64_MAX)},
    {BREAKER("probe_max", SY_CFG_DURATION, "5m", 0, probe_max,
             "the wait doubles up to this (at least `probe`) while probes fail; a successful "
             "probe releases everything")},
};
const sy_config_table config_breaker_table = SY_CONFIG_TABLE(breaker_keys, config_breaker_keys);

#define BATCH(name, type, def, flags, member, help) \
    SY_KEY(name, type, def, flags, config_batch_keys, member, help)

static const sy_config_key batch_keys[] = {
    {BATCH("max", SY_CFG_INT, "100", SY_CFG_RANGE, max,
           "deliveries in one batch at most"),
     RANGE(1, CONFIG_BATCH_MAX)},
    {BATCH("linger", SY_CFG_DURATION, "200ms", SY_CFG_RANGE, linger_ms,
           "how long the first ready delivery may wait for others to fill a batch; `0`: send "
           "what is ready at once"),
     RANGE(0, CONFIG_BATCH_LINGER_MAX_MS)},
};
const sy_config_table config_batch_table = SY_CONFIG_TABLE(batch_keys, config_batch_keys);

const config_section config_sections[] = {
    {"core", "{\"core\": {...}}", &config_core_table},
    {"core.ingress[]", "{\"core\": {\"ingress\": [{...}, ...]}}", &config_ingress_table},
    {"core.admin", "{\"core\": {\"admin\": {...}}}", &config_admin_table},
    {"core.store", "{\"core\": {\"store\": {...}}}", &config_store_table},
    {"core.cluster", "{\"core\": {\"cluster\": {...}}}", &config_cluster_table},
    {"sinks.NAME", "{\"sinks\": {\"NAME\": {...}}}, beside the plugin's instance keys",
     &config_sink_table},
    {"endpoints.ID", "{\"endpoints\": {\"ID\": {...}}}, beside the plugin's endpoint keys",
     &config_endpoint_table},
    {"endpoints.ID.breaker", "{\"endpoints\": {\"ID\": {\"breaker\": {...}}}}",
     &config_breaker_table},
    {"endpoints.ID.batch", "{\"endpoints\": {\"ID\": {\"batch\": {...}}}}",
     &config_batch_table},
};
const size_t config_nsections = sizeof config_sections / sizeof config_sections[0];

const config_section *config_section_find(const char *path)
{
    for (size_t i = 0; i < config_nsections; i++)
        if (!strcmp(config_sections[i].path, path))
            return &config_sections[i];
    return NULL;
}
