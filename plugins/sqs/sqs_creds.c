/*
 * sqs_creds.c - AWS credentials from config, files and the environment.
 *
 * The order follows the AWS SDKs' default chain minus the parts that need
 * the network (instance metadata, SSO): explicit configuration first, then
 * what the process environment says, then the user's shared file. Files
 * are re-read when they change, so a sidecar that rotates temporary
 * credentials into one keeps the sink working without a restart.
 */
#include "sqs_creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void wipe_free(char *s)
{
    if (!s)
        return;
    memset(s, 0, strlen(s));
    free(s);
}

void sqs_creds_free(sqs_creds *c)
{
    wipe_free(c->key_id);
    wipe_free(c->secret);
    wipe_free(c->token);
    free(c->file);
    free(c->profile);
    memset(c, 0, sizeof *c);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int set(char **slot, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return -1;
    wipe_free(*slot);
    *slot = d;
    return 0;
}

int sqs_creds_from_file(const char *path, const char *profile, sqs_creds *out, char *err,
                        size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read credentials file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        memset(&st, 0, sizeof st);
    sqs_creds c;
    memset(&c, 0, sizeof c);
    char line[4096];
    int in_profile = 0, found = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end)
                *end = '\0';
            in_profile = strcmp(trim(s + 1), profile) == 0;
            found |= in_profile;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in_profile || !eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        if (strcmp(k, "aws_access_key_id") == 0)
            rc = set(&c.key_id, v);
        else if (strcmp(k, "aws_secret_access_key") == 0)
            rc = set(&c.secret, v);
        else if (strcmp(k, "aws_session_token") == 0)
            rc = set(&c.token, v);
    }
    memset(line, 0, sizeof line);
    fclose(f);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!found) {
        snprintf(err, errlen, "credentials file %s has no [%s] profile", path, profile);
        goto fail;
    }
    if (!c.key_id || !*c.key_id || !c.secret || !*c.secret) {
        snprintf(err, errlen,
                 "profile [%s] of %s lacks aws_access_key_id or aws_secret_access_key", profile,
                 path);
        goto fail;
    }
    if (!(c.file = strdup(path)) || !(c.profile = strdup(profile))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c.mtime = st.st_mtim;
    snprintf(c.source, sizeof c.source, "file %.150s [%.32s]", path, profile);
    *out = c;
    return 0;
fail:
    sqs_creds_free(&c);
    return -1;
}

static int from_values(sqs_creds *out, const char *id, const char *secret, const char *token,
                       const char *source, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (set(&out->key_id, id) || set(&out->secret, secret) ||
        (token && *token && set(&out->token, token))) {
        sqs_creds_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(out->source, sizeof out->source, "%s", source);
    return 0;
}

int sqs_creds_load(const sqs_creds_conf *c, sqs_creds *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *profile = c->profile;
    if (!profile || !*profile)
        profile = getenv("AWS_PROFILE");
    if (!profile || !*profile)
        profile = "default";

    if (c->access_key_id || c->secret_access_key) {
        if (!c->access_key_id || !*c->access_key_id || !c->secret_access_key ||
            !*c->secret_access_key) {
            snprintf(err, errlen, "access_key_id and secret_access_key go together");
            return -1;
        }
        return from_values(out, c->access_key_id, c->secret_access_key, c->session_token,
                           "config", err, errlen);
    }
    if (c->session_token) {
        snprintf(err, errlen, "session_token needs access_key_id and secret_access_key");
        return -1;
    }
    if (c->credentials_file)
        return sqs_creds_from_file(c->credentials_file, profile, out, err, errlen);
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (id && *id && secret && *secret)
        return from_values(out, id, secret, getenv("AWS_SESSION_TOKEN"), "environment", err,
                           errlen);
    const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
    char path[4096];
    if (!file || !*file) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            snprintf(err, errlen, "no credentials: none in config, AWS_ACCESS_KEY_ID / "
                     "AWS_SECRET_ACCESS_KEY unset, and no HOME for ~/.aws/credentials");
            return -1;
        }
        snprintf(path, sizeof path, "%s/.aws/credentials", home);
        file = path;
    }
    if (sqs_creds_from_file(file, profile, out, err, errlen) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "no credentials in config or environment, and %s", why);
        return -1;
    }
    return 0;
}

int sqs_creds_refresh(sqs_creds *c, char *err, size_t errlen)
{
    struct stat st;
    if (!c->file || stat(c->file, &st) != 0)
        return 0; /* a file being replaced may be briefly missing: keep what we have */
    if (st.st_mtim.tv_sec == c->mtime.tv_sec && st.st_mtim.tv_nsec == c->mtime.tv_nsec)
        return 0;
    sqs_creds fresh;
    memset(&fresh, 0, sizeof fresh);
    char *file = strdup(c->file), *profile = strdup(c->profile ? c->profile : "default");
    int rc = -1;
    if (file && profile && sqs_creds_from_file(file, profile, &fresh, err, errlen) == 0) {
        sqs_creds_free(c);
        *c = fresh;
        rc = 1;
    } else {
        if (!file || !profile)
            snprintf(err, errlen, "out of memory");
        /* Reported once per change of the file, not on every request. */
        c->mtime = st.st_mtim;
    }
    free(file);
    free(profile);
    return rc;
}
