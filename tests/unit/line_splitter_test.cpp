#include "proxy/rpc/line_splitter.h"

#include <doctest/doctest.h>

using cxp::proxy::LineSplitter;

TEST_CASE("lines split across arbitrary chunk boundaries come out whole") {
  const std::string stream = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    LineSplitter splitter(1024);
    auto lines = splitter.feed(std::string_view(stream).substr(0, cut));
    auto rest = splitter.feed(std::string_view(stream).substr(cut));
    lines.insert(lines.end(), rest.begin(), rest.end());
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "{\"a\":1}");
    CHECK(lines[1] == "{\"b\":2}");
    CHECK(lines[2] == "");
    CHECK(lines[3] == "{\"c\":3}");
  }
}

TEST_CASE("an oversized line is dropped whole and the next line survives") {
  LineSplitter splitter(8);
  auto lines = splitter.feed("short\n0123456789");
  CHECK(lines == std::vector<std::string>{"short"});
  lines = splitter.feed("abcdef more of the huge line\nok\n");
  CHECK(lines == std::vector<std::string>{"ok"});
  CHECK(splitter.oversized() == 1);
}

TEST_CASE("the unterminated tail is available at EOF") {
  LineSplitter splitter(64);
  CHECK(splitter.feed("one\ntwo").size() == 1);
  CHECK(splitter.take_partial() == "two");
  CHECK(splitter.take_partial().empty());
}
