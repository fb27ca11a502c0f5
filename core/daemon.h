/*
 * daemon.h - `switchyard run` and `switchyard check`: load config, start
 * the pipeline, handle signals, drain on exit.
 */
#ifndef SY_DAEMON_H
#define SY_DAEMON_H

typedef struct daemon_opts {
    const char *conf_dir;
    const char *log_level;  /* NULL: from config */
    const char *log_format; /* NULL: from config */
} daemon_opts;

/* Runs until SIGTERM/SIGINT. Returns the exit code (0 after a clean drain). */
int daemon_run(const daemon_opts *o);

/* Validates the config, plugins included, and prints the routing table. */
int daemon_check(const daemon_opts *o);

#endif
