// Compile-time checks: sizes, layout guarantees and constant evaluation. Compiling this file is
// the test.
#include <clusternet/clusternet.hpp>

#include <type_traits>

namespace cn = clusternet;

// Flow keys: no padding bytes, trivially copyable, the sizes the session tables budget for.
static_assert(sizeof(cn::flow_key4) == 16);
static_assert(sizeof(cn::flow_key6) == 40);
static_assert(sizeof(cn::flow_key) == 40);
static_assert(std::has_unique_object_representations_v<cn::flow_key4>);
static_assert(std::has_unique_object_representations_v<cn::flow_key6>);
static_assert(std::is_trivially_copyable_v<cn::flow_key>);

// Results and views are cheap to return by value.
static_assert(std::is_trivially_copyable_v<cn::result<cn::ipv4_view>>);
static_assert(std::is_trivially_copyable_v<cn::packet>);
static_assert(sizeof(cn::ipv4_view) == 16);
static_assert(std::is_trivially_copyable_v<cn::checksum_accumulator>);

// Byte-type concepts: mutable views write, const views only read, mutable converts to const.
static_assert(cn::ByteType<std::byte> && cn::ByteType<const std::byte>);
static_assert(!cn::ByteType<char> && !cn::ByteType<unsigned char>);
static_assert(std::is_convertible_v<cn::ipv4_view, cn::const_ipv4_view>);
static_assert(!std::is_convertible_v<cn::const_ipv4_view, cn::ipv4_view>);
static_assert(std::is_convertible_v<cn::packet, cn::const_packet>);
static_assert(!std::is_convertible_v<cn::const_packet, cn::packet>);
template <class V>
concept can_set_ttl = requires(V v) { v.set_ttl(std::uint8_t{1}); };
static_assert(can_set_ttl<cn::ipv4_view>);
static_assert(!can_set_ttl<cn::const_ipv4_view>);

// The incremental checksum is usable in constant expressions (RFC 1624 section 4 example).
static_assert(cn::checksum_update16(0xDD2F, 0x5555, 0x3285) == 0x0000);
static_assert(cn::checksum_update16(0x0000, 0x5555, 0x5555) == 0x0000);
static_assert(cn::detail::fold16(0x1FFFE) == 0xFFFF);
static_assert(cn::byteswap(std::uint32_t{0x01020304}) == 0x04030201);
static_assert(cn::hash(cn::flow_key4{1, 2, 3, 4, 6}) == cn::hash(cn::flow_key4{1, 2, 3, 4, 6}));

// Error codes plug into std::error_code.
static_assert(std::is_error_code_enum_v<cn::parse_error>);
static_assert(std::is_error_code_enum_v<cn::errc>);
static_assert(cn::to_string(cn::parse_error::fragment) == "fragment");
