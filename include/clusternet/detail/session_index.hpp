// clusternet/detail/session_index.hpp -- the hash index of the session table.
//
// Design note. The sessions live in a slab and never move; this index maps a key's hash to
// slab positions. It is a bucketized cuckoo hash (Pagh and Rodler's cuckoo hashing with
// buckets of several slots, as in MemC3 and DPDK's rte_hash): every key has two candidate
// buckets and sits in one of them, so a lookup reads at most two 64-byte buckets, and the index
// can be filled to over 90 % without chains or tombstones -- what a table of fixed capacity that
// churns forever needs.
//
//   one bucket, 64 bytes, one cache line:
//   +----+----+-- ... --+----+-----------+------------+------------+-- ... --+------------+
//   |tag0|tag1|         |tagB| displaced | position 0 | position 1 |         | position B |
//   +----+----+-- ... --+----+-----------+------------+------------+-- ... --+------------+
//    12 one-byte tags         u32         12 u32 slab positions (bit 31: "reply key")
//    (0 = empty slot)
//
// `tag` is 8 bits of the hash, never 0, so a lookup compares the key of about one slot in 255
// that are not its own. `displaced` counts the keys whose first bucket is this one but that live
// in their second; when it is 0 a miss needs to read one bucket only. An insertion into two
// full buckets moves keys to their other bucket along the shortest path a breadth-first search
// finds (at most `max_path` moves), as in MemC3.
//
// Partial-key cuckoo hashing (MemC3, Fan et al., NSDI 2013; the cuckoo filter, CoNEXT 2014):
// a key's second bucket is a function of its first and its tag only, alt(b, tag) = (c(tag) - b)
// mod buckets, which is its own inverse. So the path search and the moves compute where an
// entry may go from the bucket and the tag alone, without reading the session it points to (a
// cache miss per slot looked at: what made an insertion into a full region cost 600 ns at 10 M
// sessions). Bit 30 of a stored position says that the entry sits in its second bucket, for
// the `displaced` count; bit 31 is the caller's (the session table's "reply key").
#pragma once

#include <clusternet/config.hpp>
#include <clusternet/detail/big_buffer.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace clusternet::detail {

struct alignas(64) index_bucket {
    static constexpr std::size_t slots = 12;
    std::array<std::uint8_t, slots> tags{};
    std::uint32_t displaced = 0;
    std::array<std::uint32_t, slots> positions{};
};
static_assert(sizeof(index_bucket) == 64);

/// The hash split into what the index needs.
struct index_hash {
    std::uint32_t first = 0, second = 0;  ///< bucket numbers
    std::uint8_t tag = 1;
};

class session_index {
public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFU;
    static constexpr std::uint32_t reply_bit = 0x80000000U;
    /// The index's own bit in a stored position: the entry sits in its second bucket. Positions
    /// the caller stores must be below it (with reply_bit or not).
    static constexpr std::uint32_t second_bit = 0x40000000U;
    static constexpr std::size_t max_path = 4;       ///< longest chain of moves for one insertion
    static constexpr std::size_t max_search = 256;   ///< buckets the path search may visit

    session_index() = default;

    /// An index of `buckets` buckets (at least 2), in huge pages when it is large enough
    /// (detail/big_buffer.hpp). Throws std::bad_alloc.
    explicit session_index(std::uint32_t buckets)
        : nb_(buckets < 2 ? 2 : buckets), buf_(sizeof(index_bucket) * nb_), mem_(static_cast<index_bucket*>(buf_.data())) {
        for (std::uint32_t i = 0; i < nb_; ++i) new (&mem_[i]) index_bucket{};
    }

    [[nodiscard]] std::uint32_t bucket_count() const noexcept { return nb_; }
    /// Bytes the index holds (huge-page slack included).
    [[nodiscard]] std::size_t bytes() const noexcept { return buf_.bytes(); }

    /// Splits a 64-bit key hash: the first bucket by Lemire's multiply-shift range reduction
    /// (no power-of-two size needed), a tag from the high bits, the second bucket from both.
    [[nodiscard]] index_hash split(std::uint64_t h) const noexcept {
        index_hash r;
        r.first = reduce(static_cast<std::uint32_t>(h));
        r.tag = static_cast<std::uint8_t>(h >> 56);
        r.tag = static_cast<std::uint8_t>(r.tag + (r.tag == 0));
        r.second = alt(r.first, r.tag);
        return r;
    }

    /// The other bucket of an entry with `tag` in bucket `b` (either of its two). When it is
    /// `b` itself (for one bucket in about nb_ / 2 per tag) the key has one bucket only.
    [[nodiscard]] std::uint32_t alt(std::uint32_t b, std::uint8_t tag) const noexcept {
        // c(tag): the tag spread over the buckets by a multiplicative hash (Knuth's constant).
        const std::uint32_t c = reduce(static_cast<std::uint32_t>(tag) * 0x9E3779B1U);
        return c >= b ? c - b : c + nb_ - b;  // (c - b) mod nb_, with c, b < nb_
    }

    /// Hints the CPU to fetch the key's two buckets (for batches of lookups).
    void prefetch(const index_hash& ih) const noexcept {
        clusternet::detail::prefetch(&mem_[ih.first]);
        // The second bucket too: in a table that churns, a third of the keys live there, and
        // fetching it only once the first bucket says so would serialise the two misses.
        clusternet::detail::prefetch(&mem_[ih.second]);
    }

    /// Hints the CPU to fetch the key's second bucket: what a lone lookup does before it reads
    /// the first. In a table that has churned, a third of the keys live in their second bucket,
    /// and fetching it only once the first has said so makes their lookups three misses long
    /// instead of two.
    void prefetch_second(const index_hash& ih) const noexcept { clusternet::detail::prefetch(&mem_[ih.second]); }

    /// The second stage of a batched lookup: reads the key's buckets (fetched by prefetch()) and
    /// calls `fetch(position)` for every slot whose tag matches, so the caller can prefetch
    /// those slab entries (the second bucket only when keys have been displaced to it).
    template <class Fetch>
    void prefetch_positions(const index_hash& ih, Fetch&& fetch) const noexcept {
        const index_bucket& a = mem_[ih.first];
        for (std::uint32_t m = match_tags(a, ih.tag); m != 0; m &= m - 1)
            fetch(a.positions[static_cast<std::size_t>(__builtin_ctz(m))] & ~second_bit);
        if (a.displaced == 0) return;
        const index_bucket& b = mem_[ih.second];
        for (std::uint32_t m = match_tags(b, ih.tag); m != 0; m &= m - 1)
            fetch(b.positions[static_cast<std::size_t>(__builtin_ctz(m))] & ~second_bit);
    }

    /// The position stored for a key, or npos. `match(position)` says whether the slab entry
    /// at that position (with the reply bit) holds the key.
    template <class Match>
    [[nodiscard]] CLUSTERNET_FORCE_INLINE std::uint32_t find(const index_hash& ih, Match&& match) const noexcept {
        const index_bucket& a = mem_[ih.first];
        for (std::uint32_t m = match_tags(a, ih.tag); m != 0; m &= m - 1) {
            const std::uint32_t pos = a.positions[static_cast<std::size_t>(__builtin_ctz(m))] & ~second_bit;
            if (match(pos)) return pos;
        }
        if (a.displaced == 0) return npos;
        const index_bucket& b = mem_[ih.second];
        for (std::uint32_t m = match_tags(b, ih.tag); m != 0; m &= m - 1) {
            const std::uint32_t pos = b.positions[static_cast<std::size_t>(__builtin_ctz(m))] & ~second_bit;
            if (match(pos)) return pos;
        }
        return npos;
    }

    /// Inserts `pos` (below second_bit, reply bit allowed) for a key not yet in the index.
    /// False when no slot can be made free within max_path moves (the index is too full);
    /// nothing changes then.
    bool insert(const index_hash& ih, std::uint32_t pos) noexcept {
        if (place(ih.first, ih.tag, pos)) return true;
        if (ih.second != ih.first && place(ih.second, ih.tag, pos | second_bit)) {
            ++mem_[ih.first].displaced;
            return true;
        }
        return insert_by_moving(ih, pos);
    }

    /// Removes the entry for `pos` (as inserted, reply bit included). False if it is not there.
    bool erase(const index_hash& ih, std::uint32_t pos) noexcept {
        if (clear(ih.first, ih.tag, pos)) return true;
        if (ih.second != ih.first && clear(ih.second, ih.tag, pos | second_bit)) {
            --mem_[ih.first].displaced;
            return true;
        }
        return false;
    }

    /// Replaces the position stored for an entry (when its slab entry moves).
    bool repoint(const index_hash& ih, std::uint32_t from, std::uint32_t to) noexcept {
        for (std::uint32_t b : {ih.first, ih.second}) {
            index_bucket& k = mem_[b];
            for (std::size_t s = 0; s < index_bucket::slots; ++s) {
                if (k.tags[s] == ih.tag && (k.positions[s] & ~second_bit) == from) {
                    k.positions[s] = to | (k.positions[s] & second_bit);
                    return true;
                }
            }
        }
        return false;
    }

    /// For tests: calls `split_of(position)` (the split hash of the key an entry points to)
    /// for every entry and checks that the entry sits in that key's first bucket, or in its
    /// second with second_bit set, under its tag; and that every bucket's `displaced` is the
    /// number of entries it has sent to their second bucket. Returns the number of entries,
    /// or npos on the first inconsistency. O(buckets).
    template <class SplitOf>
    [[nodiscard]] std::size_t audit(SplitOf&& split_of) const {
        std::unique_ptr<std::uint32_t[]> displaced(new std::uint32_t[nb_]());
        std::size_t entries = 0;
        for (std::uint32_t b = 0; b < nb_; ++b) {
            for (std::size_t s = 0; s < index_bucket::slots; ++s) {
                if (mem_[b].tags[s] == 0) continue;
                ++entries;
                const std::uint32_t stored = mem_[b].positions[s];
                const index_hash ih = split_of(stored & ~second_bit);
                const bool second = (stored & second_bit) != 0;
                if (ih.tag != mem_[b].tags[s] || (second ? ih.second : ih.first) != b || alt(b, ih.tag) != (second ? ih.first : ih.second))
                    return npos;
                if (second) ++displaced[ih.first];
            }
        }
        for (std::uint32_t b = 0; b < nb_; ++b)
            if (displaced[b] != mem_[b].displaced) return npos;
        return entries;
    }

private:
    [[nodiscard]] std::uint32_t reduce(std::uint32_t x) const noexcept {
        return static_cast<std::uint32_t>((std::uint64_t{x} * nb_) >> 32);
    }

    [[nodiscard]] static CLUSTERNET_FORCE_INLINE std::uint32_t match_tags(const index_bucket& b, std::uint8_t tag) noexcept {
#if defined(__SSE2__)
        const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(&b));
        const __m128i t = _mm_set1_epi8(static_cast<char>(tag));
        return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, t))) & 0xFFFU;
#else
        std::uint32_t m = 0;
        for (std::size_t s = 0; s < index_bucket::slots; ++s) m |= static_cast<std::uint32_t>(b.tags[s] == tag) << s;
        return m;
#endif
    }

    bool place(std::uint32_t bucket, std::uint8_t tag, std::uint32_t pos) noexcept {
        index_bucket& b = mem_[bucket];
        const std::uint32_t empty = match_tags(b, 0);
        if (empty == 0) return false;
        const auto s = static_cast<std::size_t>(__builtin_ctz(empty));
        b.tags[s] = tag;
        b.positions[s] = pos;
        return true;
    }

    bool clear(std::uint32_t bucket, std::uint8_t tag, std::uint32_t pos) noexcept {
        index_bucket& b = mem_[bucket];
        for (std::uint32_t m = match_tags(b, tag); m != 0; m &= m - 1) {
            const auto s = static_cast<std::size_t>(__builtin_ctz(m));
            if (b.positions[s] == pos) {
                b.tags[s] = 0;
                return true;
            }
        }
        return false;
    }

    /// Breadth-first search for the shortest chain of moves that frees a slot in one of the
    /// key's buckets, then the moves, last first (MemC3's cuckoo path search). It reads buckets
    /// only: where an entry may move follows from its bucket and tag (alt()).
    bool insert_by_moving(const index_hash& ih, std::uint32_t pos) noexcept {
        struct node {
            std::uint32_t bucket;
            std::uint16_t parent;  // index into the queue, 0xFFFF for a root
            std::uint8_t slot;     // the slot of the parent's bucket whose key moves here
            std::uint8_t depth;
        };
        std::array<node, max_search> q;
        std::size_t head = 0, tail = 0;
        q[tail++] = {ih.first, 0xFFFF, 0, 0};
        if (ih.second != ih.first) q[tail++] = {ih.second, 0xFFFF, 0, 0};
        while (head < tail) {
            const std::size_t ni = head++;
            const node n = q[ni];
            if (n.depth > 0 && match_tags(mem_[n.bucket], 0) != 0) {
                // Found room: move each key one step, from the end of the chain back.
                std::size_t cur = ni;
                while (q[cur].parent != 0xFFFF) {
                    const node& c = q[cur];
                    const node& p = q[c.parent];
                    index_bucket& from = mem_[p.bucket];
                    const std::uint8_t tag = from.tags[c.slot];
                    const std::uint32_t stored = from.positions[c.slot];
                    const bool was_second = (stored & second_bit) != 0;
                    // first -> second: its first bucket (the one it leaves) counts one more
                    // displaced key; second -> first: its first (the one it enters) one fewer.
                    if (!place(c.bucket, tag, was_second ? stored & ~second_bit : stored | second_bit)) return false;  // cannot happen: no bucket repeats on a path
                    from.tags[c.slot] = 0;
                    if (was_second) --mem_[c.bucket].displaced;
                    else ++mem_[p.bucket].displaced;
                    cur = c.parent;
                }
                const std::uint32_t root = q[cur].bucket;
                const bool second = root != ih.first;
                if (!place(root, ih.tag, second ? pos | second_bit : pos)) return false;
                if (second) ++mem_[ih.first].displaced;
                return true;
            }
            if (n.depth == max_path) continue;
            const index_bucket& b = mem_[n.bucket];
            for (std::size_t s = 0; s < index_bucket::slots && tail < max_search; ++s) {
                const std::uint32_t other = alt(n.bucket, b.tags[s]);
                // A key with one bucket cannot move; and a bucket may appear once on a path: a
                // second visit would move a key that an earlier move of the path has replaced.
                bool on_path = other == n.bucket || other == ih.first || other == ih.second;
                for (std::size_t a = ni; !on_path && a != 0xFFFF; a = q[a].parent) on_path = q[a].bucket == other;
                if (on_path) continue;
                q[tail++] = {other, static_cast<std::uint16_t>(ni), static_cast<std::uint8_t>(s),
                             static_cast<std::uint8_t>(n.depth + 1)};
            }
        }
        return false;
    }

    std::uint32_t nb_ = 0;
    big_buffer buf_;
    index_bucket* mem_ = nullptr;  // buf_'s memory (index_bucket is trivially destructible)
};

}  // namespace clusternet::detail
