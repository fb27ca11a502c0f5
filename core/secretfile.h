/*
 * secretfile.h - secrets kept out of the config files.
 *
 * For every key a table flags SY_CFG_SECRET, named x, of type string or
 * array of strings, the config may give x_file instead: the path of a file
 * holding the secret. For a string, the secret is the file's first line
 * without its line end ("\n" or "\r\n"); for an array of strings, every
 * non-empty line is one element. Giving both x and x_file is an error, and
 * no message ever shows what the file holds. A file every user may read
 * works but is logged as a warning; group-readable (0640, root:switchyard)
 * is the intended layout.
 */
#ifndef SY_SECRETFILE_H
#define SY_SECRETFILE_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "cfgtable.h"
#include "switchyard/sink.h"

/* Larger than any key, token or password; a bigger file is a wrong path. */
#define SECRETFILE_MAX 65536

/*
 * 1 when `name` is the x_file variant of a secret key of t (copied into
 * *out when out is not NULL), else 0. A table's own key of that name wins
 * (it is not a variant then).
 */
int secretfile_key(const sy_config_table *t, const char *name, sy_config_key *out);

/* 1 when the key k of t has an x_file variant, else 0. */
int secretfile_variant(const sy_config_table *t, const sy_config_key *k);

/*
 * For the secret key k of table t: when obj gives k->name + "_file", reads
 * the file into a JSON value of k's type, kept in the arena, and points *v
 * at it. Leaves *v alone otherwise, and also when the file does not exist
 * and k has CFG_CREATED (the caller creates it). Returns NULL, or an error message
 * (in msg, or a fixed text) with file_key (keylen bytes) set to
 * "<name>_file", the key to name in the report.
 */
const char *secretfile_value(const sy_config_table *t, const sy_config_key *k,
                             const cJSON *obj, cfg_arena *arena, const cJSON **v,
                             char *file_key, size_t keylen, char *msg, size_t msglen);

/*
 * Reads the secret file at path whole: a regular file of at most
 * SECRETFILE_MAX bytes without NUL bytes. Returns a malloc'd, NUL-terminated
 * copy (free it with secretfile_free), or NULL with the reason in msg and
 * errno set (ENOENT when the file does not exist).
 */
char *secretfile_read(const char *path, char *msg, size_t msglen);

/* Cuts text after its first line (without "\n" or "\r\n"). Returns text. */
char *secretfile_first_line(char *text);

/* Wipes and frees what secretfile_read returned. */
void secretfile_free(char *text);

#endif
