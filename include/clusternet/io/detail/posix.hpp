// clusternet/io/detail/posix.hpp -- the small POSIX pieces every I/O binding shares: an owned file
// descriptor, an owned memory mapping, socket options with error codes, interface lookup, the
// acquire/release accesses to words the kernel shares with us in a ring, and the two error forms.
//
// Nothing here is on a per-packet path except load_acquire_u32 / store_release_u32, which compile
// to plain loads and stores on x86-64 (plus a compiler barrier).
#pragma once

#include <clusternet/error.hpp>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace clusternet::io::detail {

/// The current errno as a std::error_code of the system category.
[[nodiscard]] inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// A file descriptor that closes itself. Move-only.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    [[nodiscard]] explicit operator bool() const noexcept { return valid(); }
    /// Gives up ownership (for handing the descriptor to an Asio object, which closes it).
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// A shared memory mapping of a descriptor (a packet ring) that unmaps itself. Move-only.
class mapped_memory {
public:
    mapped_memory() noexcept = default;
    mapped_memory(mapped_memory&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    mapped_memory& operator=(mapped_memory&& o) noexcept {
        if (this != &o) {
            reset();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    mapped_memory(const mapped_memory&) = delete;
    mapped_memory& operator=(const mapped_memory&) = delete;
    ~mapped_memory() { reset(); }

    /// mmap(size, read/write, MAP_SHARED) of fd; MAP_LOCKED is tried first and dropped if the
    /// memory lock limit refuses it. Returns the error of the plain attempt.
    [[nodiscard]] static mapped_memory map_shared(int fd, std::size_t size, std::error_code& ec) noexcept {
        mapped_memory m;
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) {
            ec = last_error();
            return m;
        }
        ec.clear();
        m.data_ = static_cast<std::byte*>(p);
        m.size_ = size;
        return m;
    }

    [[nodiscard]] std::byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    void reset() noexcept {
        if (data_ != nullptr) ::munmap(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }

private:
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

/// setsockopt of one value; fills ec with errno on failure.
template <class T>
bool set_option(int fd, int level, int name, const T& value, std::error_code& ec) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof(T)) != 0) {
        ec = last_error();
        return false;
    }
    return true;
}

/// getsockopt of one value; fills ec with errno on failure.
template <class T>
bool get_option(int fd, int level, int name, T& value, std::error_code& ec) noexcept {
    socklen_t len = sizeof(T);
    if (::getsockopt(fd, level, name, &value, &len) != 0) {
        ec = last_error();
        return false;
    }
    return true;
}

/// The index of a network interface of the caller's current network namespace; 0 and ec set
/// (ENODEV, or EINVAL for an empty or too long name) when there is none.
[[nodiscard]] inline unsigned interface_index(std::string_view name, std::error_code& ec) noexcept {
    if (name.empty() || name.size() >= IF_NAMESIZE) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return 0;
    }
    char buf[IF_NAMESIZE] = {};
    std::memcpy(buf, name.data(), name.size());
    const unsigned index = ::if_nametoindex(buf);
    if (index == 0) ec = last_error();
    return index;
}

/// A copy of `name` into a zero-filled IFNAMSIZ array (the ifreq layout); false if it does not fit.
[[nodiscard]] inline bool copy_interface_name(std::string_view name, char (&out)[IFNAMSIZ]) noexcept {
    std::memset(out, 0, IFNAMSIZ);
    if (name.size() >= IFNAMSIZ) return false;
    std::memcpy(out, name.data(), name.size());
    return true;
}

[[nodiscard]] inline std::size_t page_size() noexcept {
    const long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : 4096;
}

/// An acquire load of a 32-bit word the kernel writes in a shared ring (a block or frame status).
/// `p` must be 4-byte aligned; ring descriptors are.
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint32_t load_acquire_u32(const std::byte* p) noexcept {
    return __atomic_load_n(reinterpret_cast<const std::uint32_t*>(p), __ATOMIC_ACQUIRE);
}
/// A release store of a 32-bit word that hands a ring slot back to the kernel.
CLUSTERNET_ALWAYS_INLINE void store_release_u32(std::byte* p, std::uint32_t v) noexcept {
    __atomic_store_n(reinterpret_cast<std::uint32_t*>(p), v, __ATOMIC_RELEASE);
}
/// Host-order loads and stores of ring descriptor fields (the kernel writes them in host order).
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint32_t load_host32(const std::byte* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint16_t load_host16(const std::byte* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
[[nodiscard]] CLUSTERNET_ALWAYS_INLINE std::uint64_t load_host64(const std::byte* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
CLUSTERNET_ALWAYS_INLINE void store_host32(std::byte* p, std::uint32_t v) noexcept { std::memcpy(p, &v, sizeof v); }

/// Where a setup step failed: the error and the step's name ("setsockopt(PACKET_RX_RING)"), so
/// that the throwing form can say which call on which interface refused, and why.
struct setup_status {
    std::error_code ec;
    const char* step = "";

    bool fail(const char* what, std::error_code e) noexcept {
        step = what;
        ec = e;
        return false;
    }
    bool fail_errno(const char* what) noexcept { return fail(what, last_error()); }
};

/// Throws std::system_error("<object> on '<interface>': <step>: <message>[ (hint)]").
[[noreturn]] CLUSTERNET_COLD inline void throw_setup_error(std::string_view object, std::string_view interface,
                                                           const setup_status& s, std::string_view hint = {}) {
    std::string what(object);
    if (!interface.empty()) {
        what += " on '";
        what += interface;
        what += '\'';
    }
    what += ": ";
    what += s.step;
    if (!hint.empty()) {
        what += " (";
        what += hint;
        what += ')';
    }
    throw std::system_error(s.ec, what);
}

/// A hint for the common causes of a setup error code, or an empty view.
[[nodiscard]] inline std::string_view setup_hint(const std::error_code& ec) noexcept {
    if (ec == std::errc::operation_not_permitted || ec == std::errc::permission_denied)
        return "needs CAP_NET_RAW / CAP_NET_ADMIN: run as root";
    if (ec == std::errc::no_such_device) return "no such interface in this network namespace";
    if (ec == std::errc::address_family_not_supported || ec == std::errc::protocol_not_supported)
        return "the kernel lacks this socket family";
    return {};
}

}  // namespace clusternet::io::detail
