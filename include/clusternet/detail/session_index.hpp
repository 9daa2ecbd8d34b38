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

    /// Splits a 64-bit key hash: two buckets by Lemire's multiply-shift range reduction (no
    /// power-of-two size needed) and a tag from a remix of all 64 bits.
    [[nodiscard]] index_hash split(std::uint64_t h) const noexcept {
        index_hash r;
        r.first = reduce(static_cast<std::uint32_t>(h));
        r.second = reduce(static_cast<std::uint32_t>(h >> 32));
        if (r.second == r.first) r.second = r.first + 1 == nb_ ? 0 : r.first + 1;
        const std::uint32_t m = (static_cast<std::uint32_t>(h) ^ static_cast<std::uint32_t>(h >> 32)) * 0x9E3779B1U;
        r.tag = static_cast<std::uint8_t>(m >> 24);
        r.tag = static_cast<std::uint8_t>(r.tag + (r.tag == 0));
        return r;
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
            fetch(a.positions[static_cast<std::size_t>(__builtin_ctz(m))]);
        if (a.displaced == 0) return;
        const index_bucket& b = mem_[ih.second];
        for (std::uint32_t m = match_tags(b, ih.tag); m != 0; m &= m - 1)
            fetch(b.positions[static_cast<std::size_t>(__builtin_ctz(m))]);
    }

    /// The position stored for a key, or npos. `match(position)` says whether the slab entry
    /// at that position (with the reply bit) holds the key.
    template <class Match>
    [[nodiscard]] CLUSTERNET_FORCE_INLINE std::uint32_t find(const index_hash& ih, Match&& match) const noexcept {
        const index_bucket& a = mem_[ih.first];
        for (std::uint32_t m = match_tags(a, ih.tag); m != 0; m &= m - 1) {
            const std::uint32_t pos = a.positions[static_cast<std::size_t>(__builtin_ctz(m))];
            if (match(pos)) return pos;
        }
        if (a.displaced == 0) return npos;
        const index_bucket& b = mem_[ih.second];
        for (std::uint32_t m = match_tags(b, ih.tag); m != 0; m &= m - 1) {
            const std::uint32_t pos = b.positions[static_cast<std::size_t>(__builtin_ctz(m))];
            if (match(pos)) return pos;
        }
        return npos;
    }

    /// Inserts `pos` for a key not yet in the index. `hash_of(position)` returns the split hash
    /// of the key stored at a position (to move it). False when no slot can be made free within
    /// max_path moves (the index is too full); nothing changes then.
    template <class HashOf>
    bool insert(const index_hash& ih, std::uint32_t pos, HashOf&& hash_of) noexcept {
        if (place(ih.first, ih.tag, pos)) return true;
        if (place(ih.second, ih.tag, pos)) {
            ++mem_[ih.first].displaced;
            return true;
        }
        return insert_by_moving(ih, pos, hash_of);
    }

    /// Removes the entry for `pos` (as inserted, reply bit included). False if it is not there.
    bool erase(const index_hash& ih, std::uint32_t pos) noexcept {
        if (clear(ih.first, ih.tag, pos)) return true;
        if (clear(ih.second, ih.tag, pos)) {
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
                if (k.tags[s] == ih.tag && k.positions[s] == from) {
                    k.positions[s] = to;
                    return true;
                }
            }
        }
        return false;
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
    /// key's buckets, then the moves, last first (MemC3's cuckoo path search).
    template <class HashOf>
    bool insert_by_moving(const index_hash& ih, std::uint32_t pos, HashOf& hash_of) noexcept {
        struct node {
            std::uint32_t bucket;
            std::uint16_t parent;  // index into the queue, 0xFFFF for a root
            std::uint8_t slot;     // the slot of the parent's bucket whose key moves here
            std::uint8_t depth;
        };
        std::array<node, max_search> q;
        std::size_t head = 0, tail = 0;
        q[tail++] = {ih.first, 0xFFFF, 0, 0};
        q[tail++] = {ih.second, 0xFFFF, 0, 0};
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
                    const std::uint32_t moved = from.positions[c.slot];
                    const index_hash mh = hash_of(moved);
                    if (!place(c.bucket, tag, moved)) return false;  // cannot happen: no bucket repeats on a path
                    from.tags[c.slot] = 0;
                    if (mh.first == p.bucket) ++mem_[mh.first].displaced;  // first -> second
                    else --mem_[mh.first].displaced;                       // second -> first
                    cur = c.parent;
                }
                const std::uint32_t root = q[cur].bucket;
                if (!place(root, ih.tag, pos)) return false;
                if (root == ih.second) ++mem_[ih.first].displaced;
                return true;
            }
            if (n.depth == max_path) continue;
            const index_bucket& b = mem_[n.bucket];
            for (std::size_t s = 0; s < index_bucket::slots && tail < max_search; ++s) {
                const index_hash mh = hash_of(b.positions[s]);
                const std::uint32_t alt = mh.first == n.bucket ? mh.second : mh.first;
                // A bucket may appear once on a path: a second visit would move a key that an
                // earlier move of the same path has already replaced.
                bool on_path = alt == ih.first || alt == ih.second;
                for (std::size_t a = ni; !on_path && a != 0xFFFF; a = q[a].parent) on_path = q[a].bucket == alt;
                if (on_path) continue;
                q[tail++] = {alt, static_cast<std::uint16_t>(ni), static_cast<std::uint8_t>(s),
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
