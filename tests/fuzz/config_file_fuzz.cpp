// libFuzzer target: the configuration file reader. Any text either parses into entries whose
// keys are valid and whose lines are in order, or is refused with a config_error; the typed
// getters and words() then refuse or convert every value without crashing.
#include <clusternet/config_file.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace cn = clusternet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const auto f = cn::config_file::parse(text, "fuzz");
        std::size_t last = 0;
        for (const auto& e : f.entries()) {
            if (e.key.empty() || e.line <= last || e.key.find('=') != std::string::npos) std::abort();
            last = e.line;
            for (const auto w : cn::config_file::words(e.value)) {
                if (w.empty()) std::abort();
                try { (void)f.to_ipv4(e, w); } catch (const cn::config_error&) {}
                try { (void)f.to_mac(e, w); } catch (const cn::config_error&) {}
                try { (void)f.to_uint(e, w, 1, 65535); } catch (const cn::config_error&) {}
            }
            try { (void)f.get_bool(e.key, false); } catch (const cn::config_error&) {}
        }
    } catch (const cn::config_error&) {
    }
    return 0;
}
