#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "filter/label_selector.h"

using namespace capscope;

namespace {

// The message parse() throws, or "" when it parses.
std::string error_of(std::string_view text) {
  try {
    LabelSelector::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool selects(std::string_view selector, const Labels& labels) {
  return LabelSelector::parse(selector).matches(labels);
}

std::string canonical(std::string_view selector) { return LabelSelector::parse(selector).str(); }

}  // namespace

TEST(LabelSelector, EmptySelectsEverything) {
  for (std::string_view s : {"", "   ", " \t\n "}) {
    auto sel = LabelSelector::parse(s);
    EXPECT_TRUE(sel.empty());
    EXPECT_EQ(sel.str(), "");
    EXPECT_TRUE(sel.matches({}));
    EXPECT_TRUE(sel.matches({{"app", "web"}}));
  }
  EXPECT_TRUE(LabelSelector().matches({{"a", "b"}}));
}

TEST(LabelSelector, Equals) {
  EXPECT_TRUE(selects("app=web", {{"app", "web"}, {"tier", "front"}}));
  EXPECT_FALSE(selects("app=web", {{"app", "db"}}));
  EXPECT_FALSE(selects("app=web", {}));
  EXPECT_TRUE(selects("app==web", {{"app", "web"}}));
  EXPECT_EQ(canonical("app==web"), "app=web");  // == and = are the same operator
  auto sel = LabelSelector::parse("app=web");
  ASSERT_EQ(sel.requirements().size(), 1u);
  EXPECT_EQ(sel.requirements()[0].op, LabelSelector::Op::Equals);
  EXPECT_EQ(sel.requirements()[0].values, std::vector<std::string>{"web"});
}

TEST(LabelSelector, NotEqualsMatchesAnAbsentKey) {
  EXPECT_TRUE(selects("app!=web", {{"app", "db"}}));
  EXPECT_TRUE(selects("app!=web", {}));
  EXPECT_TRUE(selects("app!=web", {{"other", "web"}}));
  EXPECT_FALSE(selects("app!=web", {{"app", "web"}}));
  EXPECT_EQ(canonical("app != web"), "app!=web");
}

TEST(LabelSelector, In) {
  EXPECT_TRUE(selects("env in (prod,staging)", {{"env", "prod"}}));
  EXPECT_TRUE(selects("env in (prod,staging)", {{"env", "staging"}}));
  EXPECT_FALSE(selects("env in (prod,staging)", {{"env", "dev"}}));
  EXPECT_FALSE(selects("env in (prod,staging)", {}));
  EXPECT_EQ(canonical("env in (staging,prod,prod)"), "env in (prod,staging)");
}

TEST(LabelSelector, NotInMatchesAnAbsentKey) {
  EXPECT_TRUE(selects("env notin (dev,test)", {{"env", "prod"}}));
  EXPECT_TRUE(selects("env notin (dev,test)", {}));
  EXPECT_FALSE(selects("env notin (dev,test)", {{"env", "test"}}));
  EXPECT_EQ(canonical("env notin (test,dev)"), "env notin (dev,test)");
}

TEST(LabelSelector, ExistsAndDoesNotExist) {
  EXPECT_TRUE(selects("app", {{"app", ""}}));
  EXPECT_TRUE(selects("app", {{"app", "x"}}));
  EXPECT_FALSE(selects("app", {{"application", "x"}}));
  EXPECT_TRUE(selects("!app", {{"application", "x"}}));
  EXPECT_FALSE(selects("!app", {{"app", ""}}));
  EXPECT_TRUE(selects("! app", {}));
  EXPECT_EQ(canonical("!  app"), "!app");
}

TEST(LabelSelector, GreaterAndLessCompareIntegers) {
  EXPECT_TRUE(selects("replicas>2", {{"replicas", "3"}}));
  EXPECT_FALSE(selects("replicas>2", {{"replicas", "2"}}));
  EXPECT_TRUE(selects("replicas<2", {{"replicas", "1"}}));
  EXPECT_TRUE(selects("replicas<2", {{"replicas", "-5"}}));   // a label value, not a selector one
  EXPECT_TRUE(selects("replicas>2", {{"replicas", "010"}}));  // decimal, not octal
  // Absent or not an integer: neither > nor < holds.
  EXPECT_FALSE(selects("replicas>2", {}));
  EXPECT_FALSE(selects("replicas<2", {}));
  EXPECT_FALSE(selects("replicas<2", {{"replicas", "one"}}));
  EXPECT_FALSE(selects("replicas>2", {{"replicas", "99999999999999999999"}}));
  EXPECT_EQ(canonical("a > 007"), "a>7");
  EXPECT_EQ(canonical("a<9223372036854775807"), "a<9223372036854775807");
}

TEST(LabelSelector, RequirementsAreAnded) {
  Labels labels{{"app", "web"}, {"env", "prod"}};
  EXPECT_TRUE(selects("app=web,env in (prod,staging),!canary", labels));
  EXPECT_FALSE(selects("app=web,env in (dev),!canary", labels));
  EXPECT_FALSE(selects("app=web,env", {{"app", "web"}}));
}

TEST(LabelSelector, WhitespaceAnywhereBetweenTokens) {
  std::string want = "app=web,tier in (back,front)";
  EXPECT_EQ(canonical("app=web,tier in (front,back)"), want);
  EXPECT_EQ(canonical("  app = web ,  tier  in ( front , back )  "), want);
  EXPECT_EQ(canonical("app\t=\tweb,\ntier in\r\n(front,back)"), want);
  EXPECT_EQ(canonical("tier in(front,back),app=web"), want);
  EXPECT_EQ(canonical("!c,a!=b"), "a!=b,!c");  // by key, not by what is written first
}

TEST(LabelSelector, PrefixedKeys) {
  Labels labels{{"app.kubernetes.io/name", "nginx"}, {"example.com/a-b_c.D", "1"}};
  EXPECT_TRUE(selects("app.kubernetes.io/name=nginx", labels));
  EXPECT_TRUE(selects("app.kubernetes.io/name in (nginx,httpd)", labels));
  EXPECT_TRUE(selects("example.com/a-b_c.D", labels));
  EXPECT_FALSE(selects("app.kubernetes.io/name!=nginx", labels));
  EXPECT_TRUE(selects("!app.kubernetes.io/version", labels));
  EXPECT_EQ(canonical("app.kubernetes.io/name = nginx"), "app.kubernetes.io/name=nginx");
}

TEST(LabelSelector, InAndNotinAreKeywordsOnlyWhereAnOperatorGoes) {
  EXPECT_TRUE(selects("in=notin", {{"in", "notin"}}));
  EXPECT_TRUE(selects("in in (in,notin)", {{"in", "in"}}));
  EXPECT_TRUE(selects("notin", {{"notin", "x"}}));
  EXPECT_EQ(canonical("notin notin (in)"), "notin notin (in)");
}

TEST(LabelSelector, EmptyValues) {
  // Kubernetes: `a=` is the empty value, and so is an empty item of a set.
  EXPECT_TRUE(selects("a=", {{"a", ""}}));
  EXPECT_FALSE(selects("a=", {{"a", "x"}}));
  EXPECT_TRUE(selects("a=,b", {{"a", ""}, {"b", "1"}}));
  EXPECT_TRUE(selects("a!=", {{"a", "x"}}));
  EXPECT_TRUE(selects("a in ()", {{"a", ""}}));
  EXPECT_FALSE(selects("a in ()", {}));
  EXPECT_TRUE(selects("a notin ()", {{"a", "x"}}));
  EXPECT_EQ(canonical("a in (x,,y)"), "a in (,x,y)");
  EXPECT_EQ(canonical("a in (x,)"), "a in (,x)");
  EXPECT_EQ(canonical("a in (,)"), "a in ()");
  EXPECT_EQ(canonical("a="), "a=");
}

TEST(LabelSelector, CanonicalFormIsSortedDedupedAndReparses) {
  EXPECT_EQ(canonical("z,b=2,a notin (y,x),!c,b=1,z"), "a notin (x,y),b=1,b=2,!c,z");
  EXPECT_EQ(canonical("a==1,a=1"), "a=1");
  for (std::string_view s : {"z,b=2,a notin (y,x),!c", "a in (,x)", "k.io/x>3,k.io/x<9", "a="}) {
    std::string once = canonical(s);
    EXPECT_EQ(canonical(once), once) << s;
    auto a = LabelSelector::parse(s), b = LabelSelector::parse(once);
    EXPECT_EQ(a.requirements(), b.requirements()) << s;
  }
}

TEST(LabelSelector, SyntaxErrorsSayWhereAndHowToWriteIt) {
  EXPECT_EQ(error_of("app in (a,b"),
            "selector \"app in (a,b\": missing ')' at column 12 (write: key in (v1,v2))");
  EXPECT_EQ(error_of("app in (a,b   "),
            "selector \"app in (a,b   \": missing ')' at column 12 (write: key in (v1,v2))");
  EXPECT_EQ(error_of("app notin a,b"),
            "selector \"app notin a,b\": missing '(' after 'notin' at column 11 "
            "(write: key notin (v1,v2))");
  EXPECT_EQ(error_of("app in"),
            "selector \"app in\": missing '(' after 'in' at column 7 (write: key in (v1,v2))");
  EXPECT_EQ(
      error_of("a in (b c)"),
      "selector \"a in (b c)\": missing ',' before \"c\" at column 9 (write: key in (v1,v2))");
  EXPECT_EQ(error_of("a in (b=)"),
            "selector \"a in (b=)\": unexpected '=' in the value list at column 8 "
            "(write: key in (v1,v2))");
  EXPECT_EQ(error_of("a,,b"),
            "selector \"a,,b\": empty requirement at column 3 (write: a requirement between "
            "commas)");
  EXPECT_EQ(error_of(",a"),
            "selector \",a\": empty requirement at column 1 (write: a requirement between commas)");
  EXPECT_EQ(error_of("a,"),
            "selector \"a,\": nothing after ',' at column 3 (write: no trailing ',', or a "
            "requirement after it)");
  EXPECT_EQ(error_of("=b"),
            "selector \"=b\": expected a key, found '=' at column 1 (write: key=value, key in "
            "(v1,v2), key or !key)");
  EXPECT_EQ(error_of("a b"),
            "selector \"a b\": expected an operator after key \"a\", found \"b\" at column 3 "
            "(write: key=value, key!=value, key in (v1,v2), key notin (v1,v2), key or !key)");
  EXPECT_EQ(error_of("a=b c"),
            "selector \"a=b c\": unexpected \"c\" after a requirement at column 5 (write: "
            "requirements separated by ',', e.g. a=b,c in (d,e))");
  EXPECT_EQ(error_of("a=b=c"),
            "selector \"a=b=c\": unexpected '=' after a requirement at column 4 (write: "
            "requirements separated by ',', e.g. a=b,c in (d,e))");
  EXPECT_EQ(error_of("a=(b)"),
            "selector \"a=(b)\": expected a value after '=', found '(' at column 3 (write: "
            "key=value)");
  EXPECT_EQ(error_of("a!==b"),
            "selector \"a!==b\": expected a value after '!=', found '=' at column 4 (write: "
            "key!=value)");
  EXPECT_EQ(error_of("!a=b"),
            "selector \"!a=b\": '!' takes a key alone, found '=' after it at column 3 (write: "
            "!key for an absent key, key!=value for another value)");
  EXPECT_EQ(error_of("!"),
            "selector \"!\": '!' needs a key, found the end at column 2 (write: !key)");
  EXPECT_EQ(error_of("!=a"),
            "selector \"!=a\": expected a key, found '!=' at column 1 (write: key=value, key in "
            "(v1,v2), key or !key)");
}

TEST(LabelSelector, IntegerErrors) {
  EXPECT_EQ(error_of("a>x"),
            "selector \"a>x\": '>' needs an integer, found \"x\" at column 3 (write: key>5)");
  EXPECT_EQ(error_of("a<"),
            "selector \"a<\": '<' needs an integer, found the end at column 3 (write: key<5)");
  // A selector value must be a valid label value: no sign (as in Kubernetes).
  EXPECT_NE(error_of("a>-1"), "");
  EXPECT_NE(error_of("a>+1"), "");
  EXPECT_NE(error_of("a>1.5"), "");
  EXPECT_NE(error_of("a>99999999999999999999"), "");
  EXPECT_EQ(error_of("a>0"), "");
}

TEST(LabelSelector, InvalidKeys) {
  EXPECT_EQ(error_of("-app=web"),
            "selector \"-app=web\": invalid key \"-app\": in the name, it must begin and end "
            "with a letter or digit and hold only letters, digits, '-', '_' and '.' at column 1 "
            "(write: a key like app or app.kubernetes.io/name)");
  auto key_error = [](std::string_view s) {
    std::string e = error_of(s);
    size_t colon = e.find(": invalid key");
    size_t at = e.rfind(" at column");
    return colon == std::string::npos ? e : e.substr(colon + 2, at - colon - 2);
  };
  EXPECT_EQ(key_error("a/b/c"), "invalid key \"a/b/c\": a key holds at most one '/'");
  EXPECT_EQ(key_error("/a"), "invalid key \"/a\": the prefix before '/' is empty");
  EXPECT_EQ(key_error("a/"), "invalid key \"a/\": the name is empty");
  EXPECT_EQ(key_error("Example.com/a"),
            "invalid key \"Example.com/a\": the prefix must be a lowercase DNS subdomain "
            "(a-z, 0-9, '-', '.'; each dot-separated part begins and ends with a letter or "
            "digit)");
  EXPECT_NE(key_error("ex..com/a").find("lowercase DNS subdomain"), std::string::npos);
  EXPECT_NE(key_error("-ex.com/a").find("lowercase DNS subdomain"), std::string::npos);
  EXPECT_NE(key_error("ex_ample.com/a").find("lowercase DNS subdomain"), std::string::npos);
  std::string long_name(64, 'a');
  EXPECT_EQ(key_error(long_name),
            "invalid key \"" + long_name + "\": the name is longer than 63 characters");
  EXPECT_EQ(error_of(std::string(63, 'a')), "");
  std::string long_prefix = std::string(250, 'a') + ".com";  // 254
  EXPECT_NE(key_error(long_prefix + "/x").find("prefix is longer than 253"), std::string::npos);
  EXPECT_EQ(error_of(std::string(249, 'a') + ".com/x"), "");  // 253
  EXPECT_NE(key_error("a:b=c").find("in the name"), std::string::npos);
  EXPECT_NE(key_error("a_=c").find("in the name"), std::string::npos);
  EXPECT_EQ(error_of("A_b.C-9=x"), "");
}

TEST(LabelSelector, InvalidValues) {
  EXPECT_EQ(error_of("a=-b"),
            "selector \"a=-b\": invalid value \"-b\": it must begin and end with a letter or "
            "digit and hold only letters, digits, '-', '_' and '.' at column 3 (write: a value "
            "of at most 63 letters, digits, '-', '_' and '.', or an empty one)");
  EXPECT_NE(error_of("a=b/c").find("invalid value \"b/c\""), std::string::npos);
  EXPECT_NE(error_of("a in (ok,b@d)").find("invalid value \"b@d\": it must"), std::string::npos);
  EXPECT_NE(error_of("a in (ok,b@d)").find("column 10"), std::string::npos);
  std::string long_value(64, 'v');
  EXPECT_NE(error_of("a=" + long_value).find("longer than 63 characters"), std::string::npos);
  EXPECT_EQ(error_of("a=" + std::string(63, 'v')), "");
}

TEST(LabelSelector, ErrorMessageIsOneLine) {
  std::string e = error_of("a=b,\n\tc d");
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_EQ(e.find('\t'), std::string::npos) << e;
  EXPECT_NE(e.find("\"a=b,\\n\\tc d\""), std::string::npos) << e;
  EXPECT_NE(e.find("at column 9"), std::string::npos) << e;
  EXPECT_NE(error_of("a=\"x\"").find("selector \"a=\\\"x\\\"\""), std::string::npos);
  EXPECT_NE(error_of(std::string("a=b\x01")).find("\\x01"), std::string::npos);
}
