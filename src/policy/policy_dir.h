// The policy folder (--policy-dir, default /etc/capscope/policies): every
// *.yaml and *.yml file in it holds one or more policies. `capscope policy`
// works on it stand-alone; the agent loads it at start and on SIGHUP and its
// API adds and deletes through the same functions, so both agree on names and
// conflicts.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/compiled.h"
#include "policy/tracing_policy.h"

namespace capscope::policy {

inline constexpr const char* kDefaultPolicyDir = "/etc/capscope/policies";

struct LoadedPolicy {
  TracingPolicy policy;  // policy.file: the file's path
  CompiledPolicy compiled;
};

struct PolicyDirContents {
  // By file name, then in file order. A name is loaded once: a later file
  // that repeats it is reported in errors instead.
  std::vector<LoadedPolicy> policies;
  // One line per file that could not be loaded (its PolicyError), or name
  // repeated; those policies are left out, the others load.
  std::vector<std::string> errors;
};

// Reads every policy file in dir (not its subfolders; hidden files and other
// extensions are skipped). A folder that does not exist holds no policy. An
// unreadable folder is one line in errors.
PolicyDirContents load_policy_dir(const std::string& dir);

// A request the folder cannot take (a name already there, a file that holds
// other policies too): usage() true; or an I/O failure: usage() false.
class PolicyDirError : public std::runtime_error {
 public:
  PolicyDirError(bool usage, const std::string& what) : std::runtime_error(what), usage_(usage) {}
  [[nodiscard]] bool usage() const { return usage_; }

 private:
  bool usage_;
};

struct AddResult {
  std::string path;                        // the file written
  std::vector<std::string> added;          // policy names that are new
  std::vector<std::string> replaced;       // names that were there before
  std::vector<std::string> removed_files;  // files whose policies were all replaced
};

// Validates text (parse and compile; PolicyError names `source` and the line)
// and writes it as dir/file_name (".yaml" appended without a YAML extension),
// atomically. A policy name already in the folder is refused unless replace;
// with replace, the file that held it goes (it must hold nothing else).
// Throws PolicyError or PolicyDirError.
AddResult add_policy(const std::string& dir, std::string_view text, const std::string& source,
                     std::string file_name, bool replace);

// Removes policy `name`: its file, or its document from a file holding
// several. Returns the file it was in. Throws PolicyDirError.
std::string delete_policy(const std::string& dir, const std::string& name);

}  // namespace capscope::policy
