// The handoff forwarder's nftables map, edited over netlink (cn-handoff-node).
//
// The table is made once at start by the `nft` program (`nft -f -`, the readable way) and
// deleted at exit; the per-handoff edits -- one element added, one deleted -- go straight to the
// kernel as one nfnetlink batch each (NFT_MSG_NEWSETELEM / NFT_MSG_DELSETELEM, as
// net/netfilter/nf_tables_api.c takes them). libnftables did the same edit in about 0.23 ms,
// most of it re-reading the ruleset into its cache on every command; a batch is one sendmsg()
// and one acknowledgement.
//
//   table netdev cn_handoff {
//     map owners { type ipv4_addr . inet_service : ipv4_addr; flags timeout; timeout Ns; }
//     chain in { type filter hook ingress device DEV priority 0; policy accept;
//       ip daddr VIP tcp dport PORT fwd ip to ip saddr . tcp sport map @owners device DEV } }
//
// A key of the concatenation `ipv4_addr . inet_service` is 8 bytes: each part in network order,
// padded to 4 bytes (nftables keeps concatenations in 32-bit registers); the value, 4 bytes.
// Elements take the map's timeout.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/byteorder.hpp>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace examples {

class nft_owner_map {
public:
    static constexpr const char* table = "cn_handoff";
    static constexpr const char* map = "owners";

    /// Makes the table (replacing one left by an earlier run). Throws std::runtime_error with
    /// nft's message when it cannot.
    nft_owner_map(const std::string& device, clusternet::ipv4_address vip, std::uint16_t port, int timeout_s) {
        (void)run_nft("delete table netdev " + std::string(table) + "\n", true);
        const std::string text = "table netdev " + std::string(table) + " {\n  map " + map +
                                 " { type ipv4_addr . inet_service : ipv4_addr; flags timeout; timeout " +
                                 std::to_string(timeout_s) + "s; }\n  chain in {\n    type filter hook ingress device \"" + device +
                                 "\" priority 0; policy accept;\n    ip daddr " + vip.to_string() + " tcp dport " +
                                 std::to_string(port) + " fwd ip to ip saddr . tcp sport map @" + map + " device \"" + device +
                                 "\"\n  }\n}\n";
        if (!run_nft(text, false)) throw std::runtime_error("cannot create the forwarder's nftables table: " + error_);
        fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (fd_ < 0) throw std::runtime_error(std::string("netlink socket: ") + std::strerror(errno));
        sockaddr_nl sa{};
        sa.nl_family = AF_NETLINK;
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
            throw std::runtime_error(std::string("bind netlink socket: ") + std::strerror(errno));
        const timeval tv{1, 0};  // an acknowledgement that never comes must not hang the node
        (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~nft_owner_map() {
        if (fd_ >= 0) ::close(fd_);
        (void)run_nft("delete table netdev " + std::string(table) + "\n", true);
    }
    nft_owner_map(const nft_owner_map&) = delete;
    nft_owner_map& operator=(const nft_owner_map&) = delete;

    /// Adds (client, port) -> owner; with `replace`, deletes the client's old element in the same
    /// batch first (it must exist). False, with error() saying why, when the kernel refuses.
    bool add(clusternet::ipv4_address client, std::uint16_t port, clusternet::ipv4_address owner, bool replace = false) {
        begin();
        if (replace) element(NFT_MSG_DELSETELEM, client, port, nullptr);
        element(NFT_MSG_NEWSETELEM, client, port, &owner);
        return commit();
    }
    /// Deletes the client's element. False (error() says why) when there is none.
    bool remove(clusternet::ipv4_address client, std::uint16_t port) {
        begin();
        element(NFT_MSG_DELSETELEM, client, port, nullptr);
        return commit();
    }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }

private:
    // --- the batch being built ---
    void begin() {
        len_ = 0;
        first_seq_ = seq_;
        batch_marker(NFNL_MSG_BATCH_BEGIN);
    }
    std::size_t header(std::uint16_t type, std::uint16_t flags, std::uint8_t family, std::uint16_t res_id) {
        const std::size_t at = len_;
        auto* h = reinterpret_cast<nlmsghdr*>(buf_.data() + at);
        h->nlmsg_len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
        h->nlmsg_type = type;
        h->nlmsg_flags = flags;
        h->nlmsg_seq = seq_++;
        h->nlmsg_pid = 0;
        auto* g = reinterpret_cast<nfgenmsg*>(buf_.data() + at + NLMSG_HDRLEN);
        g->nfgen_family = family;
        g->version = NFNETLINK_V0;
        g->res_id = htons(res_id);
        len_ += h->nlmsg_len;
        return at;
    }
    void batch_marker(std::uint16_t type) { (void)header(type, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES); }
    std::size_t attr_begin(std::uint16_t type) {
        const std::size_t at = len_;
        auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
        a->nla_type = type;
        len_ += NLA_HDRLEN;
        return at;
    }
    void attr_end(std::size_t at) {
        reinterpret_cast<nlattr*>(buf_.data() + at)->nla_len = static_cast<std::uint16_t>(len_ - at);
        len_ = NLA_ALIGN(len_);
    }
    void attr(std::uint16_t type, const void* data, std::size_t n) {
        const std::size_t at = attr_begin(type);
        std::memcpy(buf_.data() + len_, data, n);
        len_ += n;
        attr_end(at);
        std::memset(buf_.data() + at + NLA_HDRLEN + n, 0, NLA_ALIGN(n) - n);  // padding
    }
    void element(std::uint16_t msg, clusternet::ipv4_address client, std::uint16_t port, const clusternet::ipv4_address* owner) {
        const std::uint16_t flags = NLM_F_REQUEST | NLM_F_ACK | (msg == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
        const std::size_t at = header(static_cast<std::uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg), flags, NFPROTO_NETDEV, 0);
        attr(NFTA_SET_ELEM_LIST_TABLE, table, std::strlen(table) + 1);
        attr(NFTA_SET_ELEM_LIST_SET, map, std::strlen(map) + 1);
        const std::size_t list = attr_begin(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
        const std::size_t elem = attr_begin(NFTA_LIST_ELEM | NLA_F_NESTED);
        std::array<std::byte, 8> key{};
        clusternet::store_be32(key.data(), client.value);
        clusternet::store_be16(key.data() + 4, port);
        const std::size_t k = attr_begin(NFTA_SET_ELEM_KEY | NLA_F_NESTED);
        attr(NFTA_DATA_VALUE, key.data(), key.size());
        attr_end(k);
        if (owner != nullptr) {
            std::array<std::byte, 4> v{};
            clusternet::store_be32(v.data(), owner->value);
            const std::size_t d = attr_begin(NFTA_SET_ELEM_DATA | NLA_F_NESTED);
            attr(NFTA_DATA_VALUE, v.data(), v.size());
            attr_end(d);
        }
        attr_end(elem);
        attr_end(list);
        reinterpret_cast<nlmsghdr*>(buf_.data() + at)->nlmsg_len = static_cast<std::uint32_t>(len_ - at);
        ++acks_wanted_;
    }
    /// Sends the batch and reads one acknowledgement per element message; the first error wins.
    bool commit() {
        batch_marker(NFNL_MSG_BATCH_END);
        const std::uint32_t last = seq_;
        int wanted = acks_wanted_;
        acks_wanted_ = 0;
        sockaddr_nl to{};
        to.nl_family = AF_NETLINK;
        if (::sendto(fd_, buf_.data(), len_, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) != static_cast<ssize_t>(len_)) {
            error_ = std::string("netlink sendto: ") + std::strerror(errno);
            return false;
        }
        error_.clear();
        std::array<std::byte, 8192> rx;
        while (wanted > 0) {
            const ssize_t n = ::recv(fd_, rx.data(), rx.size(), 0);
            if (n < 0) {
                error_ = std::string("netlink: no acknowledgement: ") + std::strerror(errno);
                return false;
            }
            for (std::size_t off = 0; off + NLMSG_HDRLEN <= static_cast<std::size_t>(n);) {
                nlmsghdr h;
                std::memcpy(&h, rx.data() + off, sizeof h);
                if (h.nlmsg_len < NLMSG_HDRLEN || off + h.nlmsg_len > static_cast<std::size_t>(n)) break;
                const std::size_t at = off;
                off += NLMSG_ALIGN(h.nlmsg_len);
                if (h.nlmsg_seq < first_seq_ || h.nlmsg_seq >= last || h.nlmsg_type != NLMSG_ERROR ||
                    h.nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr))
                    continue;
                nlmsgerr err;
                std::memcpy(&err, rx.data() + at + NLMSG_HDRLEN, sizeof err);
                const nlmsgerr* e = &err;
                --wanted;
                if (e->error != 0 && error_.empty())
                    error_ = std::string("nftables refused the map edit: ") + std::strerror(-e->error);
            }
        }
        return error_.empty();
    }

    bool run_nft(const std::string& text, bool quiet) {
        const std::string cmd = std::string("nft -f - ") + (quiet ? ">/dev/null 2>&1" : "2>&1");
        FILE* p = ::popen(cmd.c_str(), "w");
        if (p == nullptr) {
            error_ = "cannot run nft: " + std::string(std::strerror(errno));
            return false;
        }
        std::fputs(text.c_str(), p);
        const int rc = ::pclose(p);
        error_ = rc == 0 ? "" : "nft -f - failed (status " + std::to_string(rc) + "; is nftables installed?)";
        return rc == 0;
    }

    int fd_ = -1;
    std::array<std::byte, 1024> buf_{};
    std::size_t len_ = 0;
    std::uint32_t seq_ = 1, first_seq_ = 1;
    int acks_wanted_ = 0;
    std::string error_;
};

}  // namespace examples
