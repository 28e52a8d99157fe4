// chat_template_kwargs.enable_thinking (Qwen3.5's thinking switch) as the request parser
// takes it: absent or null leaves the model's default, a boolean sets it, anything else is a
// 400 naming the parameter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/request.h"

namespace reel::server {
namespace {

using nlohmann::json;

json with_kwargs(const json& kwargs) {
  json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  if (!kwargs.is_discarded()) body["chat_template_kwargs"] = kwargs;
  return body;
}

std::string refused_param(const json& body) {
  try {
    parse_chat_request(body.dump());
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.param();
  }
  return "(accepted)";
}

TEST(ThinkRequest, EnableThinkingSetsTheSwitch) {
  EXPECT_EQ(parse_chat_request(with_kwargs(json::value_t::discarded).dump()).think,
            Think::kDefault);
  EXPECT_EQ(parse_chat_request(with_kwargs(json::object()).dump()).think, Think::kDefault);
  EXPECT_EQ(parse_chat_request(with_kwargs({{"enable_thinking", nullptr}}).dump()).think,
            Think::kDefault);
  EXPECT_EQ(parse_chat_request(with_kwargs({{"enable_thinking", true}}).dump()).think, Think::kOn);
  EXPECT_EQ(parse_chat_request(with_kwargs({{"enable_thinking", false}}).dump()).think,
            Think::kOff);
}

TEST(ThinkRequest, WrongTypesAndOtherKwargsAreRefused) {
  EXPECT_EQ(refused_param(with_kwargs({{"enable_thinking", "yes"}})),
            "chat_template_kwargs.enable_thinking");
  EXPECT_EQ(refused_param(with_kwargs({{"enable_thinking", 1}})),
            "chat_template_kwargs.enable_thinking");
  EXPECT_EQ(refused_param(with_kwargs(json::array({true}))), "chat_template_kwargs");
  EXPECT_EQ(refused_param(with_kwargs({{"add_vision_id", true}})),
            "chat_template_kwargs.add_vision_id");
}

}  // namespace
}  // namespace reel::server
