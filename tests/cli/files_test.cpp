// End-to-end tests of how `reel` treats the files it is given: outputs (-o) are never destroyed
// (an input given as the output is refused, a failed or interrupted run leaves an existing
// output untouched, a successful one replaces it atomically), inputs that are not regular files
// (FIFOs, devices, directories, sockets, link loops) are refused at once with their reason, and
// absurd flag values are refused or clamped with a message naming the value.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <thread>

#include "run_reel.h"

namespace reel::test {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f32.gguf";
const std::string kImage = REEL_FIXTURE_SRC "/images/rgb-32x32.png";
// rgb-32x32.png is upscaled to 256x256: 64 tokens of (1 + 3 DeepStack) * 32 floats.
constexpr size_t kImageBytes = 64 * 128 * sizeof(float);

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

class Files : public ReelTest {
 protected:
  void SetUp() override {
    ReelTest::SetUp();
    model_ = dir_ / "model.gguf";
    mmproj_ = dir_ / "mmproj.gguf";
    image_ = dir_ / "image.png";
    prompt_ = file("prompt.txt", "Hello world");
    fs::copy_file(kModel, model_);
    fs::copy_file(kMmproj, mmproj_);
    fs::copy_file(kImage, image_);
  }
  std::string encode_args(const fs::path& out) const {
    return "encode --mmproj " + q(mmproj_) + " --image " + q(image_) + " -o " + q(out);
  }
  std::string logits_args(const fs::path& out) const {
    return "logits -m " + q(model_) + " -f " + q(prompt_) + " -o " + q(out);
  }
  // Names in the scratch directory that look like an output's temporary (".NAME.reel-XXXXXX").
  std::vector<std::string> temporaries() const {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.find(".reel-") != std::string::npos) found.push_back(name);
    }
    return found;
  }
  fs::path model_, mmproj_, image_, prompt_;
};

// ---- outputs never destroyed -----------------------------------------------------------------

TEST_F(Files, EncodeRefusesAnInputAsTheOutput) {
  const std::string mmproj_bytes = slurp(mmproj_), image_bytes = slurp(image_);
  fs::create_symlink(mmproj_, dir_ / "mmproj-link");
  fs::create_hard_link(mmproj_, dir_ / "mmproj-hard");
  fs::create_symlink(image_, dir_ / "image-link");
  fs::create_hard_link(image_, dir_ / "image-hard");
  for (const fs::path& out : {mmproj_, dir_ / "mmproj-link", dir_ / "mmproj-hard", image_,
                              dir_ / "image-link", dir_ / "image-hard", dir_ / "." / "image.png"}) {
    SCOPED_TRACE(out.string());
    expect_clean_error(reel(encode_args(out)), "refusing to overwrite an input");
    EXPECT_EQ(slurp(mmproj_), mmproj_bytes);
    EXPECT_EQ(slurp(image_), image_bytes);
  }
  EXPECT_TRUE(fs::is_symlink(dir_ / "mmproj-link"));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(Files, LogitsRefusesAnInputAsTheOutput) {
  const std::string model_bytes = slurp(model_), prompt_bytes = slurp(prompt_);
  fs::create_symlink(model_, dir_ / "model-link");
  fs::create_hard_link(model_, dir_ / "model-hard");
  for (const fs::path& out : {model_, dir_ / "model-link", dir_ / "model-hard", prompt_}) {
    SCOPED_TRACE(out.string());
    const Result r = reel(logits_args(out));
    expect_clean_error(r, "refusing to overwrite an input");
    EXPECT_NE(r.err.find(out == prompt_ ? "the prompt file" : "the model"), std::string::npos);
    EXPECT_EQ(slurp(model_), model_bytes);
    EXPECT_EQ(slurp(prompt_), prompt_bytes);
  }
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(Files, FailedRunLeavesTheExistingOutputUntouched) {
  const fs::path out = file("out.f32", "precious");
  const fs::path corrupt = file("corrupt.png", "\x89PNG\r\n\x1a\n not really");
  // The second image fails after the first one's tokens were written.
  expect_clean_error(reel("encode --mmproj " + q(mmproj_) + " --image " + q(image_) + " --image " +
                          q(corrupt) + " -o " + q(out)),
                     "corrupt.png");
  EXPECT_EQ(slurp(out), "precious");
  expect_clean_error(reel("encode --mmproj " + q(dir_ / "missing.gguf") + " --image " + q(image_) +
                          " -o " + q(out)),
                     "no such file");
  EXPECT_EQ(slurp(out), "precious");
  // Logits: the prompt does not fit the context, found after the output was prepared.
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "word ";
  file("prompt.txt", long_prompt);
  expect_clean_error(reel(logits_args(out) + " -c 64"), "context");
  EXPECT_EQ(slurp(out), "precious");
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(Files, SuccessReplacesTheOutputAtomically) {
  const fs::path out = file("out.f32", "old contents");
  ASSERT_EQ(::chmod(out.c_str(), 0640), 0);
  struct stat before {};
  ASSERT_EQ(::stat(out.c_str(), &before), 0);
  const Result r = reel(encode_args(out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fs::file_size(out), kImageBytes);
  struct stat after {};
  ASSERT_EQ(::stat(out.c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino) << "written in place, not renamed over the target";
  EXPECT_EQ(after.st_mode & 07777, 0640u) << "the target's permissions were not kept";
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(Files, OutputThroughASymlinkReplacesTheLinkedFile) {
  fs::create_directories(dir_ / "real");
  const fs::path real = file("real/out.f32", "old"), link = dir_ / "link.f32";
  fs::create_symlink(real, link);
  const Result r = reel(logits_args(link));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::file_size(real), 2 * 151936 * sizeof(float));  // "Hello world": 2 tokens
}

TEST_F(Files, InterruptedRunRemovesItsTemporary) {
  const fs::path out = file("out.f32", "precious");
  // Enough images that the run is still writing when the signal comes (each takes ~50 ms).
  std::vector<std::string> args = {"encode", "--mmproj", mmproj_.string(), "-o", out.string()};
  for (int i = 0; i < 400; ++i) {
    args.push_back("--image");
    args.push_back(image_.string());
  }
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    SCOPED_TRACE(sig);
    const pid_t pid = start(args);
    ASSERT_GT(pid, 0);
    // Wait until the temporary holds data, so the signal lands mid-write.
    bool writing = false;
    for (int i = 0; i < 6000 && !writing; ++i) {
      for (const std::string& t : temporaries()) {
        std::error_code ec;
        if (fs::file_size(dir_ / t, ec) > 0 && !ec) writing = true;
      }
      if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, sig);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(writing) << "the temporary never received data";
    EXPECT_EQ(exit_code(status), 128 + sig) << "not ended by the signal";
    EXPECT_EQ(slurp(out), "precious");
    EXPECT_TRUE(temporaries().empty());
  }
}

TEST_F(Files, OutputErrorsAreOneLine) {
  expect_clean_error(reel(encode_args(dir_ / "no-dir" / "out.f32")), "no such directory");
  expect_clean_error(reel(encode_args(dir_)), "is a directory");
  expect_clean_error(reel(encode_args("/dev/full")), "write error");
  // A device is written in place, never replaced (as root, a rename over /dev/null would work).
  const Result r = reel(encode_args("/dev/null"));
  EXPECT_EQ(r.code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // A FIFO with no reader: an error, not a wait.
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  expect_clean_error(reel(encode_args(dir_ / "fifo"), 20), "no reader");
}

// ---- inputs that are not regular files ---------------------------------------------------------

// A socket bound at `path` (unlinked with the scratch directory); -1 on failure.
int bound_socket(const fs::path& path) {
  const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = path.string();
  if (s < 0 || p.size() >= sizeof addr.sun_path) return -1;
  std::copy(p.begin(), p.end(), addr.sun_path);
  return ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? s : -1;
}

TEST_F(Files, ModelsThatAreNotRegularFiles) {
  const fs::path fifo = dir_ / "fifo.gguf", loop = dir_ / "loop.gguf", sock = dir_ / "s.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(loop, loop);
  const int s = bound_socket(sock);
  ASSERT_GE(s, 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {q(fifo), "is a FIFO/pipe, not a regular file"},
      {"/dev/zero", "is a device, not a regular file"},
      {q(dir_), "is a directory"},
      {q(loop), "too many levels of symbolic links (a link loop?)"},
      {q(sock), "is a socket, not a regular file"},
      {q(dir_ / "missing.gguf"), "no such file"},
      {q(prompt_) + "/x.gguf", "a path component is not a directory"},
  };
  for (const auto& [path, reason] : cases) {
    SCOPED_TRACE(path);
    // 20 s: each must fail at once; a FIFO used to block in open() forever.
    expect_clean_error(reel("-m " + path + " -p hi", 20), reason);
    expect_clean_error(
        reel("-m " + q(model_) + " --mmproj " + path + " --image " + q(image_) + " -p hi", 20),
        reason);
    expect_clean_error(reel("tokenize -m " + path + " -f " + q(prompt_), 20), reason);
    expect_clean_error(
        reel("encode --mmproj " + path + " --image " + q(image_) + " -o " + q(dir_ / "out.f32"),
             20),
        reason);
  }
  ::close(s);
  EXPECT_FALSE(fs::exists(dir_ / "out.f32"));
  EXPECT_TRUE(temporaries().empty());
}

TEST_F(Files, ImagesThatAreNotRegularFiles) {
  const fs::path fifo = dir_ / "fifo.png", loop = dir_ / "loop.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(loop, loop);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {q(fifo), "is a FIFO/pipe, not a regular file"},
      {"/dev/zero", "is a device, not a regular file"},
      {q(dir_), "is a directory"},
      {q(loop), "too many levels of symbolic links (a link loop?)"},
  };
  for (const auto& [path, reason] : cases) {
    SCOPED_TRACE(path);
    expect_clean_error(
        reel("encode --mmproj " + q(mmproj_) + " --image " + path + " -o " + q(dir_ / "out.f32"),
             20),
        reason);
    expect_clean_error(
        reel("-m " + q(model_) + " --mmproj " + q(mmproj_) + " --image " + path + " -p hi -n 1",
             20),
        reason);
  }
}

TEST_F(Files, PromptFiles) {
  const fs::path loop = dir_ / "loop.txt";
  fs::create_symlink(loop, loop);
  for (const std::string& base : {"-m " + q(model_), "tokenize -m " + q(model_)}) {
    SCOPED_TRACE(base);
    expect_clean_error(reel(base + " -f " + q(loop)), "a link loop?");
    expect_clean_error(reel(base + " -f " + q(dir_)), "is a directory");
    expect_clean_error(reel(base + " -f " + q(dir_ / "missing.txt")), "no such file");
    expect_clean_error(reel(base + " -f /dev/zero", 60), "over the 64 MiB limit");
  }
  // A pipe is a fine prompt file (`-f <(cmd)`, /dev/stdin): read to its end.
  const fs::path out = dir_ / "ids.txt";
  const std::string cmd = "echo Hello world | timeout 60 " REEL_BINARY " tokenize -m " + q(model_) +
                          " -f /dev/stdin > " + q(out);
  ASSERT_EQ(exit_code(std::system(cmd.c_str())), 0);
  EXPECT_EQ(slurp(out), "9707 1879 198\n");  // "Hello world\n"
}

TEST_F(Files, UnreadableFilesSaySo) {
  if (::geteuid() == 0) {
    // Root reads mode-000 files: run reel as an unprivileged user instead, when possible.
    if (std::system("command -v setpriv > /dev/null") != 0)
      GTEST_SKIP() << "running as root without setpriv: permissions cannot be tested";
    runner_ = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  for (const fs::path& p : {model_, image_, prompt_}) ASSERT_EQ(::chmod(p.c_str(), 0), 0);
  expect_clean_error(reel("-m " + q(model_) + " -p hi"), model_.string() + ": permission denied");
  expect_clean_error(reel("tokenize -m " + q(model_) + " -f " + q(prompt_)), "permission denied");
  const Result prompt = reel("-m " + q(model_) + " -f " + q(prompt_));
  expect_clean_error(prompt, prompt_.string() + ": permission denied");
  // -o /dev/null: the unprivileged user cannot create files in the scratch directory.
  expect_clean_error(
      reel("encode --mmproj " + q(mmproj_) + " --image " + q(image_) + " -o /dev/null"),
      image_.string() + ": permission denied");
}

// ---- flag values
// ----------------------------------------------------------------------------------

TEST_F(Files, AbsurdFlagValues) {
  const std::string base = "-m " + q(model_) + " -p hi -n 1 ";
  for (const char* flag : {"-t 0",
                           "-t 2000",
                           "-c 1000000000",
                           "-c -1",
                           "--fps 0",
                           "--fps -2",
                           "--frames 0",
                           "--frames -3",
                           "-n -5",
                           "-b 0",
                           "-b -1",
                           "--top-k -1",
                           "--max-video-tokens 0",
                           "--image-min-tokens 0",
                           "--image-max-tokens -4",
                           "-s -1",
                           "-s 99999999999999999999",
                           "-s 12x",
                           "--image-min-tokens 100 --image-max-tokens 10",
                           "--image-max-tokens 10 --image-min-tokens 100"}) {
    SCOPED_TRACE(flag);
    const Result r = reel(base + flag, 30);
    expect_clean_error(r, "");
    EXPECT_EQ(r.code, 2) << r.err;  // a usage error
  }
  const Result order = reel(base + "--image-min-tokens 100 --image-max-tokens 10");
  EXPECT_NE(order.err.find("100 is more than --image-max-tokens 10"), std::string::npos)
      << order.err;
  // The same check in the encode subcommand.
  const Result enc =
      reel(encode_args(dir_ / "o.f32") + " --image-min-tokens 9 --image-max-tokens 8");
  expect_clean_error(enc, "9 is more than --image-max-tokens 8");
  // Over the model's own context length: named.
  expect_clean_error(reel(base + "-c 16000000"), "context length");
  // A lone --image-max-tokens below the default minimum is fine: the maximum wins.
  EXPECT_EQ(reel("-m " + q(model_) + " --mmproj " + q(mmproj_) + " --image " + q(image_) +
                 " -p hi -n 1 --image-max-tokens 10")
                .code,
            0);
}

TEST_F(Files, TooManyThreadsAreClampedWithAWarning) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const Result r = reel("-m " + q(model_) + " -p hi -n 1 -t 1000", 60);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("-t 1000 is more than 4 threads per core (" + std::to_string(cores) +
                       " cores); using " + std::to_string(4 * cores)),
            std::string::npos)
      << r.err;
}

}  // namespace
// A write the system refuses (a full disk) is an I/O error: exit code 74, the file named.
TEST_F(Files, FullDiskExitsWithTheIoErrorCode) {
  const Result r = reel(encode_args("/dev/full"));
  EXPECT_EQ(r.code, 74) << r.err;
  EXPECT_NE(r.err.find("/dev/full"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace reel::test
