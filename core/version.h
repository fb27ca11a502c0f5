/*
 * version.h - what this build is. The version comes from the VERSION file
 * (SY_VERSION, through the Makefile), the commit from git at build time;
 * `switchyard version`, switchyard_build_info and the ready log line all
 * say the same.
 */
#ifndef SY_VERSION_H
#define SY_VERSION_H

/*
 * The git commit the binary was built from (12 hex digits, "-dirty" when
 * the tree had uncommitted changes), or "unknown" when built outside a git
 * checkout. Only version.c sees SY_COMMIT, so a new commit recompiles one
 * file.
 */
extern const char sy_build_commit[];

#endif
