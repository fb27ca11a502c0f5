/*
 * endpoints.h - `switchyard endpoints`: the running daemon's endpoints
 * listed, created, changed, deleted and rotated through its admin API.
 */
#ifndef SY_ENDPOINTS_CMD_H
#define SY_ENDPOINTS_CMD_H

/* Runs the command with argv[0] = "endpoints". Returns the exit code. */
int endpoints_main(int argc, char **argv);

#endif
