/*
 * status.h - `switchyard status`: a table of endpoints from the admin API.
 */
#ifndef SY_STATUS_H
#define SY_STATUS_H

/* Runs the command with argv[0] = "status". Returns the exit code. */
int status_main(int argc, char **argv);

#endif
