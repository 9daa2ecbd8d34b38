// Tests of the configuration file reader: values, repeats, and errors that name file and line.
#include <clusternet/config_file.hpp>

#include <doctest/doctest.h>

using namespace clusternet;

TEST_SUITE("config_file") {

TEST_CASE("keys, values, comments, repeated keys, typed getters") {
    const auto f = config_file::parse(
        "# a dispatcher\n"
        "mode = nat   # NAT\n"
        "\n"
        "vip=192.0.2.10\n"
        "port = 80\r\n"
        "backend = 10.0.0.11 02:00:00:00:01:01 8080\n"
        "backend = 10.0.0.12\n"
        "verify = yes\n",
        "t.conf");
    CHECK(f.entries().size() == 6);
    CHECK(f.get_string("mode", "") == "nat");
    CHECK(f.get_ipv4("vip") == ipv4_address(192, 0, 2, 10));
    CHECK(f.get_uint("port", 0, 1, 65535) == 80);
    CHECK(f.get_uint("absent", 7, 1, 9) == 7);
    CHECK(f.get_bool("verify", false));
    const auto b = f.all("backend");
    REQUIRE(b.size() == 2);
    CHECK(b[0]->line == 6);
    const auto w = config_file::words(b[0]->value);
    REQUIRE(w.size() == 3);
    CHECK(f.to_mac(*b[0], w[1]).to_string() == "02:00:00:00:01:01");
    CHECK(f.to_uint(*b[0], w[2], 1, 65535) == 8080);
    CHECK_NOTHROW(f.reject_unknown({"mode", "vip", "port", "backend", "verify"}));
}

TEST_CASE("errors name the file and the line and say what was expected") {
    CHECK_THROWS_WITH_AS(config_file::parse("a = 1\njunk\n", "x.conf"), "x.conf:2: expected `key = value`, got \"junk\"", config_error);
    CHECK_THROWS_WITH_AS(config_file::parse("Bad = 1\n", "x.conf"), doctest::Contains("x.conf:1: \"Bad\" is not a key"), config_error);
    const auto f = config_file::parse("port = 99999\nvip = 10.0.0.300\nvrfy = 1\nflag = maybe\n", "y.conf");
    CHECK_THROWS_WITH_AS((void)f.get_uint("port", 0, 1, 65535), "y.conf:1: port: \"99999\" is not a whole number from 1 to 65535", config_error);
    CHECK_THROWS_WITH_AS((void)f.get_ipv4("vip"), "y.conf:2: vip: \"10.0.0.300\" is not an IPv4 address", config_error);
    CHECK_THROWS_WITH_AS(f.reject_unknown({"port", "vip", "flag"}), doctest::Contains("y.conf:3: unknown key \"vrfy\""), config_error);
    CHECK_THROWS_WITH_AS((void)f.get_bool("flag", false), doctest::Contains("y.conf:4: flag"), config_error);
    CHECK_THROWS_WITH_AS((void)f.require("mode"), "y.conf: the key \"mode\" is required", config_error);
    CHECK_THROWS_AS(config_file::load("/nonexistent/clusternet.conf"), config_error);
}

TEST_CASE("an address of either family: IPv4 comes back v4-mapped, IPv6 as it is, anything else refused") {
    const auto f = config_file::parse("a = 192.0.2.10\nb = fd00:cb:100::1\nc = fd00::zz\nd = 300.1.1.1\n", "z.conf");
    const auto& a = f.require("a");
    CHECK(f.to_address(a, a.value) == ipv6_address::v4_mapped(ipv4_address(192, 0, 2, 10)));
    const auto& b = f.require("b");
    CHECK(f.to_address(b, b.value) == ipv6_address::parse("fd00:cb:100::1").value());
    CHECK_FALSE(f.to_address(b, b.value).is_v4_mapped());
    const auto& c = f.require("c");
    CHECK_THROWS_WITH_AS((void)f.to_address(c, c.value), "z.conf:3: c: \"fd00::zz\" is not an IPv4 or IPv6 address", config_error);
    const auto& d = f.require("d");
    CHECK_THROWS_WITH_AS((void)f.to_address(d, d.value), "z.conf:4: d: \"300.1.1.1\" is not an IPv4 or IPv6 address", config_error);
}

}  // TEST_SUITE
