/*
 * fuzz.h - what every libFuzzer target here shares: the entry points
 * libFuzzer calls, and CHECK, which stops the run on a broken property
 * (__builtin_trap, so libFuzzer keeps the input as a crash).
 */
#ifndef SY_FUZZ_H
#define SY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#endif
