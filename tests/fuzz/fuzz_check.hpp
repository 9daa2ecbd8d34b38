// tests/fuzz/fuzz_check.hpp -- FUZZ_CHECK(cond): an invariant of a fuzz target. When it fails it
// prints the target's name (define CLUSTERNET_FUZZ_NAME before including), the condition and the
// line, and aborts, so libFuzzer saves the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef CLUSTERNET_FUZZ_NAME
#define CLUSTERNET_FUZZ_NAME "fuzz"
#endif

#define FUZZ_CHECK(cond)                                                                              \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            std::fprintf(stderr, "%s: invariant failed: %s (line %d)\n", CLUSTERNET_FUZZ_NAME, #cond, __LINE__); \
            std::abort();                                                                             \
        }                                                                                             \
    } while (0)
