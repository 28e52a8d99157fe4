// Stream content parts ({"type": "stream", "stream": {"id", "last_seconds"}}) in the request
// parser: where they land in the turns, their look-back, the 400 for every malformed one; and
// that the media resolver leaves their places alone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/media.h"
#include "server/request.h"

namespace reel::server {
namespace {

using nlohmann::json;

json stream(const json& inner) {
  return {{"type", "stream"}, {"stream", inner}};
}

json request(const json& content, const std::string& role = "user") {
  return {
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}}, {{"role", role}, {"content", content}}}}};
}

std::string refused_param(const json& body) {
  try {
    parse_chat_request(body.dump());
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << e.what();
    return e.param();
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return "";
}

TEST(StreamPart, LandsAsAVideoPlaceWithItsIdAndLookBack) {
  const ChatRequest r =
      parse_chat_request(request({{{"type", "text"}, {"text", "What happened?"}},
                                  stream({{"id", "stream-a"}, {"last_seconds", 30}}),
                                  stream({{"id", "stream-b"}})})
                             .dump());
  ASSERT_EQ(r.streams.size(), 2u);
  EXPECT_EQ(r.streams[0].id, "stream-a");
  EXPECT_DOUBLE_EQ(r.streams[0].last_s, 30);
  EXPECT_EQ(r.streams[0].turn, 1u);
  EXPECT_EQ(r.streams[0].part, 1u);
  EXPECT_EQ(r.streams[0].param, "messages[1].content[1]");
  EXPECT_EQ(r.streams[1].id, "stream-b");
  EXPECT_DOUBLE_EQ(r.streams[1].last_s, 0);  // the whole window
  EXPECT_EQ(r.streams[1].part, 2u);
  ASSERT_EQ(r.turns[1].parts.size(), 3u);
  EXPECT_EQ(r.turns[1].parts[1].kind, ChatPart::Kind::Video);
  EXPECT_EQ(r.turns[1].parts[2].kind, ChatPart::Kind::Video);
}

TEST(StreamPart, MalformedOnesAreRefusedNamingTheField) {
  EXPECT_EQ(refused_param(request(json::array({{{"type", "stream"}}}))),
            "messages[1].content[0].stream");
  EXPECT_EQ(refused_param(request(json::array({{{"type", "stream"}, {"stream", "stream-a"}}}))),
            "messages[1].content[0].stream");
  EXPECT_EQ(refused_param(request(json::array({stream({{"last_seconds", 3}})}))),
            "messages[1].content[0].stream.id");
  EXPECT_EQ(refused_param(request(json::array({stream({{"id", ""}})}))),
            "messages[1].content[0].stream.id");
  EXPECT_EQ(refused_param(request(json::array({stream({{"id", std::string(65, 'x')}})}))),
            "messages[1].content[0].stream.id");
  for (const json& bad : {json(0), json(-1), json("30"), json(86401)})
    EXPECT_EQ(refused_param(request(json::array({stream({{"id", "s"}, {"last_seconds", bad}})}))),
              "messages[1].content[0].stream.last_seconds")
        << bad;
  // Only users ask about streams.
  EXPECT_EQ(refused_param(request(json::array({stream({{"id", "s"}})}), "assistant")),
            "messages[1].content[0]");
}

TEST(StreamPart, TheResolverLeavesItsPlaceAlone) {
  ChatRequest r = parse_chat_request(request(json::array({stream({{"id", "s"}})})).dump());
  MediaResolver resolver({});  // no media folder: any path would be a 403
  TempFiles files;
  EXPECT_NO_THROW(resolver.resolve(r.turns, files, r.streams));
  EXPECT_EQ(r.turns[1].parts[0].text, "");
  // Without the stream list, the empty path is a medium like any other (and refused).
  EXPECT_THROW(resolver.resolve(r.turns, files), ApiError);
}

}  // namespace
}  // namespace reel::server
