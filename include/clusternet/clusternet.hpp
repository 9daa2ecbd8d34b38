// clusternet/clusternet.hpp -- every public part of clusternet.
#pragma once

#include <clusternet/address.hpp>
#include <clusternet/arp.hpp>
#include <clusternet/byteorder.hpp>
#include <clusternet/checksum.hpp>
#include <clusternet/config.hpp>
#include <clusternet/error.hpp>
#include <clusternet/ethernet.hpp>
#include <clusternet/flow_key.hpp>
#include <clusternet/icmp.hpp>
#include <clusternet/ipv4.hpp>
#include <clusternet/ipv6.hpp>
#include <clusternet/packet.hpp>
#include <clusternet/packet_builder.hpp>
#include <clusternet/packet_checksum.hpp>
#include <clusternet/pcap.hpp>
#include <clusternet/rewrite.hpp>
#include <clusternet/session_table.hpp>
#include <clusternet/sharded_session_table.hpp>
#include <clusternet/tcp.hpp>
#include <clusternet/tcp_lifecycle.hpp>
#include <clusternet/udp.hpp>
