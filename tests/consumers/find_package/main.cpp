// A consumer of clusternet: computes the RFC 1071 example checksum and checks it.
#include <clusternet/clusternet.hpp>
#include <clusternet/checksum.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>

int main() {
    // RFC 1071, section 3: these bytes sum (one's complement) to 0xddf2, so the checksum is 0x220d.
    constexpr std::array<std::byte, 8> bytes{std::byte{0x00}, std::byte{0x01}, std::byte{0xf2},
                                             std::byte{0x03}, std::byte{0xf4}, std::byte{0xf5},
                                             std::byte{0xf6}, std::byte{0xf7}};
    const std::uint16_t got = clusternet::internet_checksum(std::span<const std::byte>(bytes));
    if (got != 0x220d) {
        std::fprintf(stderr, "internet_checksum: got 0x%04x, expected 0x220d\n", unsigned{got});
        return 1;
    }
    std::printf("internet_checksum(RFC 1071 example) = 0x%04x: ok\n", unsigned{got});
    return 0;
}
