/*
 * cli.h - what the command-line tools share (defined in cli/main.c).
 */
#ifndef SY_CLI_H
#define SY_CLI_H

/*
 * After getopt_long: words left after the options (argv[optind] on) are a
 * mistake, not something to ignore. Says so on stderr, naming the command
 * and its --help, and returns 1; returns 0 when there are none.
 */
int cli_extra_args(const char *cmd, int argc, char **argv);

#endif
