/*
 * no_symbol.c - ABI probe: a loadable shared object that exports no
 * `switchyard_sink`. The loader must refuse it with a message naming the
 * missing symbol.
 */
#include "switchyard/sink.h"

SY_EXPORT int not_a_sink(int x);

SY_EXPORT int not_a_sink(int x)
{
    return x + 1;
}
