#include "policy/policy_dir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "util/yaml_tree.h"

namespace capscope::policy {

using util::load_yaml_documents;
using util::YamlError;
using util::YamlNodePtr;

namespace fs = std::filesystem;

namespace {

bool is_policy_file(const fs::path& p) {
  std::string name = p.filename().string();
  if (name.empty() || name.front() == '.') return false;
  auto ext = p.extension();
  return ext == ".yaml" || ext == ".yml";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PolicyDirError(false, fmt::format("{}: {}", path, std::strerror(errno)));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw PolicyDirError(false, fmt::format("{}: {}", path, std::strerror(errno)));
  return text;
}

// Writes a file next to its final name and renames it there, so the agent
// (reloading on SIGHUP) never reads half of one.
void write_atomically(const fs::path& path, std::string_view text) {
  fs::path tmp = path.parent_path() / fmt::format(".{}.tmp-{}", path.filename().string(), getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw PolicyDirError(false, fmt::format("{}: {}", tmp.string(), std::strerror(errno)));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw PolicyDirError(false, fmt::format("{}: {}", path.string(), ec.message()));
  }
}

std::vector<fs::path> policy_files(const std::string& dir, std::vector<std::string>* errors) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    errors->push_back(fmt::format("{}: {}", dir, ec.message()));
    return files;
  }
  for (const auto& entry : it)
    if (is_policy_file(entry.path()) && !entry.is_directory(ec)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// A file's text cut into its YAML documents at the lines that start one
// ("---" alone or followed by a space). Each piece keeps its own separator
// line, so joining the pieces gives the text back.
std::vector<std::string> split_documents(const std::string& text) {
  std::vector<std::string> docs(1);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    std::string_view line(text.data() + pos, end - pos);
    bool separator = line.starts_with("---") &&
                     (line.size() == 3 || line[3] == ' ' || line[3] == '\n' || line[3] == '\r');
    if (separator && !docs.back().empty()) docs.emplace_back();
    docs.back().append(line);
    pos = end;
  }
  return docs;
}

// The policy names in one piece of a file; empty for a piece holding no
// document (comments only).
std::vector<std::string> names_in(const std::string& piece, const std::string& file) {
  auto docs = load_yaml_documents(piece, kMaxDocuments);
  if (std::all_of(docs.begin(), docs.end(), [](const YamlNodePtr& d) { return d->is_null(); }))
    return {};
  std::vector<std::string> names;
  for (const auto& p : parse_policies(piece, file)) names.push_back(p.name);
  return names;
}

// The file's text without policy `name`, or nullopt if the file cannot be
// cut safely (its pieces do not parse to the same policies as the whole).
std::optional<std::string> without_policy(const std::string& text, const std::string& file,
                                          const std::string& name) {
  std::vector<std::string> whole;
  for (const auto& p : parse_policies(text, file)) whole.push_back(p.name);
  std::string kept;
  std::vector<std::string> seen;
  bool removed = false;
  try {
    for (const auto& piece : split_documents(text)) {
      auto names = names_in(piece, file);
      if (names.size() > 1) return std::nullopt;
      seen.insert(seen.end(), names.begin(), names.end());
      if (names.size() == 1 && names.front() == name) {
        removed = true;
        continue;
      }
      kept += piece;
    }
  } catch (const PolicyError&) {
    return std::nullopt;
  } catch (const YamlError&) {
    return std::nullopt;
  }
  if (!removed || seen != whole) return std::nullopt;
  return kept;
}

}  // namespace

PolicyDirContents load_policy_dir(const std::string& dir) {
  PolicyDirContents out;
  std::map<std::string, std::string> where;  // name -> file
  for (const auto& file : policy_files(dir, &out.errors)) {
    std::vector<LoadedPolicy> loaded;
    try {
      for (auto& p : load_policy_file(file.string())) {
        CompiledPolicy c = compile(p);
        loaded.push_back({std::move(p), std::move(c)});
      }
    } catch (const PolicyError& e) {
      out.errors.emplace_back(e.what());
      continue;
    }
    for (auto& l : loaded) {
      auto [it, fresh] = where.emplace(l.policy.name, file.string());
      if (!fresh) {
        out.errors.push_back(fmt::format("{}:{}: metadata.name: \"{}\" is already loaded from {}",
                                         file.string(), l.policy.line, l.policy.name, it->second));
        continue;
      }
      out.policies.push_back(std::move(l));
    }
  }
  return out;
}

AddResult add_policy(const std::string& dir, std::string_view text, const std::string& source,
                     std::string file_name, bool replace) {
  std::vector<TracingPolicy> incoming = parse_policies(text, source);
  for (const auto& p : incoming) compile(p);
  if (file_name.empty() || file_name.front() == '.' || file_name.find('/') != std::string::npos)
    throw PolicyDirError(true, fmt::format("\"{}\" cannot name a policy file", file_name));
  if (!is_policy_file(file_name)) file_name += ".yaml";
  fs::path dest = fs::path(dir) / file_name;

  std::set<std::string> names;
  for (const auto& p : incoming) names.insert(p.name);
  PolicyDirContents here = load_policy_dir(dir);
  // What each existing file holds, to decide whether it may go.
  std::map<std::string, std::vector<std::string>> by_file;
  for (const auto& l : here.policies) by_file[l.policy.file].push_back(l.policy.name);

  AddResult result;
  result.path = dest.string();
  std::set<std::string> to_remove;
  for (const auto& l : here.policies) {
    const std::string& file = l.policy.file;
    bool is_dest = fs::path(file) == dest;
    if (!names.contains(l.policy.name)) {
      if (is_dest)
        throw PolicyDirError(
            true, fmt::format("{} is already there and holds policy \"{}\", which {} does not "
                              "(give the file another name, or delete \"{}\" first)",
                              file, l.policy.name, source, l.policy.name));
      continue;
    }
    if (!replace)
      throw PolicyDirError(true, fmt::format("policy \"{}\" is already in {} (--replace replaces "
                                             "it; `capscope policy delete {}` removes it)",
                                             l.policy.name, file, l.policy.name));
    for (const auto& other : by_file[file])
      if (!names.contains(other))
        throw PolicyDirError(
            true, fmt::format("policy \"{}\" is in {} together with \"{}\", which {} does not "
                              "hold: delete \"{}\" first or edit {}",
                              l.policy.name, file, other, source, l.policy.name, file));
    result.replaced.push_back(l.policy.name);
    if (!is_dest) to_remove.insert(file);
  }
  std::error_code ec;
  if (!replace && fs::exists(dest, ec))
    throw PolicyDirError(
        true, fmt::format("{} exists (give the file another name, or --replace)", dest.string()));
  for (const auto& n : names)
    if (std::find(result.replaced.begin(), result.replaced.end(), n) == result.replaced.end())
      result.added.push_back(n);

  fs::create_directories(dir, ec);
  if (ec) throw PolicyDirError(false, fmt::format("{}: {}", dir, ec.message()));
  write_atomically(dest, text);
  for (const auto& file : to_remove) {
    if (!fs::remove(file, ec) && ec)
      throw PolicyDirError(false, fmt::format("{}: {}", file, ec.message()));
    result.removed_files.push_back(file);
  }
  return result;
}

std::string delete_policy(const std::string& dir, const std::string& name) {
  PolicyDirContents here = load_policy_dir(dir);
  auto it = std::find_if(here.policies.begin(), here.policies.end(),
                         [&](const LoadedPolicy& l) { return l.policy.name == name; });
  if (it == here.policies.end())
    throw PolicyDirError(
        true, fmt::format("no policy named \"{}\" in {} (`capscope policy list` "
                          "shows the names){}",
                          name, dir,
                          here.errors.empty()
                              ? ""
                              : fmt::format("; {} file(s) could not be read", here.errors.size())));
  std::string file = it->policy.file;
  size_t in_file = std::count_if(here.policies.begin(), here.policies.end(),
                                 [&](const LoadedPolicy& l) { return l.policy.file == file; });
  std::error_code ec;
  if (in_file == 1) {
    if (!fs::remove(file, ec) && ec)
      throw PolicyDirError(false, fmt::format("{}: {}", file, ec.message()));
    return file;
  }
  auto kept = without_policy(read_text(file), file, name);
  if (!kept)
    throw PolicyDirError(true, fmt::format("{} holds several policies and \"{}\" cannot be cut "
                                           "out of it safely: edit the file by hand",
                                           file, name));
  write_atomically(file, *kept);
  return file;
}

}  // namespace capscope::policy
