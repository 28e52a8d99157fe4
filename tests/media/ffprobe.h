// Running the ffmpeg / ffprobe CLIs from tests: their output, and a clip's true frame times.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace reel::test {

// stdout of a shell command; "ERROR rc=N ..." when it fails.
inline std::string run_output(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  if (rc != 0) out = "ERROR rc=" + std::to_string(rc) + " " + out;
  return out;
}

// The presented frames' times relative to the first one, ascending, from ffprobe: packets
// flagged discard (D, cut by an mp4 edit list) are not presented.
inline std::vector<double> relative_pts(const std::filesystem::path& file) {
  const std::string out = run_output(
      "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags -of csv=p=0 '" +
      file.string() + "'");
  std::vector<double> pts;
  size_t at = 0;
  while (at < out.size()) {
    const size_t nl = std::min(out.find('\n', at), out.size());
    const std::string line = out.substr(at, nl - at);
    const size_t comma = line.find(',');
    if (comma != std::string::npos && line.find('D', comma) == std::string::npos)
      pts.push_back(std::stod(line.substr(0, comma)));
    at = nl + 1;
  }
  std::sort(pts.begin(), pts.end());
  for (size_t i = 1; i < pts.size(); ++i) pts[i] -= pts[0];
  if (!pts.empty()) pts[0] = 0;
  return pts;
}

}  // namespace reel::test
