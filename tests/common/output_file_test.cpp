// OutputFile: the temporary-and-rename output. An input as the target is refused before anything
// is created; an abandoned output (exception, no commit) leaves the target as it was; commit()
// replaces it whole and keeps its permissions; devices are written in place, never replaced.
#include "common/output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/error.h"

namespace fs = std::filesystem;

namespace {

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reel_output_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string make_file(const std::string& name, const std::string& content) const {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  size_t entries() const {
    return std::distance(fs::directory_iterator(dir_), fs::directory_iterator());
  }
  static std::string error_of(const std::string& target, const std::vector<reel::NamedInput>& in) {
    try {
      reel::OutputFile out(target, in);
    } catch (const reel::Error& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(OutputFileTest, CommitReplacesTheTargetWhole) {
  const std::string target = make_file("out.f32", "old");
  ASSERT_EQ(::chmod(target.c_str(), 0604), 0);
  {
    reel::OutputFile out(target, {});
    out.write("new ", 4);
    EXPECT_EQ(read(target), "old") << "the target changed before commit";
    EXPECT_EQ(entries(), 2u);  // the target and the temporary
    out.write("data", 4);
    out.commit();
  }
  EXPECT_EQ(read(target), "new data");
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(OutputFileTest, CreatesAMissingTarget) {
  {
    reel::OutputFile out(path("new.f32"), {});
    out.write("x", 1);
    out.commit();
  }
  EXPECT_EQ(read(path("new.f32")), "x");
}

TEST_F(OutputFileTest, AbandonedOutputLeavesTheTargetAlone) {
  const std::string target = make_file("out.f32", "precious");
  try {
    reel::OutputFile out(target, {});
    out.write("partial", 7);
    throw reel::Error("the work failed");
  } catch (const reel::Error&) {
  }
  EXPECT_EQ(read(target), "precious");
  EXPECT_EQ(entries(), 1u) << "the temporary was left behind";
}

TEST_F(OutputFileTest, RefusesAnInputAsTheTarget) {
  const std::string model = make_file("m.gguf", "weights");
  ASSERT_EQ(::symlink(model.c_str(), path("sym").c_str()), 0);
  ASSERT_EQ(::link(model.c_str(), path("hard").c_str()), 0);
  const std::vector<reel::NamedInput> inputs = {{"prompt file", path("p.txt")}, {"model", model}};
  for (const std::string& target : {model, path("sym"), path("hard")}) {
    EXPECT_EQ(error_of(target, inputs), target + ": is the same file as the model " + model +
                                            "; refusing to overwrite an input");
  }
  EXPECT_EQ(read(model), "weights");
  EXPECT_EQ(entries(), 3u);  // nothing created
  EXPECT_EQ(error_of(path("other"), inputs), "");
}

TEST_F(OutputFileTest, TargetErrors) {
  EXPECT_EQ(error_of(dir_, {}), dir_ + ": is a directory");
  EXPECT_EQ(error_of(path("no/x"), {}),
            path("no/x") + ": cannot create a file in " + path("no") + ": no such directory");
  EXPECT_EQ(error_of("", {}), "empty output path");
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  EXPECT_EQ(error_of(path("fifo"), {}), path("fifo") + ": is a FIFO with no reader");
}

TEST_F(OutputFileTest, DevicesAreWrittenInPlace) {
  {
    reel::OutputFile out("/dev/null", {});
    EXPECT_EQ(out.temp_path(), "");
    out.write("x", 1);
    out.commit();
  }
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

// A full disk is the system failing, not a bad path: IoError (the CLI's exit code 74), with the
// target and the reason in the message.
TEST_F(OutputFileTest, FullDiskIsAnIoError) {
  reel::OutputFile full("/dev/full", {});
  std::string big(1 << 16, 'x');  // more than stdio buffers, so the write itself fails
  try {
    full.write(big.data(), big.size());
    full.commit();
    FAIL() << "writing to /dev/full succeeded";
  } catch (const reel::IoError& e) {
    EXPECT_EQ(std::string(e.what()), "/dev/full: write error: No space left on device");
  }
  // The same when the data fits the stdio buffer and the failure comes at commit.
  reel::OutputFile small("/dev/full", {});
  small.write("x", 1);
  EXPECT_THROW(small.commit(), reel::IoError);
}

TEST_F(OutputFileTest, TargetErrorsAreInvalidInput) {
  for (const std::string& target : {dir_, path("no/x"), std::string()}) {
    try {
      reel::OutputFile out(target, {});
      ADD_FAILURE() << target << " was accepted";
    } catch (const reel::Error& e) {
      EXPECT_EQ(e.kind(), reel::ErrorKind::InvalidInput) << e.what();
    }
  }
}

TEST_F(OutputFileTest, UseAfterCommitIsAnInternalError) {
  reel::OutputFile out(path("o"), {});
  out.commit();
  EXPECT_THROW(out.write("x", 1), reel::InternalError);
  EXPECT_THROW(out.commit(), reel::InternalError);
}

}  // namespace
