// The chat-completions request parser: what a well-formed request becomes, and the 400 (with
// OpenAI's error fields) that every malformed, mistyped, unsupported or oversized one gets.
// Also the error object, the mapping of Reel's error kinds, stop strings and base64.
#include "server/request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "server/stop.h"

namespace reel::server {
namespace {

using nlohmann::json;

ChatRequest parse(const json& body) {
  return parse_chat_request(body.dump());
}

json user(const json& content) {
  return {{"messages", {{{"role", "user"}, {"content", content}}}}};
}

// The status and param of the ApiError that parsing `body` throws.
std::pair<int, std::string> refusal(const std::string& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return {e.status(), e.param()};
  }
  return {0, "(accepted)"};
}
std::pair<int, std::string> refusal(const json& body) {
  return refusal(body.dump());
}

TEST(ParseRequest, StringContentAndDefaultsAreTheCli) {
  const ChatRequest r = parse(user("Hello"));
  ASSERT_EQ(r.turns.size(), 1u);
  EXPECT_EQ(r.turns[0].role, "user");
  ASSERT_EQ(r.turns[0].parts.size(), 1u);
  EXPECT_EQ(r.turns[0].parts[0].text, "Hello");
  const SamplingParams cli;
  EXPECT_EQ(r.sampling.temperature, cli.temperature);
  EXPECT_EQ(r.sampling.top_k, cli.top_k);
  EXPECT_EQ(r.sampling.top_p, cli.top_p);
  EXPECT_EQ(r.sampling.min_p, cli.min_p);
  EXPECT_EQ(r.sampling.repeat_penalty, cli.repeat_penalty);
  EXPECT_EQ(r.sampling.presence_penalty, cli.presence_penalty);
  EXPECT_EQ(r.sampling.seed, cli.seed);
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.stop.empty());
}

TEST(ParseRequest, PartsKeepTheirOrderAndUrls) {
  const ChatRequest r = parse(user(
      json::array({{{"type", "text"}, {"text", "a"}},
                   {{"type", "image_url"},
                    {"image_url", {{"url", "data:image/png;base64,AAAA"}, {"detail", "auto"}}}},
                   {{"type", "video_url"}, {"video_url", {{"url", "/media/v.mp4"}}}},
                   {{"type", "image_url"}, {"image_url", "file:///media/x.jpg"}}})));
  const auto& p = r.turns[0].parts;
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].kind, ChatPart::Kind::Text);
  EXPECT_EQ(p[1].kind, ChatPart::Kind::Image);
  EXPECT_EQ(p[1].text, "data:image/png;base64,AAAA");
  EXPECT_EQ(p[2].kind, ChatPart::Kind::Video);
  EXPECT_EQ(p[2].text, "/media/v.mp4");
  EXPECT_EQ(p[3].text, "file:///media/x.jpg");
}

TEST(ParseRequest, RolesSystemDeveloperAssistant) {
  const ChatRequest r = parse({{"messages",
                                {{{"role", "developer"}, {"content", "s"}},
                                 {{"role", "user"}, {"content", "u"}},
                                 {{"role", "assistant"}, {"content", nullptr}},
                                 {{"role", "user"}, {"content", "v"}}}}});
  ASSERT_EQ(r.turns.size(), 4u);
  EXPECT_EQ(r.turns[0].role, "system");
  EXPECT_TRUE(r.turns[2].parts.empty());
  EXPECT_EQ(refusal(json{{"messages", {{{"role", "tool"}, {"content", "x"}}}}}),
            std::make_pair(400, std::string("messages[0].role")));
  EXPECT_EQ(refusal(json{{"messages", {{{"role", "user"}}}}}).second, "messages[0].content");
}

TEST(ParseRequest, SamplingParameters) {
  json b = user("x");
  b["temperature"] = 0;
  b["top_p"] = 0.5;
  b["top_k"] = -1;
  b["min_p"] = 0.1;
  b["seed"] = -1;
  b["presence_penalty"] = 1.5;
  b["repetition_penalty"] = 1.1;
  b["max_tokens"] = 7;
  b["frequency_penalty"] = 0;
  b["n"] = 1;
  b["stream"] = true;
  b["stream_options"] = {{"include_usage", true}};
  b["stop"] = "END";
  const ChatRequest r = parse(b);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, -1);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_EQ(r.sampling.seed, ~uint64_t(0));
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 1.5f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  b["max_completion_tokens"] = 9;  // the newer name wins
  EXPECT_EQ(parse(b).max_tokens, 9);
}

TEST(ParseRequest, WrongTypesAndRangesNameTheParam) {
  auto with = [](const char* key, const json& v) {
    json b = user("x");
    b[key] = v;
    return refusal(b);
  };
  EXPECT_EQ(with("temperature", "hot"), std::make_pair(400, std::string("temperature")));
  EXPECT_EQ(with("temperature", -1), std::make_pair(400, std::string("temperature")));
  EXPECT_EQ(with("top_p", 1.5), std::make_pair(400, std::string("top_p")));
  EXPECT_EQ(with("top_k", 2.5), std::make_pair(400, std::string("top_k")));
  EXPECT_EQ(with("max_tokens", 0), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(with("max_tokens", "10"), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(with("seed", 1.5), std::make_pair(400, std::string("seed")));
  EXPECT_EQ(with("stream", "yes"), std::make_pair(400, std::string("stream")));
  EXPECT_EQ(with("stop", 5), std::make_pair(400, std::string("stop")));
  EXPECT_EQ(with("stop", json::array({"a", ""})), std::make_pair(400, std::string("stop")));
  EXPECT_EQ(with("model", 3), std::make_pair(400, std::string("model")));
}

TEST(ParseRequest, UnsupportedParametersAreClear400s) {
  auto with = [](const char* key, const json& v) {
    json b = user("x");
    b[key] = v;
    return refusal(b);
  };
  EXPECT_EQ(with("n", 2), std::make_pair(400, std::string("n")));
  EXPECT_EQ(with("logprobs", true), std::make_pair(400, std::string("logprobs")));
  EXPECT_EQ(with("tools", json::array({{{"type", "function"}}})),
            std::make_pair(400, std::string("tools")));
  EXPECT_EQ(with("response_format", {{"type", "json_object"}}),
            std::make_pair(400, std::string("response_format")));
  EXPECT_EQ(with("response_format", {{"type", "text"}}).first, 0);  // the neutral value is fine
}

TEST(ParseRequest, FrequencyPenaltyAndIgnoreEos) {
  json b = user("x");
  b["frequency_penalty"] = 0.5;
  b["ignore_eos"] = true;
  const ChatRequest r = parse(b);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, 0.5f);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_FALSE(parse(user("x")).ignore_eos);
  b["frequency_penalty"] = 3;  // OpenAI's range is [-2, 2]
  EXPECT_EQ(refusal(b), std::make_pair(400, std::string("frequency_penalty")));
  b["frequency_penalty"] = 0;
  b["ignore_eos"] = 1;
  EXPECT_EQ(refusal(b), std::make_pair(400, std::string("ignore_eos")));
}

// Every shape a medium may come in, each to the same (kind, URL).
TEST(ParseRequest, MediaPartShapes) {
  const json parts = json::array({
      {{"type", "image_url"}, {"image_url", {{"url", "a.png"}}}},
      {{"type", "image_url"}, {"image_url", "b.png"}},
      {{"type", "input_image"}, {"image_url", "c.png"}},
      {{"type", "image"}, {"image", "d.png"}},
      {{"type", "image"},
       {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "AAAA"}}}},
      {{"type", "image"}, {"source", {{"type", "url"}, {"url", "file:///m/e.png"}}}},
      {{"type", "video_url"}, {"video_url", {{"url", "f.mp4"}}}},
      {{"type", "video"}, {"video", "g.mp4"}},
      {{"type", "video"},
       {"source", {{"type", "base64"}, {"media_type", "video/mp4"}, {"data", "AAAA"}}}},
      {{"type", "input_text"}, {"text", "hi"}},
  });
  const ChatRequest r = parse(user(parts));
  using K = ChatPart::Kind;
  const std::vector<std::pair<K, std::string>> want = {
      {K::Image, "a.png"}, {K::Image, "b.png"}, {K::Image, "c.png"},
      {K::Image, "d.png"}, {K::Image, "data:image/png;base64,AAAA"},
      {K::Image, "file:///m/e.png"}, {K::Video, "f.mp4"}, {K::Video, "g.mp4"},
      {K::Video, "data:video/mp4;base64,AAAA"}, {K::Text, "hi"}};
  ASSERT_EQ(r.turns[0].parts.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.turns[0].parts[i].kind, want[i].first) << i;
    EXPECT_EQ(r.turns[0].parts[i].text, want[i].second) << i;
  }
  for (const json& bad : {json{{"type", "image"}, {"source", {{"type", "file"}}}},
                          json{{"type", "image"}, {"source", "x"}},
                          json{{"type", "image"}, {"source", {{"type", "base64"}, {"data", "A"}}}},
                          json{{"type", "video"}},
                          json{{"type", "image"}, {"image", 5}}})
    EXPECT_EQ(refusal(user(json::array({bad}))).first, 400) << bad.dump();
}

TEST(ParseRequest, VideoOptionsInVllmsFormsAndOurs) {
  EXPECT_TRUE(parse(user("x")).video.empty());
  json b = user("x");
  b["mm_processor_kwargs"] = {{"fps", 1.5},
                              {"max_frames", 16},
                              {"do_sample_frames", true},
                              {"size", {{"longest_edge", 1000000}, {"shortest_edge", 4096}}}};
  b["media_io_kwargs"] = {{"video", {{"num_frames", 6}}}};
  b["max_video_tokens"] = 900;
  const VideoRequestOptions v = parse(b).video;
  EXPECT_EQ(v.fps, 1.5);
  EXPECT_EQ(v.num_frames, 6);
  EXPECT_EQ(v.max_frames, 16);
  EXPECT_FALSE(v.min_frames);
  EXPECT_EQ(v.max_tokens, 900);
  EXPECT_EQ(v.max_pixels, 1000000);
  EXPECT_EQ(v.min_pixels, 4096);

  json top = user("x");
  top["fps"] = 1;
  top["num_frames"] = -1;  // vLLM's default: no override
  EXPECT_EQ(parse(top).video.fps, 1.0);
  EXPECT_FALSE(parse(top).video.num_frames);

  // The same option twice with the same value is fine; with another value it is refused.
  json same = user("x");
  same["fps"] = 2;
  same["mm_processor_kwargs"] = {{"fps", 2}};
  EXPECT_EQ(parse(same).video.fps, 2.0);
  same["mm_processor_kwargs"]["fps"] = 3;
  EXPECT_EQ(refusal(same), std::make_pair(400, std::string("mm_processor_kwargs.fps")));

  auto with = [](const char* key, const json& v) {
    json b = user("x");
    b[key] = v;
    return refusal(b);
  };
  EXPECT_EQ(with("fps", 0), std::make_pair(400, std::string("fps")));
  EXPECT_EQ(with("num_frames", 0), std::make_pair(400, std::string("num_frames")));
  EXPECT_EQ(with("num_frames", 100000), std::make_pair(400, std::string("num_frames")));
  EXPECT_EQ(with("mm_processor_kwargs", {{"temperature", 1}}),
            std::make_pair(400, std::string("mm_processor_kwargs.temperature")));
  EXPECT_EQ(with("mm_processor_kwargs", {{"fps", "2"}}),
            std::make_pair(400, std::string("mm_processor_kwargs.fps")));
  EXPECT_EQ(with("mm_processor_kwargs", {{"size", 5}}),
            std::make_pair(400, std::string("mm_processor_kwargs.size")));
  EXPECT_EQ(with("mm_processor_kwargs", 5), std::make_pair(400, std::string("mm_processor_kwargs")));
  EXPECT_EQ(with("media_io_kwargs", {{"video", {{"backend", "x"}}}}),
            std::make_pair(400, std::string("media_io_kwargs.video.backend")));
  EXPECT_EQ(with("media_io_kwargs", {{"audio", {}}}),
            std::make_pair(400, std::string("media_io_kwargs.audio")));
  json order = user("x");
  order["min_frames"] = 10;
  order["max_frames"] = 4;
  EXPECT_EQ(refusal(order), std::make_pair(400, std::string("min_frames")));
}

TEST(ApplyVideoRequest, OverridesOnlyWhatIsGiven) {
  VideoOptions server;
  server.n_frames = 8;  // --frames 8
  server.max_tokens = 5000;
  EXPECT_EQ(apply_video_request(server, {}).n_frames, 8);
  VideoRequestOptions fps;
  fps.fps = 1;
  const VideoOptions a = apply_video_request(server, fps);
  EXPECT_EQ(a.fps, 1);
  EXPECT_EQ(a.n_frames, 0);  // a request's fps replaces the server's --frames
  EXPECT_EQ(a.max_tokens, 5000);
  VideoRequestOptions both;
  both.fps = 1;
  both.num_frames = 4;
  EXPECT_EQ(apply_video_request(server, both).n_frames, 4);  // num_frames wins, as --frames
  VideoRequestOptions lo;
  lo.min_frames = 1000;  // above the server's max_frames (768): the maximum follows
  const VideoOptions b = apply_video_request(VideoOptions{}, lo);
  EXPECT_EQ(b.min_frames, 1000);
  EXPECT_EQ(b.max_frames, 1000);
  VideoRequestOptions px;
  px.max_pixels = 1000;  // below the default minimum: the minimum follows
  const VideoOptions c = apply_video_request(VideoOptions{}, px);
  EXPECT_EQ(c.budget.max_pixels, 1000);
  EXPECT_EQ(c.budget.min_pixels, 1000);
}

TEST(ParseRequest, MalformedBodies) {
  for (const char* body :
       {"", "{", "[]", "null", "42", "{\"messages\": []}", "{\"messages\": {}}",
        "{\"messages\": [1]}", "{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"audio\"}]}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [\"x\"]}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}"})
    EXPECT_EQ(refusal(std::string(body)).first, 400) << body;
}

TEST(ParseRequest, NestingAndCountLimits) {
  std::string deep = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"extra\": ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}";
  EXPECT_EQ(refusal(deep).first, 400);
  EXPECT_EQ(json_depth("[[[\"[[[[\"]]]", 10), 3);  // brackets inside strings do not count
  EXPECT_EQ(json_depth("[[[[", 2), 3);

  ParseLimits small;
  small.max_messages = 2;
  json many = {{"messages", json::array()}};
  for (int i = 0; i < 3; ++i) many["messages"].push_back({{"role", "user"}, {"content", "x"}});
  EXPECT_THROW(parse_chat_request(many.dump(), small), ApiError);
  small = {};
  small.max_media = 1;
  const json two_images =
      user(json::array({{{"type", "image_url"}, {"image_url", {{"url", "a"}}}},
                        {{"type", "image_url"}, {"image_url", {{"url", "b"}}}}}));
  EXPECT_THROW(parse_chat_request(two_images.dump(), small), ApiError);
}

TEST(ErrorObject, HasAllFourKeysWithNulls) {
  const json e = json::parse(error_body(ApiError(400, "bad thing", "messages[0].role")));
  ASSERT_TRUE(e.contains("error"));
  EXPECT_EQ(e["error"]["message"], "bad thing");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "messages[0].role");
  ASSERT_TRUE(e["error"].contains("code"));
  EXPECT_TRUE(e["error"]["code"].is_null());
  const json r = json::parse(error_body(ApiError(429, "busy", "", "queue_full")));
  EXPECT_TRUE(r["error"]["param"].is_null());
  EXPECT_EQ(r["error"]["type"], "rate_limit_error");
  EXPECT_EQ(r["error"]["code"], "queue_full");
}

TEST(ErrorObject, ReelKindsMapToStatuses) {
  EXPECT_EQ(api_error_of(Error("bad")).status(), 400);
  EXPECT_EQ(api_error_of(ContextFull("full")).status(), 400);
  EXPECT_EQ(api_error_of(ContextFull("full")).code(), "context_length_exceeded");
  EXPECT_EQ(api_error_of(Unsupported("no")).status(), 400);
  EXPECT_EQ(api_error_of(IoError("disk")).status(), 500);
  EXPECT_EQ(api_error_of(InternalError("bug")).status(), 500);
  EXPECT_EQ(api_error_of(std::runtime_error("x")).status(), 500);
  EXPECT_EQ(api_error_of(ApiError(403, "no")).status(), 403);
}

TEST(Base64, DecodesStrictly) {
  std::string out;
  ASSERT_TRUE(decode_base64("aGVsbG8=", out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(decode_base64("aGVsbG8", out));  // padding optional
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(decode_base64("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(decode_base64("aGV sbG8=", out));
  EXPECT_FALSE(decode_base64("a", out));
  EXPECT_FALSE(decode_base64("a*==", out));
}

TEST(StopStrings, CutTheAnswerBeforeTheFirstMatchAcrossPieces) {
  StopMatcher m({"STOP", "\n\n"});
  std::string out = m.push("Hello ST");
  EXPECT_EQ(out, "Hello ");  // "ST" could begin STOP: held back
  out += m.push("ILL here S");
  EXPECT_EQ(out, "Hello STILL here ");
  out += m.push("TOP and more");
  EXPECT_EQ(out, "Hello STILL here ");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("later"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, HeldTailIsFlushedAtTheEnd) {
  StopMatcher m({"<end>"});
  EXPECT_EQ(m.push("abc<en"), "abc");
  EXPECT_EQ(m.flush(), "<en");
  EXPECT_FALSE(m.stopped());
  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
}

}  // namespace
}  // namespace reel::server
