// clusternet/clusternet.hpp -- every public part of clusternet that needs no I/O library.
//
// The parts built on Boost.Asio are included on their own, so that code which only parses,
// rewrites or tracks packets does not pull Asio in:
//   <clusternet/io.hpp>             AF_PACKET rings, raw IP sockets, TUN/TAP
//   <clusternet/io/dispatch_loop.hpp>  a dispatcher bound to an interface
//   <clusternet/load_reporter.hpp>  DPR load reports over multicast, liveness
//   <clusternet/health_check.hpp>   TCP / HTTP health checks
//   <clusternet/metrics.hpp>        Prometheus text and its HTTP endpoint
//   <clusternet/mux_channel.hpp>    the SAPS channel over a socket
//   <clusternet/saps_io_server.hpp> <clusternet/saps_app_node.hpp>  the SAPS cluster
//   <clusternet/splice_relay.hpp>   TCP splicing between two sockets (splice(2) or copy)
// tests/static/all_headers.cpp includes every header together, so that no two clash.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/arp.hpp>
#include <clusternet/byteorder.hpp>
#include <clusternet/checksum.hpp>
#include <clusternet/cluster_dispatch.hpp>
#include <clusternet/cluster_view.hpp>
#include <clusternet/config.hpp>
#include <clusternet/config_file.hpp>
#include <clusternet/credit_flow.hpp>
#include <clusternet/dispatcher.hpp>
#include <clusternet/error.hpp>
#include <clusternet/ethernet.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/forwarding.hpp>
#include <clusternet/handoff_state.hpp>
#include <clusternet/host_load.hpp>
#include <clusternet/http_head.hpp>
#include <clusternet/icmp.hpp>
#include <clusternet/ipv4.hpp>
#include <clusternet/ipv6.hpp>
#include <clusternet/lccp.hpp>
#include <clusternet/load_report.hpp>
#include <clusternet/member_sink.hpp>
#include <clusternet/mux_endpoint.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>
#include <clusternet/rewrite.hpp>
#include <clusternet/saps_protocol.hpp>
#include <clusternet/scheduler.hpp>
#include <clusternet/schedulers/content.hpp>
#include <clusternet/schedulers/dpr.hpp>
#include <clusternet/schedulers/hashing.hpp>
#include <clusternet/schedulers/least_connections.hpp>
#include <clusternet/schedulers/maglev.hpp>
#include <clusternet/schedulers/random.hpp>
#include <clusternet/schedulers/round_robin.hpp>
#include <clusternet/session_table.hpp>
#include <clusternet/sharded_session_table.hpp>
#include <clusternet/sim/cluster_sim.hpp>
#include <clusternet/siphash.hpp>
#include <clusternet/tcp.hpp>
#include <clusternet/tcp_lifecycle.hpp>
#include <clusternet/tcp_repair.hpp>
#include <clusternet/udp.hpp>
