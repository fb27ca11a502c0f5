/*
 * endpoint.h - `switchyard endpoint`: acts on one endpoint of the running
 * daemon through its admin API.
 */
#ifndef SY_ENDPOINT_CMD_H
#define SY_ENDPOINT_CMD_H

/* Runs the command with argv[0] = "endpoint". Returns the exit code. */
int endpoint_main(int argc, char **argv);

#endif
