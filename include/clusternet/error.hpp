// clusternet/error.hpp -- error codes and the result type of the fast path.
//
// Two enums, each with its own std::error_category:
//  - `parse_error`: why a packet (or a record from a file or the wire) was refused. The fast path
//    returns it inside a `result<T>` and dispatchers count it; it never throws.
//  - `errc`: setup and configuration errors (files, sockets, bad arguments), thrown as
//    std::system_error or returned through a std::error_code by the non-throwing overloads.
#pragma once

#include <clusternet/config.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace clusternet {

/// Why a parser refused its input. Values are stable (they index counter arrays).
enum class parse_error : std::uint8_t {
    none = 0,
    truncated,              ///< fewer bytes than a header (or a length field) needs
    bad_version,            ///< IP version field is not the one expected
    bad_ihl,                ///< IPv4 IHL below 5 or beyond the bytes present
    bad_total_length,       ///< IPv4 total length / IPv6 payload length inconsistent with the buffer
    fragment,               ///< a fragment whose transport header is not in this packet
    bad_ext_header,         ///< an IPv6 extension header is malformed or runs past the packet
    too_many_ext_headers,   ///< more IPv6 extension headers than the parser will walk
    bad_data_offset,        ///< TCP data offset below 5 or beyond the segment
    bad_tcp_option,         ///< a TCP option's length is invalid or runs past the header
    bad_udp_length,         ///< UDP length below 8 or beyond the datagram
    too_many_vlan_tags,     ///< more 802.1Q/802.1ad tags than the parser accepts
    bad_arp,                ///< ARP that is not Ethernet/IPv4 or has wrong address lengths
    unsupported_ethertype,  ///< an EtherType the parser does not handle
    unsupported_protocol,   ///< an IP protocol the caller asked for but the packet is not
    bad_checksum,           ///< a checksum did not verify
    bad_magic,              ///< a file or message does not start with the expected magic
    bad_field,              ///< a field holds a value the format does not allow
    too_large,              ///< a length exceeds a configured bound
    unsupported_link_type,  ///< a capture's link type that clusternet does not parse
};

inline constexpr std::size_t parse_error_count = static_cast<std::size_t>(parse_error::unsupported_link_type) + 1;

/// A short, stable, snake_case name for a parse error (used by counters and metrics).
[[nodiscard]] constexpr std::string_view to_string(parse_error e) noexcept {
    switch (e) {
        case parse_error::none: return "none";
        case parse_error::truncated: return "truncated";
        case parse_error::bad_version: return "bad_version";
        case parse_error::bad_ihl: return "bad_ihl";
        case parse_error::bad_total_length: return "bad_total_length";
        case parse_error::fragment: return "fragment";
        case parse_error::bad_ext_header: return "bad_ext_header";
        case parse_error::too_many_ext_headers: return "too_many_ext_headers";
        case parse_error::bad_data_offset: return "bad_data_offset";
        case parse_error::bad_tcp_option: return "bad_tcp_option";
        case parse_error::bad_udp_length: return "bad_udp_length";
        case parse_error::too_many_vlan_tags: return "too_many_vlan_tags";
        case parse_error::bad_arp: return "bad_arp";
        case parse_error::unsupported_ethertype: return "unsupported_ethertype";
        case parse_error::unsupported_protocol: return "unsupported_protocol";
        case parse_error::bad_checksum: return "bad_checksum";
        case parse_error::bad_magic: return "bad_magic";
        case parse_error::bad_field: return "bad_field";
        case parse_error::too_large: return "too_large";
        case parse_error::unsupported_link_type: return "unsupported_link_type";
    }
    return "unknown";
}

/// Setup and configuration errors.
enum class errc : int {
    invalid_argument = 1,   ///< a configuration value is malformed or out of range
    bad_file_format,        ///< a file is not in the format expected
    unsupported,            ///< a feature this build or this kernel does not offer
    truncated_file,         ///< a file ended in the middle of a record
    capacity_exceeded,      ///< a bounded structure is full
};

namespace detail {

class parse_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "clusternet.parse"; }
    std::string message(int ev) const override {
        return std::string(to_string(static_cast<parse_error>(ev)));
    }
};

class errc_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "clusternet"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::invalid_argument: return "invalid argument";
            case errc::bad_file_format: return "bad file format";
            case errc::unsupported: return "unsupported";
            case errc::truncated_file: return "file ends in the middle of a record";
            case errc::capacity_exceeded: return "capacity exceeded";
        }
        return "unknown clusternet error";
    }
};

}  // namespace detail

[[nodiscard]] inline const std::error_category& parse_category() noexcept {
    static const detail::parse_category_impl instance;
    return instance;
}
[[nodiscard]] inline const std::error_category& clusternet_category() noexcept {
    static const detail::errc_category_impl instance;
    return instance;
}
[[nodiscard]] inline std::error_code make_error_code(parse_error e) noexcept {
    return {static_cast<int>(e), parse_category()};
}
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), clusternet_category()};
}

/// The outcome of a fast-path operation: a value, or the reason there is none.
///
/// Deliberately tiny (T plus one byte) and trivially copyable when T is, so that parsers can
/// return it in registers. T must be default constructible; views are.
template <class T>
class result {
public:
    static_assert(std::is_default_constructible_v<T>);

    constexpr result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit by design
        : value_(std::move(value)) {}
    constexpr result(parse_error e) noexcept : error_(e) {  // NOLINT: implicit by design
        CLUSTERNET_ASSERT(e != parse_error::none);
    }

    [[nodiscard]] constexpr bool has_value() const noexcept { return error_ == parse_error::none; }
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return has_value(); }
    [[nodiscard]] constexpr parse_error error() const noexcept { return error_; }

    /// Precondition: has_value().
    [[nodiscard]] constexpr T& value() & noexcept { CLUSTERNET_ASSERT(has_value()); return value_; }
    [[nodiscard]] constexpr const T& value() const& noexcept { CLUSTERNET_ASSERT(has_value()); return value_; }
    [[nodiscard]] constexpr T& operator*() & noexcept { return value(); }
    [[nodiscard]] constexpr const T& operator*() const& noexcept { return value(); }
    [[nodiscard]] constexpr T* operator->() noexcept { return &value(); }
    [[nodiscard]] constexpr const T* operator->() const noexcept { return &value(); }

private:
    T value_{};
    parse_error error_ = parse_error::none;
};

}  // namespace clusternet

template <>
struct std::is_error_code_enum<clusternet::parse_error> : std::true_type {};
template <>
struct std::is_error_code_enum<clusternet::errc> : std::true_type {};
