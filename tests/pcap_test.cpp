// Tests of clusternet/pcap.hpp: the reader over memory and over files, the writer, and the
// link-type parser.
#include <doctest/doctest.h>

#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace cn = clusternet;
using namespace std::chrono_literals;

namespace {

using bytes = std::vector<std::byte>;

/// A file under the temp directory, removed when the test ends.
struct temp_file {
    std::filesystem::path path;
    explicit temp_file(const std::string& name) {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("clusternet-pcap-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

void write_file(const std::filesystem::path& p, std::span<const std::byte> data) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    REQUIRE(f.good());
}

bytes read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    bytes b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

const cn::mac_address mac_a{{std::byte{0x02}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}}};
const cn::mac_address mac_b{{std::byte{0x02}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{2}}};

/// A few packets of different kinds, built (lengths and checksums filled) by packet_builder.
std::vector<bytes> sample_packets() {
    std::vector<bytes> out;
    const auto v6a = *cn::ipv6_address::parse("fd00::1");
    const auto v6b = *cn::ipv6_address::parse("fd00::2");
    for (int kind = 0; kind < 5; ++kind) {
        std::array<std::byte, 2048> buf{};
        cn::packet_builder b(buf);
        b.ethernet({.dst = mac_b, .src = mac_a});
        switch (kind) {
            case 0:
                b.ipv4({.src = cn::ipv4_address(10, 0, 0, 1), .dst = cn::ipv4_address(10, 0, 0, 2)})
                    .tcp({.sport = 40000, .dport = 80, .seq = 1, .flags = cn::tcp_flags::syn, .mss = 1460})
                    .payload(0);
                break;
            case 1:
                b.ipv4({.src = cn::ipv4_address(10, 0, 0, 2), .dst = cn::ipv4_address(10, 0, 0, 1)})
                    .tcp({.sport = 80, .dport = 40000, .seq = 7, .ack = 2})
                    .payload(1000);
                break;
            case 2: b.ipv6({.src = v6a, .dst = v6b}).udp({.sport = 5353, .dport = 53}).payload(33); break;
            case 3: b.ipv4({.src = cn::ipv4_address(10, 0, 0, 1), .dst = cn::ipv4_address(10, 0, 0, 2)}).icmp({.identifier = 9, .sequence = 1}).payload(56); break;
            default: b.ipv6({.src = v6b, .dst = v6a}).icmp({.type = cn::icmpv6_type::echo_reply, .identifier = 3}).payload(7); break;
        }
        const auto r = b.finish();
        REQUIRE(r.has_value());
        out.emplace_back(r->begin(), r->end());
    }
    return out;
}

/// Stores a 32/16-bit field in the given byte order, as a writer on such a machine would.
void put32(bytes& f, std::size_t off, std::uint32_t v, std::endian order) {
    if (order == std::endian::big) {
        cn::store_be32(f.data() + off, v);
    } else {
        cn::store_be32(f.data() + off, cn::byteswap(v));
    }
}
void put16(bytes& f, std::size_t off, std::uint16_t v, std::endian order) {
    if (order == std::endian::big) {
        cn::store_be16(f.data() + off, v);
    } else {
        cn::store_be16(f.data() + off, cn::byteswap(v));
    }
}

struct hand_record {
    std::uint32_t sec, frac, incl, orig;
    std::size_t data_size;  // bytes actually appended (normally == incl)
};

/// A pcap file written field by field, for the reader to be checked against something it did
/// not write itself.
bytes hand_file(std::uint32_t magic, std::endian order, std::uint32_t snaplen, std::uint32_t link,
                const std::vector<hand_record>& recs) {
    bytes f(24);
    put32(f, 0, magic, order);
    put16(f, 4, 2, order);
    put16(f, 6, 4, order);
    put32(f, 8, 0, order);
    put32(f, 12, 0, order);
    put32(f, 16, snaplen, order);
    put32(f, 20, link, order);
    for (const hand_record& r : recs) {
        const std::size_t at = f.size();
        f.resize(at + 16 + r.data_size);
        put32(f, at, r.sec, order);
        put32(f, at + 4, r.frac, order);
        put32(f, at + 8, r.incl, order);
        put32(f, at + 12, r.orig, order);
        for (std::size_t i = 0; i < r.data_size; ++i) f[at + 16 + i] = std::byte(static_cast<unsigned char>(i * 7 + r.sec));
    }
    return f;
}

std::span<const std::byte> cspan(const bytes& b) { return {b.data(), b.size()}; }

}  // namespace

TEST_SUITE("pcap") {
    TEST_CASE("round trip through a file: every precision and byte order") {
        const auto packets = sample_packets();
        for (const auto precision : {cn::pcap_precision::nanoseconds, cn::pcap_precision::microseconds}) {
            for (const auto order : {std::endian::little, std::endian::big}) {
                CAPTURE(static_cast<int>(precision));
                CAPTURE(order == std::endian::big);
                temp_file tf("roundtrip.pcap");
                const std::chrono::nanoseconds t0 = 1'700'000'000s + 123'456'789ns;
                {
                    auto w = cn::pcap_writer::create(tf.path, cn::pcap_link_type::ethernet, 262144,
                                                     {.precision = precision, .byte_order = order});
                    for (std::size_t i = 0; i < packets.size(); ++i)
                        w.write(t0 + std::chrono::milliseconds(i), cspan(packets[i]));
                    CHECK(w.record_count() == packets.size());
                    w.close();
                }
                auto r = cn::pcap_reader::open(tf.path);
                REQUIRE(r.is_open());
                CHECK(r.link_type() == cn::pcap_link_type::ethernet);
                CHECK(r.snaplen() == 262144);
                CHECK(r.precision() == precision);
                CHECK(r.header().byte_order == order);
                CHECK(r.header().version_major == 2);
                CHECK(r.header().version_minor == 4);
                std::size_t n = 0;
                for (cn::pcap_record rec; r.next(rec); ++n) {
                    REQUIRE(n < packets.size());
                    CHECK(std::equal(rec.data.begin(), rec.data.end(), packets[n].begin(), packets[n].end()));
                    CHECK(rec.original_length == packets[n].size());
                    auto expect = t0 + std::chrono::milliseconds(n);
                    if (precision == cn::pcap_precision::microseconds) expect -= expect % 1000;
                    CHECK(rec.timestamp == expect);
                    const auto p = cn::parse_pcap_packet(r.link_type(), rec.data);
                    REQUIRE(p.has_value());
                    CHECK(cn::verify_checksums(*p).ok());
                    CHECK(cn::verify_checksums(*p).transport == cn::checksum_status::ok);
                }
                CHECK(n == packets.size());
                CHECK_FALSE(r.error());
                CHECK(r.record_count() == packets.size());
                cn::pcap_record rec;
                CHECK_FALSE(r.next(rec));  // stays at the end
            }
        }
    }

    TEST_CASE("hand-written headers: both magics in both byte orders") {
        struct magic_case {
            std::uint32_t magic;
            cn::pcap_precision precision;
        };
        for (const magic_case mc : {magic_case{0xA1B2C3D4U, cn::pcap_precision::microseconds},
                                    magic_case{0xA1B23C4DU, cn::pcap_precision::nanoseconds}}) {
            for (const auto order : {std::endian::little, std::endian::big}) {
                CAPTURE(mc.magic);
                CAPTURE(order == std::endian::big);
                const bytes f = hand_file(mc.magic, order, 1000, 101,
                                          {{100, 999'999, 20, 60, 20}, {4'000'000'000U, 5, 0, 0, 0}, {7, 1, 1000, 1500, 1000}});
                std::error_code ec;
                auto r = cn::pcap_reader::from_memory(cspan(f), ec);
                REQUIRE_FALSE(ec);
                CHECK(r.link_type() == cn::pcap_link_type::raw);
                CHECK(r.header().link_type_field == 101);
                CHECK(r.snaplen() == 1000);
                CHECK(r.precision() == mc.precision);
                CHECK(r.header().byte_order == order);
                const std::int64_t unit = mc.precision == cn::pcap_precision::nanoseconds ? 1 : 1000;
                cn::pcap_record rec;
                REQUIRE(r.next(rec));
                CHECK(rec.timestamp == std::chrono::seconds(100) + std::chrono::nanoseconds(999'999 * unit));
                CHECK(rec.data.size() == 20);
                CHECK(rec.original_length == 60);
                CHECK(rec.data.data() == f.data() + 24 + 16);  // from memory: no copy
                CHECK(rec.data[3] == std::byte{121});
                REQUIRE(r.next(rec));
                CHECK(rec.timestamp == std::chrono::seconds(4'000'000'000LL) + std::chrono::nanoseconds(5 * unit));
                CHECK(rec.data.empty());
                REQUIRE(r.next(rec));
                CHECK(rec.data.size() == 1000);
                CHECK(rec.original_length == 1500);
                CHECK_FALSE(r.next(rec));
                CHECK_FALSE(r.error());
                CHECK(r.offset() == f.size());
            }
        }
    }

    TEST_CASE("the FCS bits of the link type field are kept apart") {
        const bytes f = hand_file(0xA1B2C3D4U, std::endian::little, 65535, 0x1000'0001U, {});
        auto r = cn::pcap_reader::from_memory(cspan(f));
        CHECK(r.link_type() == cn::pcap_link_type::ethernet);
        CHECK(r.header().link_type_field == 0x1000'0001U);
    }

    TEST_CASE("truncated at every byte offset: the records before the cut and then truncated_file") {
        const bytes f = hand_file(0xA1B23C4DU, std::endian::little, 256, 1,
                                  {{1, 10, 30, 30, 30}, {2, 20, 0, 0, 0}, {3, 30, 45, 60, 45}, {4, 40, 9, 9, 9}});
        // Record boundaries: the offsets at which a cut leaves only whole records.
        std::vector<std::size_t> ends{24};
        for (const std::size_t len : {30U, 0U, 45U, 9U}) ends.push_back(ends.back() + 16 + len);
        REQUIRE(ends.back() == f.size());
        temp_file tf("cut.pcap");
        for (std::size_t cut = 0; cut <= f.size(); ++cut) {
            CAPTURE(cut);
            const std::span<const std::byte> part = cspan(f).first(cut);
            std::size_t whole = 0;
            while (whole + 1 < ends.size() && ends[whole + 1] <= cut) ++whole;
            const bool clean = cut >= 24 && ends[whole] == cut;

            const auto check_reader = [&](cn::pcap_reader& r) {
                std::size_t n = 0;
                for (cn::pcap_record rec; r.next(rec);) {
                    ++n;
                    CHECK(rec.timestamp == std::chrono::seconds(n) + std::chrono::nanoseconds(n * 10));
                }
                CHECK(n == whole);
                if (clean) {
                    CHECK_FALSE(r.error());
                } else {
                    CHECK(r.error() == cn::errc::truncated_file);
                    CHECK(r.offset() == ends[whole]);
                }
            };

            std::error_code ec;
            auto mr = cn::pcap_reader::from_memory(part, ec);
            write_file(tf.path, part);
            std::error_code fec;
            auto fr = cn::pcap_reader::open(tf.path, fec);
            if (cut < 24) {
                CHECK(ec == cn::errc::truncated_file);
                CHECK_FALSE(mr.is_open());
                CHECK(fec == cn::errc::truncated_file);
                CHECK_FALSE(fr.is_open());
                CHECK_THROWS_AS((void)cn::pcap_reader::from_memory(part), std::system_error);
                continue;
            }
            REQUIRE_FALSE(ec);
            REQUIRE_FALSE(fec);
            check_reader(mr);
            check_reader(fr);
            // The same through for_each_pcap_record.
            std::size_t n = 0;
            const std::error_code e = cn::for_each_pcap_record(part, [&](cn::pcap_link_type lt, const cn::pcap_record&) {
                CHECK(lt == cn::pcap_link_type::ethernet);
                ++n;
            });
            CHECK(n == whole);
            CHECK(e == (clean ? std::error_code{} : make_error_code(cn::errc::truncated_file)));
        }
    }

    TEST_CASE("a record longer than the snaplen or the configured maximum is refused") {
        SUBCASE("longer than the snaplen") {
            const bytes f = hand_file(0xA1B2C3D4U, std::endian::big, 64, 1, {{1, 0, 64, 64, 64}, {2, 0, 65, 65, 65}});
            auto r = cn::pcap_reader::from_memory(cspan(f));
            cn::pcap_record rec;
            CHECK(r.next(rec));
            CHECK_FALSE(r.next(rec));
            CHECK(r.error() == cn::errc::bad_file_format);
            CHECK(r.offset() == 24 + 16 + 64);
            CHECK(r.record_count() == 1);
            CHECK_FALSE(r.next(rec));  // the error sticks

            auto lenient = cn::pcap_reader::from_memory(cspan(f), {.enforce_snaplen = false});
            CHECK(lenient.next(rec));
            CHECK(lenient.next(rec));
            CHECK(rec.data.size() == 65);
            CHECK_FALSE(lenient.next(rec));
            CHECK_FALSE(lenient.error());
        }
        SUBCASE("a huge incl_len in a file with a huge snaplen: no allocation, an error") {
            const bytes f = hand_file(0xA1B2C3D4U, std::endian::little, 0xFFFFFFFFU, 1,
                                      {{1, 0, 10, 10, 10}, {2, 0, 0xFFFFFFF0U, 0xFFFFFFF0U, 16}});
            temp_file tf("huge.pcap");
            write_file(tf.path, cspan(f));
            auto r = cn::pcap_reader::open(tf.path);
            cn::pcap_record rec;
            CHECK(r.next(rec));
            CHECK_FALSE(r.next(rec));
            CHECK(r.error() == cn::errc::capacity_exceeded);
            auto m = cn::pcap_reader::from_memory(cspan(f));
            CHECK(m.next(rec));
            CHECK_FALSE(m.next(rec));
            CHECK(m.error() == cn::errc::capacity_exceeded);
        }
        SUBCASE("a configured maximum below the snaplen") {
            const bytes f = hand_file(0xA1B2C3D4U, std::endian::little, 65535, 1, {{1, 0, 100, 100, 100}, {2, 0, 101, 101, 101}});
            auto r = cn::pcap_reader::from_memory(cspan(f), {.max_record_length = 100});
            cn::pcap_record rec;
            CHECK(r.next(rec));
            CHECK_FALSE(r.next(rec));
            CHECK(r.error() == cn::errc::capacity_exceeded);
        }
    }

    TEST_CASE("files that are not classic pcap are refused") {
        bytes f = hand_file(0xA1B2C3D4U, std::endian::little, 65535, 1, {});
        SUBCASE("bad magic") {
            f[0] = std::byte{0x00};
            std::error_code ec;
            auto r = cn::pcap_reader::from_memory(cspan(f), ec);
            CHECK(ec == cn::errc::bad_file_format);
            CHECK_FALSE(r.is_open());
            temp_file tf("bad.pcap");
            write_file(tf.path, cspan(f));
            CHECK_FALSE(cn::pcap_reader::open(tf.path, ec).is_open());
            CHECK(ec == cn::errc::bad_file_format);
            try {
                (void)cn::pcap_reader::open(tf.path);
                FAIL("no exception");
            } catch (const std::system_error& e) {
                CHECK(e.code() == cn::errc::bad_file_format);
            }
            CHECK(cn::parse_pcap_file_header(cspan(f)).error() == cn::parse_error::bad_magic);
        }
        SUBCASE("text, shorter than a header") {
            const std::string text = "GET / HTTP/1.1\r\n";
            std::error_code ec;
            (void)cn::pcap_reader::from_memory(std::as_bytes(std::span(text)), ec);
            CHECK(ec == cn::errc::bad_file_format);
        }
        SUBCASE("pcapng and the patched-libpcap format are unsupported") {
            put32(f, 0, 0x0A0D0D0AU, std::endian::little);
            std::error_code ec;
            (void)cn::pcap_reader::from_memory(cspan(f), ec);
            CHECK(ec == cn::errc::unsupported);
            put32(f, 0, 0xA1B2CD34U, std::endian::big);
            (void)cn::pcap_reader::from_memory(cspan(f), ec);
            CHECK(ec == cn::errc::unsupported);
        }
        SUBCASE("version 3") {
            put16(f, 4, 3, std::endian::little);
            std::error_code ec;
            (void)cn::pcap_reader::from_memory(cspan(f), ec);
            CHECK(ec == cn::errc::bad_file_format);
        }
        SUBCASE("a file that does not exist") {
            std::error_code ec;
            auto r = cn::pcap_reader::open("/nonexistent/clusternet/no.pcap", ec);
            CHECK(ec == std::errc::no_such_file_or_directory);
            CHECK_FALSE(r.is_open());
            CHECK_THROWS_AS((void)cn::pcap_reader::open("/nonexistent/clusternet/no.pcap"), std::system_error);
        }
    }

    TEST_CASE("many records through the file buffer and a moved reader") {
        // Records of 1..1500 bytes, about 1.5 MB: the 64 KiB buffer refills and compacts often.
        temp_file tf("many.pcap");
        std::vector<std::uint32_t> sizes;
        {
            auto w = cn::pcap_writer::create(tf.path, cn::pcap_link_type::raw, 1500);
            bytes data(1500);
            for (std::uint32_t i = 0; i < 2000; ++i) {
                const std::uint32_t len = 1 + (i * 7919U) % 1500;
                for (std::uint32_t j = 0; j < len; ++j) data[j] = std::byte(static_cast<unsigned char>(i + j));
                w.write(std::chrono::seconds(i), std::span<const std::byte>(data).first(len));
                sizes.push_back(len);
            }
        }  // the destructor flushes
        auto r = cn::pcap_reader::open(tf.path, {.max_record_length = 1500});
        std::size_t n = 0;
        cn::pcap_record rec;
        bool ok = true;
        while (r.next(rec)) {
            ok = ok && rec.data.size() == sizes[n] && rec.timestamp == std::chrono::seconds(n);
            for (std::size_t j = 0; j < rec.data.size(); ++j)
                ok = ok && rec.data[j] == std::byte(static_cast<unsigned char>(n + j));
            ++n;
            if (n == 1000) {
                cn::pcap_reader moved(std::move(r));
                r = std::move(moved);
            }
        }
        CHECK(ok);
        CHECK(n == sizes.size());
        CHECK_FALSE(r.error());
    }

    TEST_CASE("reading from a file descriptor the reader does not own") {
        temp_file tf("fd.pcap");
        const auto packets = sample_packets();
        {
            auto w = cn::pcap_writer::create(tf.path, cn::pcap_link_type::ethernet);
            for (const auto& p : packets) w.write(1s, cspan(p));
        }
        const int fd = ::open(tf.path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        {
            auto r = cn::pcap_reader::from_fd(fd);
            std::size_t n = 0;
            for (cn::pcap_record rec; r.next(rec);) ++n;
            CHECK(n == packets.size());
        }
        CHECK(::close(fd) == 0);  // still open: the reader did not close it
    }

    TEST_CASE("the writer cuts records to the snaplen and checks timestamps") {
        temp_file tf("snap.pcap");
        bytes data(100, std::byte{0xAB});
        {
            std::error_code ec;
            auto w = cn::pcap_writer::create(tf.path, cn::pcap_link_type::ethernet, 64, ec);
            REQUIRE_FALSE(ec);
            w.write(5s, cspan(data), ec);
            CHECK_FALSE(ec);
            w.write(6s, cspan(data).first(10), 1514, ec);
            CHECK_FALSE(ec);
            w.write(-1ns, cspan(data), ec);
            CHECK(ec == cn::errc::invalid_argument);
            w.write(std::chrono::seconds(std::int64_t{1} << 32), cspan(data), ec);
            CHECK(ec == cn::errc::invalid_argument);
            CHECK_THROWS_AS(w.write(-5s, cspan(data)), std::system_error);
            CHECK(w.record_count() == 2);
            w.close(ec);
            CHECK_FALSE(ec);
            CHECK_FALSE(w.is_open());
        }
        const bytes f = read_file(tf.path);
        CHECK(f.size() == 24 + 16 + 64 + 16 + 10);
        auto r = cn::pcap_reader::from_memory(cspan(f));
        CHECK(r.snaplen() == 64);
        cn::pcap_record rec;
        REQUIRE(r.next(rec));
        CHECK(rec.data.size() == 64);
        CHECK(rec.original_length == 100);
        REQUIRE(r.next(rec));
        CHECK(rec.data.size() == 10);
        CHECK(rec.original_length == 1514);
        CHECK_FALSE(r.next(rec));
        CHECK_FALSE(r.error());
    }

    TEST_CASE("create fails cleanly where it cannot write") {
        std::error_code ec;
        auto w = cn::pcap_writer::create("/nonexistent/clusternet/out.pcap", cn::pcap_link_type::ethernet, 65535, ec);
        CHECK(ec == std::errc::no_such_file_or_directory);
        CHECK_FALSE(w.is_open());
        CHECK_THROWS_AS((void)cn::pcap_writer::create("/nonexistent/clusternet/out.pcap", cn::pcap_link_type::ethernet),
                        std::system_error);
    }

    TEST_CASE("parse_pcap_packet follows the link type") {
        const auto packets = sample_packets();
        const std::span<const std::byte> eth_v4 = cspan(packets[0]);
        const std::span<const std::byte> eth_v6 = cspan(packets[2]);
        const auto ip_v4 = eth_v4.subspan(14);
        const auto ip_v6 = eth_v6.subspan(14);

        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ethernet, eth_v4)->is_tcp());
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::raw, ip_v4)->is_tcp());
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::raw, ip_v6)->is_udp());
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ipv4, ip_v4)->family() == cn::ip_family::v4);
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ipv6, ip_v6)->family() == cn::ip_family::v6);
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ipv4, ip_v6).error() == cn::parse_error::bad_version);
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ipv6, ip_v4).error() == cn::parse_error::bad_version);
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::ipv6, ip_v4.first(0)).error() == cn::parse_error::truncated);
        CHECK(cn::parse_pcap_packet(cn::pcap_link_type::raw, eth_v4).error() != cn::parse_error::none);
        CHECK(cn::parse_pcap_packet(static_cast<cn::pcap_link_type>(113), eth_v4).error() ==
              cn::parse_error::unsupported_link_type);
        CHECK_FALSE(cn::is_supported(static_cast<cn::pcap_link_type>(113)));
        CHECK(cn::to_string(cn::pcap_link_type::ethernet) == "ethernet");
        CHECK(cn::to_string(static_cast<cn::pcap_link_type>(113)) == "other");

        // Mutable records parse into packets that rewrite.hpp can change.
        bytes copy = packets[1];
        const auto p = cn::parse_pcap_packet(cn::pcap_link_type::ethernet, std::span<std::byte>(copy));
        REQUIRE(p.has_value());
        CHECK(p->tcp().sport() == 80);
    }
}
