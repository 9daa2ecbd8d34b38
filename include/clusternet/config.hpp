// clusternet/config.hpp -- configuration macros shared by every header.
//
// Every macro here respects a definition the user made before including clusternet, so a
// project can, for instance, route CLUSTERNET_ASSERT into its own assertion handler.
#pragma once

#include <cassert>

#ifndef CLUSTERNET_ASSERT
#define CLUSTERNET_ASSERT(cond) assert(cond)
#endif

#if defined(__GNUC__) || defined(__clang__)
#ifndef CLUSTERNET_ALWAYS_INLINE
#define CLUSTERNET_ALWAYS_INLINE inline __attribute__((always_inline))
#endif
// The attribute alone, for templates and constexpr functions on the per-packet path.
#define CLUSTERNET_FORCE_INLINE __attribute__((always_inline))
// Rare paths kept out of line so that the common path around them stays small enough to inline.
#define CLUSTERNET_COLD __attribute__((noinline, cold))
#define CLUSTERNET_LIKELY(x) __builtin_expect(!!(x), 1)
#define CLUSTERNET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#ifndef CLUSTERNET_ALWAYS_INLINE
#define CLUSTERNET_ALWAYS_INLINE inline
#endif
#define CLUSTERNET_FORCE_INLINE
#define CLUSTERNET_COLD
#define CLUSTERNET_LIKELY(x) (x)
#define CLUSTERNET_UNLIKELY(x) (x)
#endif

// Runtime dispatch to AVX2 code paths on x86-64 (GCC and Clang). Define CLUSTERNET_NO_SIMD to
// force the portable scalar paths everywhere (the tests do this in one build to cover them).
#if !defined(CLUSTERNET_NO_SIMD) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLUSTERNET_X86_SIMD 1
#else
#define CLUSTERNET_X86_SIMD 0
#endif

namespace clusternet::detail {
/// Asks the CPU to fetch the cache line at `p` (a hint: `p` need not be valid). Written as a
/// volatile asm on x86-64 because GCC 12 deletes a loop whose only effect is __builtin_prefetch
/// (it did so to the session table's second batch stage, which then cost 102 ns a key instead
/// of about 50: see docs/session-table.md).
inline void prefetch(const void* p) noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}
}  // namespace clusternet::detail

#define CLUSTERNET_VERSION_MAJOR 0
#define CLUSTERNET_VERSION_MINOR 1
#define CLUSTERNET_VERSION_PATCH 0
