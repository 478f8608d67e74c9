#include "proxy/api/stop_sequences.h"

#include <doctest/doctest.h>

using namespace cxp::proxy;

namespace {

// The answer as a client gets it when `text` arrives in two deltas cut at `cut`.
std::pair<std::string, bool> run(std::vector<std::string> stops, const std::string& text,
                                 std::size_t cut) {
  StopSequences stop(std::move(stops));
  std::string out = stop.feed(text.substr(0, cut));
  if (!stop.stopped()) out += stop.feed(text.substr(cut));
  out += stop.finish();
  return {out, stop.stopped()};
}

}  // namespace

TEST_CASE("the answer ends before the first stop sequence, wherever the deltas cut it") {
  const std::string text = "one two three four";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(run({"ree f"}, text, cut) == std::pair<std::string, bool>{"one two th", true});
    CHECK(run({"four", " two"}, text, cut) == std::pair<std::string, bool>{"one", true});
    CHECK(run({"five"}, text, cut) == std::pair<std::string, bool>{text, false});
  }
}

TEST_CASE("held text is only what could still begin a stop sequence") {
  StopSequences stop({"END"});
  CHECK(stop.feed("abc E") == "abc ");  // "E" may begin END
  CHECK(stop.feed("X") == "EX");
  CHECK(stop.feed("EN") == "");
  CHECK(stop.feed("D and more") == "");
  CHECK(stop.stopped());
  CHECK(stop.finish() == "");
  CHECK(stop.feed("later") == "");
}

TEST_CASE("no stop sequences pass everything at once; UTF-8 is never split") {
  StopSequences none({});
  CHECK_FALSE(none.active());
  CHECK(none.feed("x") == "x");
  StopSequences stop({"\u00e9t\u00e9"});
  const std::string first = stop.feed("caf\u00e9");  // "é" may begin "été"
  CHECK(first == "caf");
  CHECK(stop.feed(" ok") == "\u00e9 ok");
}
