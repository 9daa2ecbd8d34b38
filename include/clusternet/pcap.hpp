// clusternet/pcap.hpp -- classic libpcap capture files (not pcapng): a bounded reader and a
// buffered writer, our own code, no libpcap needed.
//
// Every field is in the byte order of the machine that wrote the file; the magic tells which,
// and whether the fraction of a second counts microseconds or nanoseconds:
//
//   file header (24 bytes)
//   +---------------------------------------------------------------+
//   |  magic: A1B2C3D4 (us) or A1B23C4D (ns), as the writer stored it|
//   +-------------------------------+-------------------------------+
//   |  version major (2)            |  version minor (4)            |
//   +-------------------------------+-------------------------------+
//   |  thiszone (GMT offset, 0)                                     |
//   |  sigfigs (0)                                                  |
//   |  snaplen (largest record the writer would store)              |
//   |  link type (low 16 bits; FCS length in the top bits)          |
//   +---------------------------------------------------------------+
//   then per record: a 16-byte header and incl_len bytes of data
//   +---------------------------------------------------------------+
//   |  timestamp, seconds since 1970                                |
//   |  timestamp, fraction (us or ns)                               |
//   |  incl_len (bytes stored)                                      |
//   |  orig_len (bytes on the wire)                                 |
//   +---------------------------------------------------------------+
//   |  incl_len bytes ...                                           |
//
// The reader is bounded: a record longer than the file's snaplen or than a configured maximum
// (256 KiB unless told otherwise) is refused, never allocated for. It holds one buffer, sized
// once when it opens, and hands out records as spans into it (or into the caller's memory, for
// `from_memory`), so reading allocates nothing per record. A file that ends in the middle of a
// record delivers every whole record before the cut and then reports errc::truncated_file.
//
// Errors come in two forms, as in Boost.Asio: the throwing overloads throw std::system_error,
// the others fill a std::error_code. Codes: clusternet::errc::bad_file_format (bad magic,
// version, or a record longer than the snaplen), errc::unsupported (a pcapng file or another
// pcap variant), errc::truncated_file, errc::capacity_exceeded (a record longer than the
// configured maximum), errc::invalid_argument (writer: a timestamp out of range), and
// std::system_category() codes from the OS.
#pragma once

#include <clusternet/byteorder.hpp>
#include <clusternet/error.hpp>
#include <clusternet/packet.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace clusternet {

/// The link types clusternet parses (tcpdump.org "LINKTYPE_" values). A file may hold others:
/// the reader reads any, and parse_pcap_packet() refuses those it does not know.
enum class pcap_link_type : std::uint16_t {
    ethernet = 1,  ///< LINKTYPE_ETHERNET: Ethernet II frames, VLAN tags allowed
    raw = 101,     ///< LINKTYPE_RAW: an IPv4 or IPv6 packet, told apart by its version field
    ipv4 = 228,    ///< LINKTYPE_IPV4: IPv4 packets only
    ipv6 = 229,    ///< LINKTYPE_IPV6: IPv6 packets only
};

/// A short name for a link type ("ethernet", "raw", "ipv4", "ipv6", or "other").
[[nodiscard]] constexpr std::string_view to_string(pcap_link_type t) noexcept {
    switch (t) {
        case pcap_link_type::ethernet: return "ethernet";
        case pcap_link_type::raw: return "raw";
        case pcap_link_type::ipv4: return "ipv4";
        case pcap_link_type::ipv6: return "ipv6";
    }
    return "other";
}

/// True for the link types parse_pcap_packet() understands.
[[nodiscard]] constexpr bool is_supported(pcap_link_type t) noexcept {
    return t == pcap_link_type::ethernet || t == pcap_link_type::raw || t == pcap_link_type::ipv4 ||
           t == pcap_link_type::ipv6;
}

/// What the fraction of a second in a record's timestamp counts.
enum class pcap_precision : std::uint8_t { microseconds, nanoseconds };

/// The decoded file header.
struct pcap_file_header {
    static constexpr std::size_t wire_size = 24;

    pcap_precision precision = pcap_precision::nanoseconds;
    std::endian byte_order = std::endian::native;  ///< the order of every field in the file
    std::uint16_t version_major = 2;
    std::uint16_t version_minor = 4;
    std::int32_t thiszone = 0;
    std::uint32_t sigfigs = 0;
    std::uint32_t snaplen = 0;
    std::uint32_t link_type_field = 0;  ///< the whole field, FCS bits included

    /// The link type (the low 16 bits of the field).
    [[nodiscard]] constexpr pcap_link_type link_type() const noexcept {
        return static_cast<pcap_link_type>(link_type_field & 0xFFFFU);
    }
};

/// One record. `data` stays valid until the reader's next call to next() (or, for a reader over
/// memory, as long as that memory).
struct pcap_record {
    std::chrono::nanoseconds timestamp{};  ///< since 1970-01-01 00:00:00 UTC
    std::uint32_t original_length = 0;     ///< the packet's length on the wire (orig_len)
    std::span<const std::byte> data{};     ///< the bytes stored (incl_len of them)
};

namespace detail {

inline constexpr std::uint32_t pcap_magic_us = 0xA1B2C3D4U;
inline constexpr std::uint32_t pcap_magic_ns = 0xA1B23C4DU;
inline constexpr std::uint32_t pcap_magic_modified = 0xA1B2CD34U;  // Kuznetzov's patched libpcap
inline constexpr std::uint32_t pcapng_magic = 0x0A0D0D0AU;         // the Section Header Block type
inline constexpr std::size_t pcap_record_header_size = 16;

/// Loads a 32-bit field stored in native order, or in the other order when `swapped`.
[[nodiscard]] inline std::uint32_t load_u32_ordered(const std::byte* p, bool swapped) noexcept {
    const auto v = load_native<std::uint32_t>(p);
    return swapped ? byteswap(v) : v;
}
[[nodiscard]] inline std::uint16_t load_u16_ordered(const std::byte* p, bool swapped) noexcept {
    const auto v = load_native<std::uint16_t>(p);
    return swapped ? byteswap(v) : v;
}
inline void store_u32_ordered(std::byte* p, std::uint32_t v, bool swapped) noexcept {
    if (swapped) v = byteswap(v);
    std::memcpy(p, &v, sizeof v);
}
inline void store_u16_ordered(std::byte* p, std::uint16_t v, bool swapped) noexcept {
    if (swapped) v = byteswap(v);
    std::memcpy(p, &v, sizeof v);
}

/// True when `bytes` (fewer than 4) could be the start of a magic of either byte order.
[[nodiscard]] inline bool could_be_pcap_magic_prefix(std::span<const std::byte> bytes) noexcept {
    for (const std::uint32_t m : {pcap_magic_us, pcap_magic_ns}) {
        for (const std::uint32_t v : {m, byteswap(m)}) {
            std::byte b[4];
            std::memcpy(b, &v, 4);
            if (std::equal(bytes.begin(), bytes.end(), b)) return true;
        }
    }
    return false;
}

/// The file header's error as an errc: a short file is truncated (unless its first bytes
/// already rule pcap out), pcapng and patched pcap are unsupported, the rest is bad format.
[[nodiscard]] inline errc pcap_header_errc(std::span<const std::byte> file, parse_error e) noexcept {
    if (e == parse_error::truncated) {
        return could_be_pcap_magic_prefix(file.first(std::min<std::size_t>(file.size(), 4))) ? errc::truncated_file
                                                                                              : errc::bad_file_format;
    }
    if (e == parse_error::bad_magic && file.size() >= 4) {
        const auto m = load_native<std::uint32_t>(file.data());
        if (m == pcapng_magic || m == pcap_magic_modified || m == byteswap(pcap_magic_modified))
            return errc::unsupported;
    }
    return errc::bad_file_format;
}

[[nodiscard]] inline std::error_code last_os_error() noexcept { return {errno, std::system_category()}; }

/// Writes all of [p, p + n) to `fd`, retrying on EINTR and short writes.
[[nodiscard]] inline std::error_code write_all(int fd, const std::byte* p, std::size_t n) noexcept {
    while (n > 0) {
        const ::ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return last_os_error();
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return {};
}

}  // namespace detail

/// Decodes a pcap file header from the first 24 bytes of `file`. Errors: `truncated` (fewer than
/// 24 bytes), `bad_magic` (neither pcap magic, in either byte order), `bad_field` (a version
/// other than 2.x). Cost: a few loads; never throws.
[[nodiscard]] inline result<pcap_file_header> parse_pcap_file_header(std::span<const std::byte> file) noexcept {
    if (file.size() < pcap_file_header::wire_size) {
        if (file.size() >= 4 && !detail::could_be_pcap_magic_prefix(file.first(4))) return parse_error::bad_magic;
        return parse_error::truncated;
    }
    const std::byte* p = file.data();
    const std::uint32_t magic = load_native<std::uint32_t>(p);
    pcap_file_header h;
    bool swapped = false;
    if (magic == detail::pcap_magic_us || magic == detail::pcap_magic_ns) {
        swapped = false;
    } else if (magic == byteswap(detail::pcap_magic_us) || magic == byteswap(detail::pcap_magic_ns)) {
        swapped = true;
    } else {
        return parse_error::bad_magic;
    }
    const std::uint32_t m = swapped ? byteswap(magic) : magic;
    h.precision = m == detail::pcap_magic_ns ? pcap_precision::nanoseconds : pcap_precision::microseconds;
    constexpr std::endian other = std::endian::native == std::endian::little ? std::endian::big : std::endian::little;
    h.byte_order = swapped ? other : std::endian::native;
    h.version_major = detail::load_u16_ordered(p + 4, swapped);
    h.version_minor = detail::load_u16_ordered(p + 6, swapped);
    h.thiszone = static_cast<std::int32_t>(detail::load_u32_ordered(p + 8, swapped));
    h.sigfigs = detail::load_u32_ordered(p + 12, swapped);
    h.snaplen = detail::load_u32_ordered(p + 16, swapped);
    h.link_type_field = detail::load_u32_ordered(p + 20, swapped);
    if (h.version_major != 2) return parse_error::bad_field;
    return h;
}

/// Parses a record's bytes as its link type says: Ethernet through parse_ethernet_packet(), raw
/// IP through parse_ip_packet() (LINKTYPE_IPV4/IPV6 also check the version: `bad_version`).
/// Errors: those of the parsers, and `unsupported_link_type` for a link type clusternet does not
/// know (see is_supported()). Cost: that of the parser; never throws.
template <ByteType B>
[[nodiscard]] constexpr result<basic_packet<B>> parse_pcap_packet(pcap_link_type link, std::span<B> data,
                                                                  parse_options opt = {}) noexcept {
    switch (link) {
        case pcap_link_type::ethernet: return parse_ethernet_packet(data, opt);
        case pcap_link_type::raw: return parse_ip_packet(data, opt);
        case pcap_link_type::ipv4:
        case pcap_link_type::ipv6: {
            if (data.empty()) return parse_error::truncated;
            const unsigned want = link == pcap_link_type::ipv4 ? 4U : 6U;
            if ((load_u8(data.data()) >> 4) != want) return parse_error::bad_version;
            return parse_ip_packet(data, opt);
        }
    }
    return parse_error::unsupported_link_type;
}

struct pcap_reader_options {
    /// The longest record accepted, whatever the snaplen says; longer ones are an error
    /// (errc::capacity_exceeded). It also sizes the buffer of a reader over a file.
    std::uint32_t max_record_length = 262144;
    /// Refuse a record longer than the file's snaplen (errc::bad_file_format). A snaplen of 0
    /// is taken as "no snaplen".
    bool enforce_snaplen = true;
};

/// Reads a classic pcap file record by record, from a file descriptor or from memory.
///
///   auto r = clusternet::pcap_reader::open("capture.pcap");   // throws std::system_error
///   for (clusternet::pcap_record rec; r.next(rec);) { ... rec.data ... }
///   if (r.error()) { ... }   // errc::truncated_file, bad_file_format, an I/O error
///
/// Move-only. Not thread-safe. A default-constructed reader is closed (is_open() is false).
class pcap_reader {
public:
    pcap_reader() noexcept = default;
    pcap_reader(const pcap_reader&) = delete;
    pcap_reader& operator=(const pcap_reader&) = delete;
    pcap_reader(pcap_reader&& o) noexcept { swap(o); }
    pcap_reader& operator=(pcap_reader&& o) noexcept {
        if (this != &o) {
            pcap_reader tmp(std::move(o));
            swap(tmp);
        }
        return *this;
    }
    ~pcap_reader() { close_fd(); }

    /// Opens a file and reads its header. Allocates the buffer (about max_record_length bytes)
    /// once. Throws std::system_error (the codes listed at the top of this header) and
    /// std::bad_alloc.
    [[nodiscard]] static pcap_reader open(const std::filesystem::path& path, const pcap_reader_options& opt = {}) {
        std::error_code ec;
        pcap_reader r = open(path, opt, ec);
        if (ec) throw std::system_error(ec, "cannot read pcap file " + path.string());
        return r;
    }
    /// As above; on error sets `ec` and returns a closed reader. Throws only std::bad_alloc.
    [[nodiscard]] static pcap_reader open(const std::filesystem::path& path, std::error_code& ec) {
        return open(path, pcap_reader_options{}, ec);
    }
    /// As above, with options.
    [[nodiscard]] static pcap_reader open(const std::filesystem::path& path, const pcap_reader_options& opt,
                                          std::error_code& ec) {
        ec.clear();
        int fd = -1;
        do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            ec = detail::last_os_error();
            return {};
        }
        pcap_reader r;
        r.fd_ = fd;
        r.owns_fd_ = true;
        r.start(opt, ec);
        if (ec) return {};
        return r;
    }

    /// Reads from an open file descriptor (a pipe or stdin works), which the reader does not
    /// close. Reads the header now. Throws std::system_error and std::bad_alloc.
    [[nodiscard]] static pcap_reader from_fd(int fd, const pcap_reader_options& opt = {}) {
        std::error_code ec;
        pcap_reader r = from_fd(fd, opt, ec);
        if (ec) throw std::system_error(ec, "cannot read pcap data from file descriptor " + std::to_string(fd));
        return r;
    }
    /// As above; on error sets `ec` and returns a closed reader. Throws only std::bad_alloc.
    [[nodiscard]] static pcap_reader from_fd(int fd, const pcap_reader_options& opt, std::error_code& ec) {
        ec.clear();
        pcap_reader r;
        r.fd_ = fd;
        r.owns_fd_ = false;
        r.start(opt, ec);
        if (ec) return {};
        return r;
    }

    /// Reads a whole file held in memory (the fuzzer, tests, a mapped file). Records point into
    /// `file`, which must outlive them; nothing is copied or allocated. Throws std::system_error.
    [[nodiscard]] static pcap_reader from_memory(std::span<const std::byte> file, const pcap_reader_options& opt = {}) {
        std::error_code ec;
        pcap_reader r = from_memory(file, opt, ec);
        if (ec) throw std::system_error(ec, "cannot read pcap data from memory");
        return r;
    }
    /// As above; on error sets `ec` and returns a closed reader. Never throws.
    [[nodiscard]] static pcap_reader from_memory(std::span<const std::byte> file, const pcap_reader_options& opt,
                                                 std::error_code& ec) noexcept {
        ec.clear();
        pcap_reader r;
        r.mem_ = file;
        r.memory_ = true;
        r.end_ = file.size();
        r.start(opt, ec);
        if (ec) return {};
        return r;
    }
    /// As above, default options.
    [[nodiscard]] static pcap_reader from_memory(std::span<const std::byte> file, std::error_code& ec) noexcept {
        return from_memory(file, pcap_reader_options{}, ec);
    }

    /// Reads the next record into `rec`. Returns false at the end of the file and on an error;
    /// error() tells which (it is empty at a clean end). Once it has returned false it keeps
    /// doing so. Cost: O(record length) for a file (one copy from the kernel, in large reads),
    /// O(1) over memory. No allocation; never throws.
    bool next(pcap_record& rec) noexcept {
        if (!open_ || done_) return false;
        const std::size_t hs = detail::pcap_record_header_size;
        if (!ensure(hs)) {
            if (!error_ && available() != 0) error_ = make_error_code(errc::truncated_file);
            done_ = true;
            return false;
        }
        const std::byte* p = window();
        const bool sw = swapped_;
        const std::uint32_t sec = detail::load_u32_ordered(p, sw);
        const std::uint32_t frac = detail::load_u32_ordered(p + 4, sw);
        const std::uint32_t incl = detail::load_u32_ordered(p + 8, sw);
        const std::uint32_t orig = detail::load_u32_ordered(p + 12, sw);
        if (opt_.enforce_snaplen && header_.snaplen != 0 && incl > header_.snaplen) return fail(errc::bad_file_format);
        if (incl > opt_.max_record_length) return fail(errc::capacity_exceeded);
        if (!ensure(hs + incl)) {
            if (!error_) error_ = make_error_code(errc::truncated_file);
            done_ = true;
            return false;
        }
        p = window();  // ensure() may have moved the bytes
        const std::int64_t unit = header_.precision == pcap_precision::nanoseconds ? 1 : 1000;
        rec.timestamp = std::chrono::seconds(sec) + std::chrono::nanoseconds(std::int64_t{frac} * unit);
        rec.original_length = orig;
        rec.data = std::span<const std::byte>(p + hs, incl);
        pos_ += hs + incl;
        offset_ += hs + incl;
        ++count_;
        return true;
    }

    /// Why next() returned false: empty at a clean end of file. Never throws.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }
    /// False for a default-constructed or moved-from reader, or one whose open failed.
    [[nodiscard]] bool is_open() const noexcept { return open_; }
    [[nodiscard]] const pcap_file_header& header() const noexcept { return header_; }
    [[nodiscard]] pcap_link_type link_type() const noexcept { return header_.link_type(); }
    [[nodiscard]] std::uint32_t snaplen() const noexcept { return header_.snaplen; }
    [[nodiscard]] pcap_precision precision() const noexcept { return header_.precision; }
    /// Records delivered so far.
    [[nodiscard]] std::uint64_t record_count() const noexcept { return count_; }
    /// The file offset of the next record (after an error: of the record that failed).
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

    void swap(pcap_reader& o) noexcept {
        using std::swap;
        swap(fd_, o.fd_);
        swap(owns_fd_, o.owns_fd_);
        swap(memory_, o.memory_);
        swap(open_, o.open_);
        swap(done_, o.done_);
        swap(eof_, o.eof_);
        swap(swapped_, o.swapped_);
        swap(mem_, o.mem_);
        buf_.swap(o.buf_);
        swap(pos_, o.pos_);
        swap(end_, o.end_);
        swap(offset_, o.offset_);
        swap(count_, o.count_);
        swap(header_, o.header_);
        swap(opt_, o.opt_);
        swap(error_, o.error_);
    }

private:
    void close_fd() noexcept {
        if (owns_fd_ && fd_ >= 0) ::close(fd_);
        fd_ = -1;
        owns_fd_ = false;
    }

    [[nodiscard]] const std::byte* window() const noexcept {
        return (memory_ ? mem_.data() : buf_.data()) + pos_;
    }
    [[nodiscard]] std::size_t available() const noexcept { return end_ - pos_; }

    bool fail(errc e) noexcept {
        error_ = make_error_code(e);
        done_ = true;
        return false;
    }

    /// Makes at least `n` bytes available at window(); false at end of file or on an error
    /// (error_ is then set). Precondition for a file: n <= buf_.size().
    bool ensure(std::size_t n) noexcept {
        if (available() >= n) return true;
        if (memory_ || eof_) return false;
        if (pos_ != 0) {
            std::memmove(buf_.data(), buf_.data() + pos_, available());
            end_ -= pos_;
            pos_ = 0;
        }
        while (end_ < n) {
            const ::ssize_t got = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
            if (got < 0) {
                if (errno == EINTR) continue;
                error_ = detail::last_os_error();
                return false;
            }
            if (got == 0) {
                eof_ = true;
                return false;
            }
            end_ += static_cast<std::size_t>(got);
        }
        return true;
    }

    void start(const pcap_reader_options& opt, std::error_code& ec) {
        opt_ = opt;
        if (!memory_) {
            // One buffer for the reader's life: the longest record it may hand out plus its
            // header, and at least 64 KiB so that small records come in large reads.
            buf_.resize(std::max<std::size_t>(std::size_t{opt.max_record_length} + detail::pcap_record_header_size,
                                              std::size_t{65536}));
        }
        open_ = true;
        const bool whole = ensure(pcap_file_header::wire_size);
        if (!whole && error_) {
            ec = error_;
            open_ = false;
            return;
        }
        const auto h = parse_pcap_file_header(std::span<const std::byte>(window(), available()));
        if (!h) {
            ec = make_error_code(detail::pcap_header_errc(std::span<const std::byte>(window(), available()), h.error()));
            open_ = false;
            return;
        }
        header_ = *h;
        swapped_ = header_.byte_order != std::endian::native;
        pos_ += pcap_file_header::wire_size;
        offset_ = pcap_file_header::wire_size;
    }

    int fd_ = -1;
    bool owns_fd_ = false;
    bool memory_ = false;
    bool open_ = false;
    bool done_ = false;
    bool eof_ = false;
    bool swapped_ = false;
    std::span<const std::byte> mem_{};
    std::vector<std::byte> buf_{};
    std::size_t pos_ = 0;  // window: [pos_, end_) of mem_ or buf_
    std::size_t end_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t count_ = 0;
    pcap_file_header header_{};
    pcap_reader_options opt_{};
    std::error_code error_{};
};

/// Calls `f(link_type, record)` for every record of a pcap file held in memory, in order, and
/// returns why it stopped: an empty code when it read the whole file, else the reader's error
/// (a bad header, a truncated file, an oversized record); records before the error have been
/// delivered. Cost: O(file size) plus f; no allocation. Throws what f throws.
template <class F>
    requires std::invocable<F&, pcap_link_type, const pcap_record&>
std::error_code for_each_pcap_record(std::span<const std::byte> file, F&& f, const pcap_reader_options& opt = {}) {
    std::error_code ec;
    pcap_reader r = pcap_reader::from_memory(file, opt, ec);
    if (ec) return ec;
    const pcap_link_type link = r.link_type();
    for (pcap_record rec; r.next(rec);) f(link, rec);
    return r.error();
}

struct pcap_writer_options {
    pcap_precision precision = pcap_precision::nanoseconds;
    /// The byte order of the file's fields (readers accept both; native is what libpcap writes).
    std::endian byte_order = std::endian::native;
};

/// Writes a classic pcap file, buffered (64 KiB). Records longer than the snaplen are cut to
/// it, their original length kept, as a capture does.
///
///   auto w = clusternet::pcap_writer::create("out.pcap", clusternet::pcap_link_type::ethernet);
///   w.write(timestamp, frame);
///   w.close();   // flushes; throws on error (the destructor flushes too, silently)
///
/// Move-only. Not thread-safe.
class pcap_writer {
public:
    static constexpr std::size_t buffer_size = 65536;

    pcap_writer() noexcept = default;
    pcap_writer(const pcap_writer&) = delete;
    pcap_writer& operator=(const pcap_writer&) = delete;
    pcap_writer(pcap_writer&& o) noexcept { swap(o); }
    pcap_writer& operator=(pcap_writer&& o) noexcept {
        if (this != &o) {
            pcap_writer tmp(std::move(o));
            swap(tmp);
        }
        return *this;
    }
    /// Flushes and closes; errors are lost (call close() to see them).
    ~pcap_writer() {
        std::error_code ignored;
        close(ignored);
    }

    /// Creates (or truncates) `path` and writes the file header. Throws std::system_error and
    /// std::bad_alloc.
    [[nodiscard]] static pcap_writer create(const std::filesystem::path& path, pcap_link_type link,
                                            std::uint32_t snaplen = 262144, const pcap_writer_options& opt = {}) {
        std::error_code ec;
        pcap_writer w = create(path, link, snaplen, opt, ec);
        if (ec) throw std::system_error(ec, "cannot create pcap file " + path.string());
        return w;
    }
    /// As above; on error sets `ec` and returns a closed writer. Throws only std::bad_alloc.
    [[nodiscard]] static pcap_writer create(const std::filesystem::path& path, pcap_link_type link,
                                            std::uint32_t snaplen, const pcap_writer_options& opt,
                                            std::error_code& ec) {
        ec.clear();
        int fd = -1;
        do fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            ec = detail::last_os_error();
            return {};
        }
        pcap_writer w;
        w.fd_ = fd;
        w.owns_fd_ = true;
        w.start(link, snaplen, opt, ec);
        if (ec) return {};
        return w;
    }
    /// As above, default options.
    [[nodiscard]] static pcap_writer create(const std::filesystem::path& path, pcap_link_type link,
                                            std::uint32_t snaplen, std::error_code& ec) {
        return create(path, link, snaplen, pcap_writer_options{}, ec);
    }

    /// Writes to an open file descriptor (stdout, a pipe), which the writer does not close.
    /// Writes the file header now. Throws std::system_error and std::bad_alloc.
    [[nodiscard]] static pcap_writer from_fd(int fd, pcap_link_type link, std::uint32_t snaplen = 262144,
                                             const pcap_writer_options& opt = {}) {
        std::error_code ec;
        pcap_writer w = from_fd(fd, link, snaplen, opt, ec);
        if (ec) throw std::system_error(ec, "cannot write pcap data to file descriptor " + std::to_string(fd));
        return w;
    }
    /// As above; on error sets `ec` and returns a closed writer. Throws only std::bad_alloc.
    [[nodiscard]] static pcap_writer from_fd(int fd, pcap_link_type link, std::uint32_t snaplen,
                                             const pcap_writer_options& opt, std::error_code& ec) {
        ec.clear();
        pcap_writer w;
        w.fd_ = fd;
        w.owns_fd_ = false;
        w.start(link, snaplen, opt, ec);
        if (ec) return {};
        return w;
    }

    /// Appends a record: `data` (cut to the snaplen) with its timestamp since 1970 and its
    /// original length (taken as data.size() when smaller). Cost: O(data) copied into the
    /// buffer, a write(2) per 64 KiB. Throws std::system_error: errc::invalid_argument for a
    /// timestamp before 1970 or after 2106, or the OS's error.
    void write(std::chrono::nanoseconds timestamp, std::span<const std::byte> data, std::size_t original_length = 0) {
        std::error_code ec;
        write(timestamp, data, original_length, ec);
        if (ec) throw std::system_error(ec, "cannot write pcap record");
    }
    /// As above; on error sets `ec` (nothing of the record is written for an invalid
    /// timestamp). Never throws.
    void write(std::chrono::nanoseconds timestamp, std::span<const std::byte> data, std::error_code& ec) noexcept {
        write(timestamp, data, 0, ec);
    }
    /// As above, with the original length.
    void write(std::chrono::nanoseconds timestamp, std::span<const std::byte> data, std::size_t original_length,
               std::error_code& ec) noexcept {
        ec.clear();
        if (fd_ < 0) {
            ec = std::make_error_code(std::errc::bad_file_descriptor);
            return;
        }
        const std::int64_t ns = timestamp.count();
        constexpr std::int64_t billion = 1'000'000'000;
        if (ns < 0 || ns / billion > std::int64_t{0xFFFFFFFF}) {
            ec = make_error_code(errc::invalid_argument);
            return;
        }
        const auto sec = static_cast<std::uint32_t>(ns / billion);
        std::uint32_t frac = static_cast<std::uint32_t>(ns % billion);
        if (precision_ == pcap_precision::microseconds) frac /= 1000;
        const std::size_t incl = std::min<std::size_t>(data.size(), snaplen_);
        const std::size_t orig_wide = std::max(original_length, data.size());
        const auto orig = static_cast<std::uint32_t>(std::min<std::size_t>(orig_wide, 0xFFFFFFFFU));
        std::byte h[detail::pcap_record_header_size];
        detail::store_u32_ordered(h, sec, swapped_);
        detail::store_u32_ordered(h + 4, frac, swapped_);
        detail::store_u32_ordered(h + 8, static_cast<std::uint32_t>(incl), swapped_);
        detail::store_u32_ordered(h + 12, orig, swapped_);
        if ((ec = append(h, sizeof h))) return;
        if ((ec = append(data.data(), incl))) return;
        ++count_;
    }

    /// Writes out what is buffered. Throws std::system_error.
    void flush() {
        std::error_code ec;
        flush(ec);
        if (ec) throw std::system_error(ec, "cannot write pcap file");
    }
    /// As above; sets `ec`. Never throws.
    void flush(std::error_code& ec) noexcept {
        ec.clear();
        if (fd_ < 0 || used_ == 0) return;
        ec = detail::write_all(fd_, buf_.data(), used_);
        used_ = 0;
    }

    /// Flushes, then closes the file (if the writer opened it). The writer is closed afterwards,
    /// even on error. Throws std::system_error.
    void close() {
        std::error_code ec;
        close(ec);
        if (ec) throw std::system_error(ec, "cannot write pcap file");
    }
    /// As above; sets `ec`. Never throws.
    void close(std::error_code& ec) noexcept {
        ec.clear();
        if (fd_ < 0) return;
        flush(ec);
        if (owns_fd_ && ::close(fd_) != 0 && !ec) ec = detail::last_os_error();
        fd_ = -1;
        owns_fd_ = false;
    }

    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    /// Records written so far.
    [[nodiscard]] std::uint64_t record_count() const noexcept { return count_; }
    [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }
    [[nodiscard]] pcap_precision precision() const noexcept { return precision_; }

    void swap(pcap_writer& o) noexcept {
        using std::swap;
        swap(fd_, o.fd_);
        swap(owns_fd_, o.owns_fd_);
        swap(swapped_, o.swapped_);
        swap(precision_, o.precision_);
        swap(snaplen_, o.snaplen_);
        buf_.swap(o.buf_);
        swap(used_, o.used_);
        swap(count_, o.count_);
    }

private:
    void start(pcap_link_type link, std::uint32_t snaplen, const pcap_writer_options& opt, std::error_code& ec) {
        buf_.resize(buffer_size);
        precision_ = opt.precision;
        snaplen_ = snaplen == 0 ? 0xFFFFFFFFU : snaplen;
        swapped_ = opt.byte_order != std::endian::native;
        std::byte h[pcap_file_header::wire_size];
        const bool sw = swapped_;
        detail::store_u32_ordered(h, opt.precision == pcap_precision::nanoseconds ? detail::pcap_magic_ns
                                                                                    : detail::pcap_magic_us, sw);
        detail::store_u16_ordered(h + 4, 2, sw);
        detail::store_u16_ordered(h + 6, 4, sw);
        detail::store_u32_ordered(h + 8, 0, sw);
        detail::store_u32_ordered(h + 12, 0, sw);
        detail::store_u32_ordered(h + 16, snaplen, sw);
        detail::store_u32_ordered(h + 20, static_cast<std::uint32_t>(link), sw);
        ec = append(h, sizeof h);
        if (!ec) flush(ec);  // a header on disk at once: a reader sees a valid (empty) file
        if (ec) {
            if (owns_fd_) ::close(fd_);
            fd_ = -1;
        }
    }

    [[nodiscard]] std::error_code append(const std::byte* p, std::size_t n) noexcept {
        if (n > buf_.size() - used_) {
            std::error_code ec;
            flush(ec);
            if (ec) return ec;
            if (n >= buf_.size()) return detail::write_all(fd_, p, n);
        }
        if (n != 0) std::memcpy(buf_.data() + used_, p, n);
        used_ += n;
        return {};
    }

    int fd_ = -1;
    bool owns_fd_ = false;
    bool swapped_ = false;
    pcap_precision precision_ = pcap_precision::nanoseconds;
    std::uint32_t snaplen_ = 0;
    std::vector<std::byte> buf_{};
    std::size_t used_ = 0;
    std::uint64_t count_ = 0;
};

}  // namespace clusternet
