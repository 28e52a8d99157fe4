// End-to-end accuracy of the shipped shapes-world model (assets/models/reel-shapes*.gguf) on a
// held-out set (tests/eval/data, questions.tsv; made by tools/train/make_eval.py from a seed the
// training never saw), through the `reel` binary exactly as a user runs it: one process per
// question, greedy (--temp 0). Two promises, checked per sampling:
//   * the model answers as well as it was measured to (per-template floors below; issue 14's
//     targets are not reached yet), which only holds if decoding, sampling, timestamps, temporal
//     pairs, 3-axis positions and the prompt all carry the meaning through;
//   * Reel's greedy answers equal transformers' on the same files (tests/eval/hf_answers.tsv, made
//     by tools/train/hf_answers.py) for >= 98% of the questions; every difference is listed with
//     transformers' smallest top-1/top-2 logit margin over that answer.
// REEL_EVAL_JOBS (default 2) reel processes run at a time; REEL_EVAL_LIMIT=N asks only every
// N-th question (a quick look; the floors are then checked on that sample). The --frames 8 pass
// asks every second video question (140) to keep the suite near 3 minutes on 2 cores;
// REEL_EVAL_FULL=1 (`make eval`) asks them all.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kReel = REEL_BINARY;
const fs::path kEvalDir = REEL_EVAL_DIR;
const fs::path kModelsDir = REEL_MODELS_DIR;

// Issue 14 asks for >= 95% on every one-word template and >= 80% exact descriptions. The shipped
// model (assets/models/README.md, "Measured") does not reach that yet, so these floors guard what
// it does reach: each sits under the lowest accuracy measured (2 fps, --frames 8, and the
// --frames 8 pass's half sample: ~20-130 questions per template, so one answer is 1-5 points)
// with room for a few answers flipping between CPUs / kernels (see the agreement check below),
// and well above chance on every template (motion and descriptions too, since the model of
// 2026-12-03). A pipeline bug that scrambles pixels, frame order, timestamps, positions or the
// prompt drops the learned templates to chance and fails. Raise them to issue 14's values when a
// better-trained model ships.
const std::map<std::string, double> kMinAccuracy = {
    // measured 97% / 98% / 100% (2 fps / --frames 8 / its half sample), 96% / 93% / 97%,
    // 94% / 95% / 89%, 97% / 99% / 97%, 55% / 55% / 48%; chance is ~30%, 33%, 33%, 20%, ~0%.
    // Each floor is the lowest of the three less two answers of the half sample (19-37 questions
    // a template there: 3-10 points).
    {"color", 0.88},
    {"shape", 0.85},
    {"count", 0.78},
    {"motion", 0.90},
    {"describe", 0.38}};
// Reel and transformers run the same weights in float32 with different summation orders and
// kernels; a greedy answer may flip only where transformers' top-2 margin is tiny.
constexpr double kMinAgreement = 0.98;

struct Question {
  std::string file, kind, templ, question, answer;
};

struct HfAnswer {
  std::string answer;
  double min_margin = 0;
};

std::vector<std::vector<std::string>> read_tsv(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::stringstream s(line);
    std::string c;
    while (std::getline(s, c, '\t')) cols.push_back(c);
    rows.push_back(cols);
  }
  return rows;
}

std::vector<Question> questions() {
  std::vector<Question> out;
  for (const auto& r : read_tsv(kEvalDir / "questions.tsv"))
    if (r.size() == 5) out.push_back({r[0], r[1], r[2], r[3], r[4]});
  return out;
}

// key: file + '\t' + sampling + '\t' + question
std::map<std::string, HfAnswer> hf_answers() {
  std::map<std::string, HfAnswer> out;
  for (const auto& r : read_tsv(kEvalDir / "hf_answers.tsv"))
    if (r.size() == 5) out[r[0] + '\t' + r[1] + '\t' + r[2]] = {r[3], std::stod(r[4])};
  return out;
}

// Compared ignoring case, surrounding white space and one final period.
std::string normalize(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One greedy answer from the reel binary (stdout), or "<exit N: stderr>" on failure.
std::string ask(const Question& q, const std::string& sampling_flags, const fs::path& tmp) {
  const fs::path out = tmp.string() + ".out", err = tmp.string() + ".err";
  const std::string media = (q.kind == "image" ? " --image '" : " --video '") +
                            (kEvalDir / "data" / q.file).string() + "'";
  const std::string cmd = "timeout 120 " + kReel + " -m '" +
                          (kModelsDir / "reel-shapes.gguf").string() + "' --mmproj '" +
                          (kModelsDir / "reel-shapes-mmproj.gguf").string() + "'" + media +
                          sampling_flags + " --temp 0 -n 40 -t 1 -p '" + q.question +
                          "' < /dev/null > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code != 0) return "<exit " + std::to_string(code) + ": " + slurp(err) + ">";
  return slurp(out);
}

std::vector<std::string> ask_all(const std::vector<Question>& qs, const std::string& flags) {
  std::vector<std::string> answers(qs.size());
  const fs::path dir = fs::temp_directory_path() / ("reel-eval-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const char* env = std::getenv("REEL_EVAL_JOBS");
  const int jobs = std::max(1, env ? std::atoi(env) : 2);
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int j = 0; j < jobs; ++j)
    pool.emplace_back([&, j] {
      for (size_t i; (i = next++) < qs.size();)
        answers[i] = ask(qs[i], flags, dir / ("q" + std::to_string(j)));
    });
  for (auto& t : pool) t.join();
  fs::remove_all(dir);
  return answers;
}

struct Tally {
  int n = 0, correct = 0;
  double rate() const { return n ? double(correct) / n : 0; }
};

// Asks every question of the given kinds with the sampling flags; prints the accuracy table and
// the differences from transformers; checks the floors.
void evaluate(const std::string& sampling, const std::string& flags, bool videos_only, int every) {
  std::vector<Question> qs;
  for (const auto& q : questions())
    if (!videos_only || q.kind == "video") qs.push_back(q);
  ASSERT_GE(qs.size(), videos_only ? 200u : 300u) << "held-out set missing: " << kEvalDir;
  if (const char* limit = std::getenv("REEL_EVAL_LIMIT"); limit && std::atoi(limit) > 1)
    every = std::atoi(limit);
  if (every > 1) {
    std::vector<Question> sample;
    for (size_t i = 0; i < qs.size(); i += every) sample.push_back(qs[i]);
    qs = sample;
  }
  const auto answers = ask_all(qs, flags);
  const auto hf = hf_answers();

  std::map<std::string, Tally> by_template;
  Tally all, agree;
  std::vector<std::string> diffs;
  for (size_t i = 0; i < qs.size(); ++i) {
    const Question& q = qs[i];
    const std::string s = q.kind == "image" ? "img" : sampling;
    const bool ok = normalize(answers[i]) == normalize(q.answer);
    for (Tally* t : {&by_template[q.kind + " " + q.templ], &by_template["all " + q.templ], &all}) {
      t->n++;
      t->correct += ok;
    }
    const auto it = hf.find(q.file + '\t' + s + '\t' + q.question);
    const bool same = it != hf.end() && normalize(it->second.answer) == normalize(answers[i]);
    agree.n++;
    agree.correct += same;
    if (!same) {
      std::ostringstream d;
      d << q.file << " [" << s << "] " << q.question << "  reel: \"" << normalize(answers[i])
        << "\"  transformers: \"" << (it == hf.end() ? "<missing>" : it->second.answer)
        << "\"  top-2 margin " << (it == hf.end() ? -1.0 : it->second.min_margin);
      diffs.push_back(d.str());
    }
    if (!ok && std::getenv("REEL_EVAL_VERBOSE"))
      std::printf("  wrong: %s [%s] %s -> \"%s\" (want \"%s\")\n", q.file.c_str(), s.c_str(),
                  q.question.c_str(), normalize(answers[i]).c_str(), q.answer.c_str());
  }
  std::printf("\nshapes-world held-out accuracy, videos sampled %s\n", sampling.c_str());
  std::printf("  %-16s %9s %7s\n", "template", "questions", "correct");
  for (const auto& [name, t] : by_template)
    std::printf("  %-16s %9d %6.1f%%\n", name.c_str(), t.n, 100 * t.rate());
  std::printf("  %-16s %9d %6.1f%%\n", "overall", all.n, 100 * all.rate());
  std::printf("  reel == transformers (greedy): %d/%d (%.1f%%)\n", agree.correct, agree.n,
              100 * agree.rate());
  for (const auto& d : diffs) std::printf("    differs: %s\n", d.c_str());
  std::fflush(stdout);

  for (const auto& [name, t] : by_template) {
    if (name.rfind("all ", 0) != 0) continue;
    EXPECT_GE(t.rate(), kMinAccuracy.at(name.substr(4))) << name << ": " << t.correct << "/" << t.n;
  }
  EXPECT_GE(agree.rate(), kMinAgreement) << agree.correct << "/" << agree.n;
}

TEST(ShapesEval, ImagesAndVideosAtDefaultSampling) {
  evaluate("fps2", "", false, 1);
}

TEST(ShapesEval, VideosWithEightFrames) {
  evaluate("frames8", " --frames 8", true, std::getenv("REEL_EVAL_FULL") ? 1 : 2);
}

}  // namespace
