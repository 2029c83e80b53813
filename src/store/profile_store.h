// Profiles in an embedded SQLite database (WAL mode, one transaction per save,
// so a crash mid-write leaves the previous state). Saving a profile under a
// name that exists merges the two: union of capabilities, summed counts, runs.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "profile/profile.h"

namespace capscope::store {

inline constexpr const char* kDefaultDbPath = "/var/lib/capscope/capscope.db";

struct ProfileSummary {
  std::string name;
  std::string subject;
  uint32_t runs = 0;
  uint64_t recorded_ns = 0;
  uint64_t last_run_ns = 0;
  std::vector<int> needed;
};

class ProfileStore {
 public:
  // Opens (creating it and its folder if needed) the database at path. On
  // failure returns null and says why, and what to do, in *error.
  static std::unique_ptr<ProfileStore> open(const std::string& path, std::string* error);
  ~ProfileStore();
  ProfileStore(const ProfileStore&) = delete;
  ProfileStore& operator=(const ProfileStore&) = delete;

  // Merges p into the stored profile of the same name (or stores it). False
  // and *error on failure; the database is then as it was.
  bool merge_save(const profile::Profile& p, std::string* error);
  // nullopt with *error empty: no such profile.
  std::optional<profile::Profile> load(const std::string& name, std::string* error);
  std::optional<std::vector<ProfileSummary>> list(std::string* error);
  // True if a profile was removed.
  bool remove(const std::string& name, std::string* error);

 private:
  ProfileStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  bool exec(const char* sql, std::string* error);
  bool write_profile(const profile::Profile& p, std::string* error);
  bool write_privileged_binaries(const profile::Profile& p, std::string* error);
  bool load_privileged_binaries(profile::Profile* p, std::string* error);
  bool write_container(const profile::Profile& p, std::string* error);
  bool load_container(profile::Profile* p, std::string* error);
  // Deletes every row of a profile; *found (if given): whether it existed.
  bool erase_rows(const std::string& name, const std::string& what, bool* found,
                  std::string* error);
  std::string describe(int rc, const std::string& what) const;

  sqlite3* db_;
  std::string path_;
};

}  // namespace capscope::store
