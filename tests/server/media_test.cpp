// Where request media come from: data: URLs into private temporary files (removed with their
// request, the folder with the server), and paths or file:// URLs only inside a media folder,
// after links and ".." are resolved (403 otherwise).
#include "server/media.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace reel::server {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class MediaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("media_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "allowed" / "sub");
    fs::create_directories(root_ / "secret");
    std::ofstream(root_ / "allowed" / "sub" / "a b.png") << "inside";
    std::ofstream(root_ / "secret" / "key.png") << "outside";
    fs::create_symlink(root_ / "secret" / "key.png", root_ / "allowed" / "link.png");
  }
  void TearDown() override { fs::remove_all(root_); }

  // The status of the ApiError resolving `url` throws (0: resolved, into *path).
  int resolve(MediaResolver& r, const std::string& url, std::string* path = nullptr) {
    std::vector<ChatTurn> turns = {{"user", {{ChatPart::Kind::Image, url}}}};
    TempFiles files;
    try {
      r.resolve(turns, files);
    } catch (const ApiError& e) {
      return e.status();
    }
    if (path) *path = turns[0].parts[0].text;
    return 0;
  }
  std::string allowed() const { return (root_ / "allowed").string(); }
  fs::path root_;
};

TEST_F(MediaTest, DataUrlBecomesAPrivateFileRemovedWithItsRequest) {
  MediaResolver r({});
  std::vector<ChatTurn> turns = {
      {"user",
       {{ChatPart::Kind::Text, "hi"}, {ChatPart::Kind::Image, "data:image/png;base64,aGVsbG8="}}}};
  std::string path;
  {
    TempFiles files;
    r.resolve(turns, files);
    path = turns[0].parts[1].text;
    EXPECT_EQ(turns[0].parts[0].text, "hi");
    EXPECT_EQ(path.rfind(r.temp_dir() + "/", 0), 0u) << path;
    EXPECT_EQ(slurp(path), "hello");
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::others_read, fs::perms::none);
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(MediaTest, TemporaryFolderGoesWithTheResolver) {
  std::string dir;
  {
    MediaResolver r({});
    dir = r.temp_dir();
    EXPECT_TRUE(fs::is_directory(dir));
  }
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(MediaTest, MalformedAndUnsupportedUrlsAre400) {
  MediaResolver r({allowed()});
  EXPECT_EQ(resolve(r, "data:image/png;base64,@@@"), 400);
  EXPECT_EQ(resolve(r, "data:image/png,plain"), 400);
  EXPECT_EQ(resolve(r, "data:image/png;base64"), 400);
  EXPECT_EQ(resolve(r, "data:image/png;base64,"), 400);
  EXPECT_EQ(resolve(r, "https://example.com/a.png"), 400);
  EXPECT_EQ(resolve(r, "ftp://example.com/a.png"), 400);
  EXPECT_EQ(resolve(r, "file://a.png"), 400);
  EXPECT_EQ(resolve(r, "file:///x%zz"), 400);
}

TEST_F(MediaTest, PathsOnlyInsideAMediaFolder) {
  MediaResolver r({allowed()});
  std::string path;
  EXPECT_EQ(resolve(r, allowed() + "/sub/a b.png", &path), 0);
  EXPECT_EQ(slurp(path), "inside");
  EXPECT_EQ(resolve(r, "file://" + allowed() + "/sub/a%20b.png", &path), 0);
  EXPECT_EQ(slurp(path), "inside");
  EXPECT_EQ(resolve(r, allowed() + "/sub/../sub/a b.png"), 0);
  EXPECT_EQ(resolve(r, allowed() + "/../secret/key.png"), 403);
  EXPECT_EQ(resolve(r, allowed() + "/link.png"), 403);  // a link that leaves the folder
  EXPECT_EQ(resolve(r, (root_ / "secret" / "key.png").string()), 403);
  EXPECT_EQ(resolve(r, "/etc/passwd"), 403);
  EXPECT_EQ(resolve(r, allowed() + "/missing.png"), 400);
  EXPECT_EQ(resolve(r, allowed() + "sibling/x.png"), 403);  // a name that only starts the same
}

TEST_F(MediaTest, NoMediaFolderMeansNoPaths) {
  MediaResolver r({});
  EXPECT_EQ(resolve(r, allowed() + "/sub/a b.png"), 403);
}

TEST_F(MediaTest, MissingMediaFolderIsRefused) {
  EXPECT_THROW(MediaResolver({(root_ / "nope").string()}), std::exception);
}

}  // namespace
}  // namespace reel::server
