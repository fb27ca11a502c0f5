/*
 * sqs_creds.h - AWS credentials for the sqs sink: from config, a shared
 * credentials file, or the environment; never logged.
 */
#ifndef SY_SQS_CREDS_H
#define SY_SQS_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct sqs_creds {
    char *key_id;
    char *secret;
    char *token;     /* NULL for long-term keys */
    char source[192]; /* "config", "environment", "file /path [profile]": for logs */
    /* Set when the credentials came from a file, so a change can be picked up. */
    char *file;
    char *profile;
    struct timespec mtime;
} sqs_creds;

/* Where to look; strings may be NULL. */
typedef struct sqs_creds_conf {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *credentials_file;
    const char *profile;
} sqs_creds_conf;

/*
 * Finds credentials, first match wins: the config keys (both the key id
 * and the secret), credentials_file, the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then AWS_SHARED_CREDENTIALS_FILE
 * or ~/.aws/credentials. The profile is the config's, else AWS_PROFILE,
 * else "default". Returns 0, or -1 with the reason in err (never a secret).
 */
int sqs_creds_load(const sqs_creds_conf *c, sqs_creds *out, char *err, size_t errlen);

/*
 * Reads one profile of an AWS shared credentials file (INI; '#' and ';'
 * comments; keys aws_access_key_id, aws_secret_access_key,
 * aws_session_token) into *out, which is overwritten, not freed. Returns
 * 0, or -1 with err (then *out is untouched).
 */
int sqs_creds_from_file(const char *path, const char *profile, sqs_creds *out, char *err,
                        size_t errlen);

/*
 * When the credentials came from a file that changed since it was read,
 * reads it again. Returns 1 when the credentials changed, 0 when not, -1
 * when the new file is unusable (the old credentials stay; err says why).
 */
int sqs_creds_refresh(sqs_creds *c, char *err, size_t errlen);

/* Frees and wipes the secrets. */
void sqs_creds_free(sqs_creds *c);

#endif
