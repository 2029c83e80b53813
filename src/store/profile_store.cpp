#include "store/profile_store.h"

#include <fmt/format.h>

#include <filesystem>
#include <sstream>
#include <system_error>

namespace capscope::store {

namespace {

using profile::Profile;
using profile::UseKey;

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles(
  name TEXT PRIMARY KEY, subject TEXT NOT NULL, runs INTEGER NOT NULL,
  recorded_ns INTEGER NOT NULL, first_run_ns INTEGER NOT NULL, last_run_ns INTEGER NOT NULL,
  held_effective INTEGER NOT NULL, held_permitted INTEGER NOT NULL,
  held_inheritable INTEGER NOT NULL, held_bounding INTEGER NOT NULL,
  held_ambient INTEGER NOT NULL, ran_as_root INTEGER NOT NULL, ran_as_user INTEGER NOT NULL,
  no_new_privs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS uses(
  profile TEXT NOT NULL, cap INTEGER NOT NULL, granted INTEGER NOT NULL, audit INTEGER NOT NULL,
  count INTEGER NOT NULL, first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL,
  PRIMARY KEY(profile, cap, granted, audit));
CREATE TABLE IF NOT EXISTS use_syscalls(
  profile TEXT NOT NULL, cap INTEGER NOT NULL, granted INTEGER NOT NULL, audit INTEGER NOT NULL,
  syscall TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(profile, cap, granted, audit, syscall));
CREATE TABLE IF NOT EXISTS use_binaries(
  profile TEXT NOT NULL, cap INTEGER NOT NULL, granted INTEGER NOT NULL, audit INTEGER NOT NULL,
  binary TEXT NOT NULL, sample_args TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(profile, cap, granted, audit, binary));
CREATE TABLE IF NOT EXISTS privileged_binaries(
  profile TEXT NOT NULL, binary TEXT NOT NULL, setuid INTEGER NOT NULL, setgid INTEGER NOT NULL,
  owner_uid INTEGER NOT NULL, owner_gid INTEGER NOT NULL, has_file_caps INTEGER NOT NULL,
  file_permitted INTEGER NOT NULL, file_inheritable INTEGER NOT NULL,
  file_effective INTEGER NOT NULL, file_rootid INTEGER NOT NULL,
  execs INTEGER NOT NULL, raised INTEGER NOT NULL, held_back INTEGER NOT NULL,
  PRIMARY KEY(profile, binary));
CREATE TABLE IF NOT EXISTS profile_containers(
  profile TEXT PRIMARY KEY, runtime TEXT NOT NULL, namespace TEXT NOT NULL,
  workload TEXT NOT NULL, workload_kind TEXT NOT NULL, workload_from TEXT NOT NULL,
  pod TEXT NOT NULL, container TEXT NOT NULL, image TEXT NOT NULL, instances TEXT NOT NULL);
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }
  [[nodiscard]] int rc() const { return rc_; }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int step() { return rc_ = sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  [[nodiscard]] int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* t = sqlite3_column_text(s_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
};

// Binds the four key columns after the profile name (columns 2..5).
void bind_key(Stmt& s, const std::string& name, const UseKey& k) {
  s.bind(1, name).bind(2, k.cap).bind(3, k.granted ? 1 : 0).bind(4, k.audit ? 1 : 0);
}

UseKey key_at(const Stmt& s, int first_col) {
  return {static_cast<int>(s.i64(first_col)), s.i64(first_col + 1) != 0, s.i64(first_col + 2) != 0};
}

}  // namespace

std::string ProfileStore::describe(int rc, const std::string& what) const {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return fmt::format(
          "{}: the database {} is locked by another process (another capscope "
          "writing?); try again, or use --db for another file",
          what, path_);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return fmt::format("{}: cannot write the database {} ({}); use --db with a writable path",
                         what, path_, sqlite3_errstr(rc));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return fmt::format(
          "{}: {} is not a capscope database or is corrupt ({}); move it away "
          "or use --db",
          what, path_, sqlite3_errstr(rc));
    default:
      return fmt::format("{}: database {}: {}", what, path_, sqlite3_errmsg(db_));
  }
}

std::unique_ptr<ProfileStore> ProfileStore::open(const std::string& path, std::string* error) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<ProfileStore> store(new ProfileStore(db, path));
  if (rc != SQLITE_OK) {
    *error = store->describe(rc, "cannot open the profile database");
    return nullptr;
  }
  sqlite3_busy_timeout(db, 2000);
  // WAL: readers never block the writer; synchronous=FULL: a save that
  // returned survives a crash of the machine, not only of capscope.
  if (!store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", error) ||
      !store->exec(kSchema, error))
    return nullptr;
  Stmt version(db, "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?1)");
  version.bind(1, std::to_string(kSchemaVersion));
  if (!version.ok() || version.step() != SQLITE_DONE) {
    *error = store->describe(version.rc(), "cannot initialise the profile database");
    return nullptr;
  }
  return store;
}

ProfileStore::~ProfileStore() { sqlite3_close(db_); }

bool ProfileStore::exec(const char* sql, std::string* error) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return true;
  *error = describe(rc, "profile database");
  return false;
}

std::optional<Profile> ProfileStore::load(const std::string& name, std::string* error) {
  error->clear();
  Stmt head(db_,
            "SELECT subject, runs, recorded_ns, first_run_ns, last_run_ns, held_effective, "
            "held_permitted, held_inheritable, held_bounding, held_ambient, ran_as_root, "
            "ran_as_user, no_new_privs FROM profiles WHERE name = ?1");
  if (!head.ok()) {
    *error = describe(head.rc(), "cannot read profile " + name);
    return std::nullopt;
  }
  head.bind(1, name);
  int rc = head.step();
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) {
    *error = describe(rc, "cannot read profile " + name);
    return std::nullopt;
  }
  Profile p;
  p.name = name;
  p.subject = head.text(0);
  p.runs = static_cast<uint32_t>(head.i64(1));
  p.recorded_ns = head.i64(2);
  p.first_run_ns = head.i64(3);
  p.last_run_ns = head.i64(4);
  p.held = {{static_cast<uint64_t>(head.i64(5)), static_cast<uint64_t>(head.i64(6)),
             static_cast<uint64_t>(head.i64(7)), static_cast<uint64_t>(head.i64(8)),
             static_cast<uint64_t>(head.i64(9))},
            head.i64(10) != 0,
            head.i64(11) != 0,
            head.i64(12) != 0};
  Stmt uses(db_,
            "SELECT cap, granted, audit, count, first_ns, last_ns FROM uses WHERE profile = ?1");
  uses.bind(1, name);
  while (uses.step() == SQLITE_ROW) {
    auto& s = p.uses[key_at(uses, 0)];
    s.count = uses.i64(3);
    s.first_ns = uses.i64(4);
    s.last_ns = uses.i64(5);
  }
  Stmt sys(db_, "SELECT cap, granted, audit, syscall, count FROM use_syscalls WHERE profile = ?1");
  sys.bind(1, name);
  while (sys.step() == SQLITE_ROW) p.uses[key_at(sys, 0)].syscalls[sys.text(3)] = sys.i64(4);
  Stmt bins(db_,
            "SELECT cap, granted, audit, binary, sample_args, count FROM use_binaries "
            "WHERE profile = ?1");
  bins.bind(1, name);
  while (bins.step() == SQLITE_ROW)
    p.uses[key_at(bins, 0)].binaries[bins.text(3)] = {static_cast<uint64_t>(bins.i64(5)),
                                                      bins.text(4)};
  if (bins.rc() != SQLITE_DONE) {
    *error = describe(bins.rc(), "cannot read profile " + name);
    return std::nullopt;
  }
  if (!load_privileged_binaries(&p, error) || !load_container(&p, error)) return std::nullopt;
  return p;
}

bool ProfileStore::load_privileged_binaries(Profile* p, std::string* error) {
  Stmt s(db_,
         "SELECT binary, setuid, setgid, owner_uid, owner_gid, has_file_caps, file_permitted, "
         "file_inheritable, file_effective, file_rootid, execs, raised, held_back "
         "FROM privileged_binaries WHERE profile = ?1");
  s.bind(1, p->name);
  while (s.step() == SQLITE_ROW) {
    profile::PrivilegedBinary& b = p->privileged_binaries[s.text(0)];
    b.file.setuid = s.i64(1) != 0;
    b.file.setgid = s.i64(2) != 0;
    b.file.owner_uid = static_cast<uint32_t>(s.i64(3));
    b.file.owner_gid = static_cast<uint32_t>(s.i64(4));
    if (s.i64(5) != 0)
      b.file.caps = FileCaps{static_cast<uint64_t>(s.i64(6)), static_cast<uint64_t>(s.i64(7)),
                             s.i64(8) != 0, static_cast<uint32_t>(s.i64(9))};
    b.execs = s.i64(10);
    b.raised = s.i64(11);
    b.held_back = s.i64(12);
  }
  if (s.rc() == SQLITE_DONE) return true;
  *error = describe(s.rc(), "cannot read profile " + p->name);
  return false;
}

bool ProfileStore::write_privileged_binaries(const Profile& p, std::string* error) {
  Stmt s(db_,
         "INSERT INTO privileged_binaries VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
  for (const auto& [path, b] : p.privileged_binaries) {
    s.reset();
    FileCaps caps = b.file.caps.value_or(FileCaps{});
    s.bind(1, p.name).bind(2, path).bind(3, b.file.setuid ? 1 : 0).bind(4, b.file.setgid ? 1 : 0);
    s.bind(5, b.file.owner_uid).bind(6, b.file.owner_gid).bind(7, b.file.caps ? 1 : 0);
    s.bind(8, static_cast<int64_t>(caps.permitted)).bind(9, static_cast<int64_t>(caps.inheritable));
    s.bind(10, caps.effective ? 1 : 0).bind(11, caps.rootid);
    s.bind(12, static_cast<int64_t>(b.execs)).bind(13, static_cast<int64_t>(b.raised));
    s.bind(14, static_cast<int64_t>(b.held_back));
    if (s.step() != SQLITE_DONE) return *error = describe(s.rc(), "cannot save " + p.name), false;
  }
  return true;
}

bool ProfileStore::erase_rows(const std::string& name, const std::string& what, bool* found,
                              std::string* error) {
  bool head = true;
  for (const char* del :
       {"DELETE FROM profiles WHERE name = ?1", "DELETE FROM uses WHERE profile = ?1",
        "DELETE FROM use_syscalls WHERE profile = ?1",
        "DELETE FROM use_binaries WHERE profile = ?1",
        "DELETE FROM privileged_binaries WHERE profile = ?1",
        "DELETE FROM profile_containers WHERE profile = ?1"}) {
    Stmt s(db_, del);
    s.bind(1, name);
    if (s.step() != SQLITE_DONE) return *error = describe(s.rc(), what), false;
    if (head && found) *found = sqlite3_changes(db_) > 0;
    head = false;
  }
  return true;
}

bool ProfileStore::write_profile(const Profile& p, std::string* error) {
  const std::string& n = p.name;
  if (!erase_rows(n, "cannot save " + n, nullptr, error)) return false;
  Stmt head(db_, "INSERT INTO profiles VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)");
  head.bind(1, n).bind(2, p.subject).bind(3, p.runs).bind(4, static_cast<int64_t>(p.recorded_ns));
  head.bind(5, static_cast<int64_t>(p.first_run_ns)).bind(6, static_cast<int64_t>(p.last_run_ns));
  const auto& h = p.held;
  const auto& c = h.caps;
  head.bind(7, static_cast<int64_t>(c.effective)).bind(8, static_cast<int64_t>(c.permitted));
  head.bind(9, static_cast<int64_t>(c.inheritable)).bind(10, static_cast<int64_t>(c.bounding));
  head.bind(11, static_cast<int64_t>(c.ambient)).bind(12, h.ran_as_root ? 1 : 0);
  head.bind(13, h.ran_as_user ? 1 : 0).bind(14, h.no_new_privs ? 1 : 0);
  if (head.step() != SQLITE_DONE) return *error = describe(head.rc(), "cannot save " + n), false;
  Stmt use(db_, "INSERT INTO uses VALUES(?1,?2,?3,?4,?5,?6,?7)");
  Stmt sys(db_, "INSERT INTO use_syscalls VALUES(?1,?2,?3,?4,?5,?6)");
  Stmt bin(db_, "INSERT INTO use_binaries VALUES(?1,?2,?3,?4,?5,?6,?7)");
  for (const auto& [k, s] : p.uses) {
    use.reset();
    bind_key(use, n, k);
    use.bind(5, static_cast<int64_t>(s.count)).bind(6, static_cast<int64_t>(s.first_ns));
    use.bind(7, static_cast<int64_t>(s.last_ns));
    if (use.step() != SQLITE_DONE) return *error = describe(use.rc(), "cannot save " + n), false;
    for (const auto& [name, count] : s.syscalls) {
      sys.reset();
      bind_key(sys, n, k);
      sys.bind(5, name).bind(6, static_cast<int64_t>(count));
      if (sys.step() != SQLITE_DONE) return *error = describe(sys.rc(), "cannot save " + n), false;
    }
    for (const auto& [path, b] : s.binaries) {
      bin.reset();
      bind_key(bin, n, k);
      bin.bind(5, path).bind(6, b.sample_args).bind(7, static_cast<int64_t>(b.count));
      if (bin.step() != SQLITE_DONE) return *error = describe(bin.rc(), "cannot save " + n), false;
    }
  }
  return write_privileged_binaries(p, error) && write_container(p, error);
}

bool ProfileStore::write_container(const Profile& p, std::string* error) {
  const auto& c = p.container;
  if (c.empty()) return true;
  Stmt s(db_, "INSERT INTO profile_containers VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  s.bind(1, p.name).bind(2, c.runtime).bind(3, c.namespace_name).bind(4, c.workload);
  s.bind(5, c.workload_kind).bind(6, c.workload_from).bind(7, c.pod).bind(8, c.container);
  s.bind(9, c.image).bind(10, fmt::format("{}", fmt::join(c.instances, ",")));
  if (s.step() == SQLITE_DONE) return true;
  *error = describe(s.rc(), "cannot save " + p.name);
  return false;
}

bool ProfileStore::load_container(Profile* p, std::string* error) {
  Stmt s(db_,
         "SELECT runtime, namespace, workload, workload_kind, workload_from, pod, container, "
         "image, instances FROM profile_containers WHERE profile = ?1");
  s.bind(1, p->name);
  if (s.step() == SQLITE_ROW) {
    auto& c = p->container;
    c.runtime = s.text(0);
    c.namespace_name = s.text(1);
    c.workload = s.text(2);
    c.workload_kind = s.text(3);
    c.workload_from = s.text(4);
    c.pod = s.text(5);
    c.container = s.text(6);
    c.image = s.text(7);
    std::stringstream ids(s.text(8));
    for (std::string id; std::getline(ids, id, ',');)
      if (!id.empty()) c.instances.insert(id);
  }
  if (s.rc() == SQLITE_DONE || s.rc() == SQLITE_ROW) return true;
  *error = describe(s.rc(), "cannot read profile " + p->name);
  return false;
}

bool ProfileStore::merge_save(const Profile& p, std::string* error) {
  // IMMEDIATE: take the write lock before reading, so two recorders of the
  // same name cannot both merge into the same old state.
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  std::string read_error;
  Profile merged = load(p.name, &read_error).value_or(Profile{});
  if (!read_error.empty()) {
    exec("ROLLBACK", error);
    *error = read_error;
    return false;
  }
  merged.name = p.name;
  merged.merge(p);
  if (!write_profile(merged, error)) {
    std::string ignored;
    exec("ROLLBACK", &ignored);
    return false;
  }
  return exec("COMMIT", error);
}

std::optional<std::vector<ProfileSummary>> ProfileStore::list(std::string* error) {
  Stmt s(db_, "SELECT name FROM profiles ORDER BY name");
  if (!s.ok()) {
    *error = describe(s.rc(), "cannot list profiles");
    return std::nullopt;
  }
  std::vector<ProfileSummary> out;
  while (s.step() == SQLITE_ROW) {
    auto p = load(s.text(0), error);
    if (!p) return std::nullopt;
    out.push_back({p->name, p->subject, p->runs, p->recorded_ns, p->last_run_ns, p->needed()});
  }
  if (s.rc() != SQLITE_DONE) {
    *error = describe(s.rc(), "cannot list profiles");
    return std::nullopt;
  }
  return out;
}

bool ProfileStore::remove(const std::string& name, std::string* error) {
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  std::string ignored;
  bool found = false;
  if (!erase_rows(name, "cannot delete " + name, &found, error) || !exec("COMMIT", error)) {
    exec("ROLLBACK", &ignored);
    return false;
  }
  return found;
}

}  // namespace capscope::store
