// cn-lsnat: the LSNAT dispatcher (seed 001, RFC 2391) -- destination NAT inbound and source NAT
// on the replies (mode nat), or full NAT (mode fullnat: the back ends see the dispatcher's
// address and need no route through it). See examples/l4_dispatcher.hpp and docs/dispatcher.md.
#include "l4_dispatcher.hpp"

int main(int argc, char** argv) {
    return l4::main(argc, argv, "cn-lsnat", "layer-4 dispatcher, NAT (LSNAT, RFC 2391) or full NAT",
                    {{"nat", clusternet::forwarding_mode::nat}, {"fullnat", clusternet::forwarding_mode::full_nat}});
}
