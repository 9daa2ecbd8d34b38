// clusternet/detail/big_buffer.hpp -- memory for tables that are sized once and live long.
//
// Design note. A table of ten million sessions spans hundreds of megabytes that are read at
// random: with 4 KiB pages nearly every lookup misses the TLB as well as the cache, and the
// page walk costs as much as the miss. Tables here take all their memory at construction, so
// they can ask for transparent huge pages (2 MiB) with madvise(MADV_HUGEPAGE), which works when
// the kernel's THP mode is "always" or "madvise" (Debian's default) and is harmlessly ignored
// otherwise. Buffers of at least 2 MiB are aligned to 2 MiB and rounded up to a multiple of it
// (at most 2 MiB of slack, counted in bytes()); smaller ones get ordinary 64-byte-aligned memory.
// Memory is zero-filled.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace clusternet::detail {

class big_buffer {
public:
    static constexpr std::size_t huge_page = std::size_t{2} << 20;

    big_buffer() noexcept = default;
    /// At least `bytes` bytes, zero-filled. Throws std::bad_alloc.
    explicit big_buffer(std::size_t bytes) {
        if (bytes == 0) return;
        const std::size_t align = bytes >= huge_page ? huge_page : 64;
        size_ = (bytes + align - 1) / align * align;
        ptr_ = std::aligned_alloc(align, size_);
        if (ptr_ == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (align == huge_page) (void)::madvise(ptr_, size_, MADV_HUGEPAGE);  // advice only
#endif
        std::memset(ptr_, 0, size_);
    }
    big_buffer(big_buffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
        o.ptr_ = nullptr;
        o.size_ = 0;
    }
    big_buffer& operator=(big_buffer&& o) noexcept {
        if (this != &o) {
            std::free(ptr_);
            ptr_ = o.ptr_;
            size_ = o.size_;
            o.ptr_ = nullptr;
            o.size_ = 0;
        }
        return *this;
    }
    big_buffer(const big_buffer&) = delete;
    big_buffer& operator=(const big_buffer&) = delete;
    ~big_buffer() { std::free(ptr_); }

    [[nodiscard]] void* data() const noexcept { return ptr_; }
    /// Bytes held, slack included.
    [[nodiscard]] std::size_t bytes() const noexcept { return size_; }

private:
    void* ptr_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace clusternet::detail
