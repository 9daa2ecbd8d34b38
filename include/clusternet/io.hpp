// clusternet/io.hpp -- every I/O binding in one include (docs/io.md):
//
//   io/af_packet.hpp     packet_rx_ring (TPACKET_V3), packet_tx_ring (TPACKET_V2),
//                        packet_socket (recvmmsg / sendmmsg), PACKET_FANOUT
//   io/raw_socket.hpp    raw_ip_socket: raw IPv4, IP_HDRINCL, batches (IP-in-IP, protocol 253)
//   io/tun.hpp           tun_queue: TUN / TAP, multi-queue
//   io/tpacket_block.hpp the validated TPACKET_V3 block walker (no system calls)
//
// Kept out of clusternet.hpp on purpose: these pull in Boost.Asio and Linux headers, which the
// packet, checksum and table parts do not need.
#pragma once

#include <clusternet/io/af_packet.hpp>
#include <clusternet/io/raw_socket.hpp>
#include <clusternet/io/tpacket_block.hpp>
#include <clusternet/io/tun.hpp>
