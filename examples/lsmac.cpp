// cn-lsmac: the LSMAC dispatcher (seed 001) -- direct routing by MAC rewriting, or LVS-style
// IP-in-IP tunnelling (mode tun). Back ends hold the cluster address themselves and answer
// clients directly. See examples/l4_dispatcher.hpp and docs/dispatcher.md.
#include "l4_dispatcher.hpp"

int main(int argc, char** argv) {
    return l4::main(argc, argv, "cn-lsmac", "layer-4 dispatcher, direct routing (LSMAC) or IP-in-IP",
                    {{"dr", clusternet::forwarding_mode::direct_routing}, {"tun", clusternet::forwarding_mode::tunnel}});
}
