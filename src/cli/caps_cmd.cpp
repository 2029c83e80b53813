// capscope caps: the capability table, with this kernel's last capability.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "tables/capabilities.h"

namespace capscope::cli {

Runner add_caps_command(CLI::App& app, const GlobalOptions&) {
  CLI::App* c = app.add_subcommand("caps", "List capabilities: number, name, what each guards");
  (void)c;
  return [] {
    int last = tables::kernel_last_cap();
    std::cout << fmt::format("{:>3}  {:<24} {}\n", "NR", "NAME", "GUARDS");
    for (const auto& cap : tables::all_capabilities()) {
      std::string note = last >= 0 && cap.number > last ? " (not in this kernel)" : "";
      std::cout << fmt::format("{:>3}  {:<24} {}{}\n", cap.number, cap.name, cap.guards, note);
    }
    int known = static_cast<int>(tables::all_capabilities().size()) - 1;
    for (int n = known + 1; n <= last; ++n)
      std::cout << fmt::format("{:>3}  {:<24} {}\n", n, tables::cap_name(n),
                               "newer than capscope's table");
    if (last >= 0) std::cout << fmt::format("this kernel's last capability: {}\n", last);
    return kExitOk;
  };
}

}  // namespace capscope::cli
