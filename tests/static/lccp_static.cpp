// Compile-time checks of the LCCP codec and the handoff state: sizes the paper fixes, the bounds
// the format relies on, and that the fast-path calls are noexcept.
#include <clusternet/handoff_state.hpp>
#include <clusternet/lccp.hpp>

#include <type_traits>

namespace lccp = clusternet::lccp;
namespace ho = clusternet::handoff;

// The paper's header: Receptor, Command, Data (32 bits each), Socket ID (96), Handoff Info (90 bytes).
static_assert(lccp::header_size == 3 * 4 + 96 / 8);
static_assert(lccp::handoff_info_size == 90);
static_assert(lccp::fixed_size + lccp::max_payload + lccp::tag_size == lccp::max_message_size);
static_assert(lccp::max_message_size + 20 <= 1500, "one IPv4 datagram on a 1500-byte MTU");
static_assert(clusternet::handoff_state::wire_size == lccp::handoff_info_size);
// The fixed part of the state (64 bytes) plus the inline stream bytes fill the field exactly.
static_assert(64 + ho::inline_capacity == lccp::handoff_info_size);
static_assert(ho::max_chunk_size == lccp::handoff_info_size + lccp::max_payload);
static_assert(ho::max_stream <= ho::inline_capacity + ho::max_chunks * std::uint64_t{ho::max_chunk_size});
static_assert(ho::chunk_count(ho::inline_capacity, 90) == 0 && ho::chunk_count(ho::inline_capacity + 1, 90) == 1);
static_assert(static_cast<std::size_t>(lccp::error::bad_payload) + 1 == lccp::error_count);
static_assert(std::is_trivially_copyable_v<lccp::message> && std::is_trivially_copyable_v<clusternet::handoff_state>);

// The fast path never throws.
static_assert(noexcept(lccp::decode(std::span<const std::byte>{}, clusternet::siphash_key{})));
static_assert(noexcept(lccp::encode(lccp::message{}, clusternet::siphash_key{}, std::span<std::byte>{})));
static_assert(noexcept(std::declval<lccp::inbound<>&>().accept(clusternet::ipv4_address{}, std::span<const std::byte>{})));
static_assert(noexcept(ho::validate(clusternet::handoff_state{})));
