#include "util/yaml_tree.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

namespace capscope::util {

namespace {

int line_of(const YAML::Mark& m) { return m.is_null() ? 0 : m.line + 1; }

// Builds one document's tree from the parser's events.
class TreeBuilder : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto n = std::make_shared<YamlNode>();
    n->line = line_of(mark);
    complete(std::move(n), anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor])
      throw YamlError(line_of(mark),
                      "an alias refers to the node that holds it (or to no node at all)");
    add(anchors_[anchor]);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                const std::string& value) override {
    auto n = std::make_shared<YamlNode>();
    n->kind = YamlNode::Kind::Scalar;
    n->line = line_of(mark);
    n->value = value;
    complete(std::move(n), anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::Sequence, mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    open(YamlNode::Kind::Map, mark, anchor);
  }
  void OnMapEnd() override { close(); }

  [[nodiscard]] YamlNodePtr root() const { return root_; }
  [[nodiscard]] const YAML::Mark& start() const { return start_; }

 private:
  // A sequence or mapping being filled; a mapping's key waits for its value.
  struct Open {
    std::shared_ptr<YamlNode> node;
    YAML::anchor_t anchor;
    YamlNodePtr key;
  };

  void open(YamlNode::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    auto n = std::make_shared<YamlNode>();
    n->kind = kind;
    n->line = line_of(mark);
    open_.push_back({std::move(n), anchor, nullptr});
  }

  void close() {
    if (open_.empty()) throw YamlError(0, "unbalanced YAML events");
    Open top = std::move(open_.back());
    open_.pop_back();
    if (top.key) top.node->entries.emplace_back(std::move(top.key), std::make_shared<YamlNode>());
    complete(std::move(top.node), top.anchor);
  }

  // A node is named by its anchor only once complete: an alias met before
  // then (inside the node) is refused, so the tree has no cycle.
  void complete(YamlNodePtr n, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) {
      if (anchor >= anchors_.size()) anchors_.resize(anchor + 1);
      anchors_[anchor] = n;
    }
    add(std::move(n));
  }

  void add(YamlNodePtr n) {
    if (open_.empty()) {
      root_ = std::move(n);
      return;
    }
    Open& parent = open_.back();
    if (parent.node->kind == YamlNode::Kind::Sequence) {
      parent.node->items.push_back(std::move(n));
    } else if (!parent.key) {
      parent.key = std::move(n);
    } else {
      parent.node->entries.emplace_back(std::move(parent.key), std::move(n));
      parent.key = nullptr;
    }
  }

  YAML::Mark start_ = YAML::Mark::null_mark();
  std::vector<Open> open_;
  std::vector<YamlNodePtr> anchors_;
  YamlNodePtr root_ = std::make_shared<YamlNode>();
};

}  // namespace

std::vector<YamlNodePtr> load_yaml_documents(std::string_view text, size_t max_documents) {
  std::istringstream in{std::string(text)};
  std::vector<YamlNodePtr> docs;
  try {
    YAML::Parser parser(in);
    int last_start = -1;
    while (true) {
      TreeBuilder builder;
      if (!parser.HandleNextDocument(builder)) break;
      // A document where the previous one started: the parser is stuck on a
      // token it neither takes nor refuses (yaml-cpp issue 1040).
      int start = builder.start().is_null() ? -1 : builder.start().pos;
      if (start != -1 && start == last_start)
        throw YamlError(line_of(builder.start()),
                        "not valid YAML: the parser cannot go on from here");
      last_start = start;
      if (docs.size() == max_documents)
        throw YamlError(line_of(builder.start()),
                        fmt::format("more than {} YAML documents", max_documents));
      docs.push_back(builder.root());
    }
  } catch (const YAML::Exception& e) {
    throw YamlError(line_of(e.mark), fmt::format("not valid YAML: {}", e.msg));
  }
  return docs;
}

std::string yaml_cpp_would_hang(std::string_view text) {
  // A parser that stops moving, and a node that holds itself (which a walk of
  // yaml-cpp's nodes would follow forever), are what is looked for here; anything
  // else (a plain syntax error) is left to the caller's loader and its message.
  constexpr size_t kManyDocuments = 100000;
  try {
    load_yaml_documents(text, kManyDocuments);
  } catch (const YamlError& e) {
    std::string_view what = e.what();
    if (what.find("cannot go on") != std::string_view::npos ||
        what.find("alias refers") != std::string_view::npos)
      return fmt::format("line {}: {}", e.line(), what);
  }
  return "";
}

}  // namespace capscope::util
