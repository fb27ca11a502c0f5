/*
 * publish.h - the `switchyard publish` command.
 */
#ifndef SY_PUBLISH_H
#define SY_PUBLISH_H

/* Runs the command with argv[0] = "publish". Returns the exit code. */
int publish_main(int argc, char **argv);

#endif
