/*
 * host.h - the sy_host services table the core hands to plugins.
 */
#ifndef SY_HOST_H
#define SY_HOST_H

#include "switchyard/sink.h"

/* The one host table; every entry is callable from any thread. */
extern const sy_host g_host;

#endif
