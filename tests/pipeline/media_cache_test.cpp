// The encoded-media cache: hits from memory and from disk in a fresh cache (a new process),
// misses whenever the file, the options or the model differ, corrupt entries dropped and
// recomputed, LRU eviction by bytes, concurrent use, and the file checks of hash_file. Values
// are built by hand: no model is needed.
#include "pipeline/media_cache.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "../gguf/gguf_builder.h"
#include "common/error.h"
#include "gguf/gguf.h"

namespace fs = std::filesystem;
using reel::EncodedImage;
using reel::EncodedVideo;
using reel::MediaCache;
using reel::MediaKey;
using reel::MediaKind;

namespace {

constexpr size_t kHeaderBytes = 48;  // the entry header's size (see media_cache.cpp)

// An image of 6 tokens (grid 4 x 6 patches), features of width 4 and 3 DeepStack layers; every
// field holds a value no other field holds, so a swapped field fails the comparison.
EncodedImage make_image(int seed) {
  EncodedImage e;
  e.path = "/photos/p" + std::to_string(seed) + ".jpg";
  e.width = 641 + seed;
  e.height = 479;
  e.resized_w = 96;
  e.resized_h = 64;
  e.grid_h = 4;
  e.grid_w = 6;
  for (int i = 0; i < 6 * 4; ++i) e.main.push_back(0.25f * float(i) + float(seed));
  for (int i = 0; i < 3 * 6 * 4; ++i) e.deepstack.push_back(-0.5f * float(i) - float(seed));
  e.main[3] = std::nanf("");  // NaN payloads survive: entries store the bytes
  e.decode_ms = 1.5 + seed;
  e.encode_ms = 2.75;
  return e;
}

// A video of 5 sampled frames in 3 temporal groups (the last frame repeated), 2 tokens per group,
// features of width 4 and 3 DeepStack layers.
EncodedVideo make_video(int seed, bool variable_rate) {
  EncodedVideo v;
  reel::VideoPlan& p = v.plan;
  p.path = "/clips/c" + std::to_string(seed) + ".mp4";
  reel::media::VideoInfo& i = p.info;
  i.width = 320;
  i.height = 180;
  i.coded_width = 180;
  i.coded_height = 322;
  i.rotation = 90;
  i.mirrored = true;
  i.sar_num = 4;
  i.sar_den = 3;
  i.fps = 29.97;
  i.header_fps = 30.0 + seed;
  i.n_frames = 40;
  i.duration_s = 1.3347;
  i.codec = "h264";
  i.container = "mov,mp4,m4a,3gp,3g2,mj2";
  i.has_audio = true;
  if (variable_rate) {
    std::vector<double> times;
    for (int f = 0; f < 40; ++f) times.push_back(f * 0.0333 + (f % 3) * 0.001);
    i.vfr_times_s = std::make_shared<const std::vector<double>>(std::move(times));
  }
  p.indices = {0, 5, 10, 15, 20};
  p.frames = {0, 5, 10, 15, 20, 20};
  p.group_times = {0.0834, 0.4171, 0.6673};
  p.as_images = false;
  p.display_corrections = true;
  p.resized_w = 64;
  p.resized_h = 32;
  p.grid_h = 2;
  p.grid_w = 4;
  p.n_groups = 3;
  p.notes = {"sampled 5 frames of 40", "frames resized to 64x32"};
  v.out_dim = 4;
  v.n_deepstack = 3;
  for (int k = 0; k < 6 * 4; ++k) v.main.push_back(0.125f * float(k) + float(seed));
  for (int k = 0; k < 3 * 6 * 4; ++k) v.deepstack.push_back(-2.0f * float(k) - float(seed));
  v.decode_ms = 10.5;
  v.encode_ms = 20.25 + seed;
  v.wall_ms = 25.125;
  return v;
}

// Bitwise equality of float arrays (NaN included): EXPECT_EQ on vectors would call NaN unequal.
void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b,
                        const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

// Exact equality everywhere: an entry stores bytes, so nothing may change on the way back.
void expect_equal(const EncodedImage& a, const EncodedImage& b) {
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.resized_w, b.resized_w);
  EXPECT_EQ(a.resized_h, b.resized_h);
  EXPECT_EQ(a.grid_h, b.grid_h);
  EXPECT_EQ(a.grid_w, b.grid_w);
  EXPECT_EQ(a.merge, b.merge);
  EXPECT_EQ(a.decode_ms, b.decode_ms);
  EXPECT_EQ(a.encode_ms, b.encode_ms);
  expect_same_floats(a.main, b.main, "main");
  expect_same_floats(a.deepstack, b.deepstack, "deepstack");
}

void expect_equal(const reel::media::VideoInfo& a, const reel::media::VideoInfo& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.coded_width, b.coded_width);
  EXPECT_EQ(a.coded_height, b.coded_height);
  EXPECT_EQ(a.rotation, b.rotation);
  EXPECT_EQ(a.mirrored, b.mirrored);
  EXPECT_EQ(a.sar_num, b.sar_num);
  EXPECT_EQ(a.sar_den, b.sar_den);
  EXPECT_EQ(a.fps, b.fps);
  EXPECT_EQ(a.header_fps, b.header_fps);
  EXPECT_EQ(a.n_frames, b.n_frames);
  EXPECT_EQ(a.duration_s, b.duration_s);
  EXPECT_EQ(a.codec, b.codec);
  EXPECT_EQ(a.container, b.container);
  EXPECT_EQ(a.has_audio, b.has_audio);
  ASSERT_EQ(a.variable_rate(), b.variable_rate());
  if (a.variable_rate()) {
    EXPECT_EQ(*a.vfr_times_s, *b.vfr_times_s);
  }
}

void expect_equal(const EncodedVideo& a, const EncodedVideo& b) {
  EXPECT_EQ(a.plan.path, b.plan.path);
  expect_equal(a.plan.info, b.plan.info);
  EXPECT_EQ(a.plan.indices, b.plan.indices);
  EXPECT_EQ(a.plan.frames, b.plan.frames);
  EXPECT_EQ(a.plan.group_times, b.plan.group_times);
  EXPECT_EQ(a.plan.as_images, b.plan.as_images);
  EXPECT_EQ(a.plan.display_corrections, b.plan.display_corrections);
  EXPECT_EQ(a.plan.resized_w, b.plan.resized_w);
  EXPECT_EQ(a.plan.resized_h, b.plan.resized_h);
  EXPECT_EQ(a.plan.grid_h, b.plan.grid_h);
  EXPECT_EQ(a.plan.grid_w, b.plan.grid_w);
  EXPECT_EQ(a.plan.merge, b.plan.merge);
  EXPECT_EQ(a.plan.n_groups, b.plan.n_groups);
  EXPECT_EQ(a.plan.notes, b.plan.notes);
  EXPECT_EQ(a.out_dim, b.out_dim);
  EXPECT_EQ(a.n_deepstack, b.n_deepstack);
  expect_same_floats(a.main, b.main, "main");
  expect_same_floats(a.deepstack, b.deepstack, "deepstack");
  EXPECT_EQ(a.decode_ms, b.decode_ms);
  EXPECT_EQ(a.encode_ms, b.encode_ms);
  EXPECT_EQ(a.wall_ms, b.wall_ms);
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

// Rewrites the header's payload checksum (bytes 40..47) to match the payload, so a test can
// reach the checks behind the checksum.
void reseal(std::vector<char>& bytes) {
  const uint64_t sum = XXH3_64bits(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes);
  std::memcpy(bytes.data() + 40, &sum, sizeof sum);
}

const MediaKey kFile{0x1111, 0x2222};
const MediaKey kModel{0x3333, 0x4444};

class MediaCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reel_media_cache_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string cache_dir() const { return path("cache"); }
  size_t entry_files() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(cache_dir())) n += e.is_regular_file();
    return n;
  }
  std::string dir_;
};

// ---- Hits ---------------------------------------------------------------------------------

TEST_F(MediaCacheTest, HitFromMemoryReturnsTheSameValue) {
  MediaCache cache(1 << 20);
  const MediaKey key = reel::image_key(kFile, 96, 64, kModel);
  auto image = std::make_shared<const EncodedImage>(make_image(1));
  EXPECT_EQ(cache.find_image(key), nullptr);
  cache.put_image(key, image);
  EXPECT_EQ(cache.find_image(key), image);  // the very object: no copy of the floats
  const auto s = cache.stats();
  EXPECT_EQ(s.memory_hits, 1);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.memory_bytes, reel::memory_bytes(*image));
  EXPECT_EQ(s.memory_entries, 1u);
}

TEST_F(MediaCacheTest, ImageAndVideoUnderOneKeyAreSeparate) {
  MediaCache cache(1 << 20);
  const MediaKey key{7, 8};
  cache.put_image(key, std::make_shared<const EncodedImage>(make_image(1)));
  EXPECT_EQ(cache.find_video(key), nullptr);
  EXPECT_NE(cache.find_image(key), nullptr);
}

TEST_F(MediaCacheTest, HitFromDiskInAFreshCacheEqualsWhatWasWritten) {
  const MediaKey ikey = reel::image_key(kFile, 96, 64, kModel);
  for (bool vfr : {false, true}) {
    SCOPED_TRACE(vfr ? "variable frame rate" : "constant frame rate");
    const EncodedImage image = make_image(2);
    const EncodedVideo video = make_video(3, vfr);
    const MediaKey vkey = reel::video_key(kFile, video.plan, kModel);
    {
      MediaCache writer(1 << 20, cache_dir());
      writer.put_image(ikey, std::make_shared<const EncodedImage>(image));
      writer.put_video(vkey, std::make_shared<const EncodedVideo>(video));
      EXPECT_EQ(writer.stats().disk_writes, 2);
    }
    EXPECT_TRUE(fs::exists(path("cache/" + ikey.hex() + ".image.reelmc")));
    EXPECT_TRUE(fs::exists(path("cache/" + vkey.hex() + ".video.reelmc")));

    MediaCache reader(1 << 20, cache_dir());  // a new process
    const auto got_image = reader.find_image(ikey);
    const auto got_video = reader.find_video(vkey);
    ASSERT_NE(got_image, nullptr);
    ASSERT_NE(got_video, nullptr);
    expect_equal(*got_image, image);
    expect_equal(*got_video, video);
    EXPECT_EQ(reader.stats().disk_hits, 2);
    // Kept in memory once read: the next find does not touch the disk.
    EXPECT_EQ(reader.find_video(vkey), got_video);
    EXPECT_EQ(reader.stats().memory_hits, 1);
    EXPECT_EQ(reader.stats().corrupt_dropped, 0);
  }
}

TEST_F(MediaCacheTest, AsImagesPlanRoundTrips) {
  EncodedVideo video = make_video(4, false);
  video.plan.as_images = true;
  video.plan.display_corrections = false;
  video.plan.frames = video.plan.indices;  // one slot per group
  video.plan.n_groups = 5;
  video.plan.group_times = {0.0, 0.16, 0.33, 0.5, 0.67};
  video.main.resize(5 * 2 * 4, 1.0f);
  video.deepstack.resize(3 * video.main.size(), 2.0f);
  const MediaKey key = reel::video_key(kFile, video.plan, kModel);
  MediaCache(0, cache_dir()).put_video(key, std::make_shared<const EncodedVideo>(video));
  const auto got = MediaCache(0, cache_dir()).find_video(key);
  ASSERT_NE(got, nullptr);
  expect_equal(*got, video);
}

// Writes the fuzzer's seed entries (fuzz/corpus/media_cache/) when REEL_MEDIA_CACHE_SEEDS names
// a folder: run it again after a format change. The key is the fuzzer's fixed one.
TEST_F(MediaCacheTest, WriteFuzzSeedsWhenAsked) {
  const char* out = std::getenv("REEL_MEDIA_CACHE_SEEDS");
  if (!out) GTEST_SKIP() << "set REEL_MEDIA_CACHE_SEEDS=DIR to write the fuzzer's seeds";
  const MediaKey key{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EncodedVideo vfr = make_video(5, true);
  vfr.plan.as_images = true;
  vfr.plan.frames = vfr.plan.indices;
  vfr.plan.n_groups = static_cast<int>(vfr.plan.frames.size());
  vfr.plan.group_times.assign(vfr.plan.n_groups, 0.5);
  vfr.main.assign(size_t(vfr.plan.n_groups) * vfr.plan.tokens_per_group() * vfr.out_dim, 1.0f);
  vfr.deepstack.assign(vfr.main.size() * vfr.n_deepstack, 2.0f);
  const std::pair<const char*, std::function<void(MediaCache&)>> seeds[] = {
      {"image", [&](MediaCache& c) { c.put_image(key, std::make_shared<const EncodedImage>(make_image(6))); }},
      {"video", [&](MediaCache& c) { c.put_video(key, std::make_shared<const EncodedVideo>(make_video(7, false))); }},
      {"video-vfr-as-images", [&](MediaCache& c) { c.put_video(key, std::make_shared<const EncodedVideo>(vfr)); }},
  };
  for (const auto& [name, put] : seeds) {
    MediaCache cache(0, cache_dir());
    put(cache);
    const bool image = std::string(name) == "image";
    const std::string from = cache.entry_path(key, image ? MediaKind::Image : MediaKind::Video);
    ASSERT_TRUE(fs::exists(from)) << name;
    MediaCache fresh(0, cache_dir());  // a seed must be a valid entry
    ASSERT_TRUE(image ? fresh.find_image(key) != nullptr : fresh.find_video(key) != nullptr) << name;
    fs::copy_file(from, std::string(out) + "/" + name + ".reelmc", fs::copy_options::overwrite_existing);
    fs::remove(from);
  }
}

// ---- Keys ---------------------------------------------------------------------------------

TEST_F(MediaCacheTest, KeyHexIsThirtyTwoDigitsHighHalfFirst) {
  EXPECT_EQ((MediaKey{0x0123456789abcdefull, 0xfedcba9876543210ull}).hex(),
            "fedcba98765432100123456789abcdef");
}

TEST_F(MediaCacheTest, AnythingThatDecidesTheEncodingChangesTheKey) {
  const MediaKey other_model{0x3333, 0x4445};
  const MediaKey other_file{0x1112, 0x2222};
  const MediaKey image = reel::image_key(kFile, 96, 64, kModel);
  EXPECT_EQ(image, reel::image_key(kFile, 96, 64, kModel));
  EXPECT_NE(image, reel::image_key(kFile, 64, 96, kModel));
  EXPECT_NE(image, reel::image_key(kFile, 96, 96, kModel));
  EXPECT_NE(image, reel::image_key(other_file, 96, 64, kModel));
  EXPECT_NE(image, reel::image_key(kFile, 96, 64, other_model));

  const reel::VideoPlan plan = make_video(1, false).plan;
  const MediaKey video = reel::video_key(kFile, plan, kModel);
  EXPECT_EQ(video, reel::video_key(kFile, make_video(9, true).plan, kModel))
      << "path, info and notes do not decide the encoding";
  EXPECT_NE(video, image);
  EXPECT_NE(video, reel::video_key(other_file, plan, kModel));
  EXPECT_NE(video, reel::video_key(kFile, plan, other_model));
  auto changed = [&](auto edit) {
    reel::VideoPlan p = plan;
    edit(p);
    return reel::video_key(kFile, p, kModel) != video;
  };
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.indices[1] = 6; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.frames[5] = 21; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.group_times[0] = 0.1; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.resized_w = 96; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.resized_h = 64; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.as_images = true; }));
  EXPECT_TRUE(changed([](reel::VideoPlan& p) { p.display_corrections = false; }));
  // Moving a frame between the indices and the slots must not collide (lengths are hashed).
  EXPECT_TRUE(changed([](reel::VideoPlan& p) {
    p.indices.push_back(p.frames.front());
    p.frames.erase(p.frames.begin());
  }));
}

TEST_F(MediaCacheTest, OtherOptionsOrModelOrFileMiss) {
  MediaCache cache(1 << 20, cache_dir());
  const EncodedVideo video = make_video(1, false);
  cache.put_image(reel::image_key(kFile, 96, 64, kModel),
                  std::make_shared<const EncodedImage>(make_image(1)));
  cache.put_video(reel::video_key(kFile, video.plan, kModel),
                  std::make_shared<const EncodedVideo>(video));
  reel::VideoPlan fewer = video.plan;
  fewer.indices.pop_back();
  MediaCache fresh(1 << 20, cache_dir());
  for (MediaCache* c : {&cache, &fresh}) {
    EXPECT_EQ(c->find_image(reel::image_key(kFile, 64, 64, kModel)), nullptr);
    EXPECT_EQ(c->find_image(reel::image_key(kFile, 96, 64, {1, 2})), nullptr);
    EXPECT_EQ(c->find_image(reel::image_key({5, 6}, 96, 64, kModel)), nullptr);
    EXPECT_EQ(c->find_video(reel::video_key(kFile, fewer, kModel)), nullptr);
    EXPECT_EQ(c->find_video(reel::video_key(kFile, video.plan, {1, 2})), nullptr);
    EXPECT_EQ(c->stats().misses, 5);
    EXPECT_EQ(c->stats().corrupt_dropped, 0);
  }
}

TEST_F(MediaCacheTest, HashFileFollowsTheBytes) {
  // Larger than hash_file's 1 MiB read chunk and not a multiple of it, so the chunked hash
  // must equal the one-shot XXH3-128 of the whole content.
  std::string content(3 * (1 << 20) + 7, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = char((i * 2654435761u) >> 13);
  write_bytes(path("a.mp4"), {content.begin(), content.end()});
  write_bytes(path("same.mp4"), {content.begin(), content.end()});
  content[content.size() / 2] ^= 1;
  write_bytes(path("b.mp4"), {content.begin(), content.end()});
  content[content.size() / 2] ^= 1;

  const MediaKey a = reel::hash_file(path("a.mp4"));
  const XXH128_hash_t expect = XXH3_128bits(content.data(), content.size());
  EXPECT_EQ(a.lo, expect.low64);
  EXPECT_EQ(a.hi, expect.high64);
  EXPECT_EQ(a, reel::hash_file(path("same.mp4")));  // another path, the same bytes: one entry
  EXPECT_NE(a, reel::hash_file(path("b.mp4")));
  write_bytes(path("empty"), {});
  EXPECT_NE(a, reel::hash_file(path("empty")));
}

TEST_F(MediaCacheTest, HashFileRefusesFifoDirectoryAndMissingFile) {
  auto message = [](const std::string& p) -> std::string {
    try {
      reel::hash_file(p);
    } catch (const reel::Error& e) {
      return e.what();
    }
    return "";
  };
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  EXPECT_EQ(message(path("fifo")), path("fifo") + ": is a FIFO/pipe, not a regular file");
  fs::create_directory(path("folder"));
  EXPECT_EQ(message(path("folder")), path("folder") + ": is a directory, not a media file");
  EXPECT_EQ(message(path("missing.mp4")), path("missing.mp4") + ": no such file");
}

// A GGUF with two metadata keys and one F32 tensor of 16384 values (64 KiB: larger than the
// three 4 KiB samples model_identity takes).
std::vector<uint8_t> tiny_gguf(uint32_t image_size, size_t poke_at = SIZE_MAX) {
  reel::gguf::testing::Builder b;
  b.header(1, 2)
      .kv_str("general.architecture", "clip")
      .kv_u32("clip.vision.image_size", image_size);
  b.tensor("v.patch_embd.weight", {128, 128}, 0, 0).pad_to(32);
  const size_t data = b.size();
  for (int i = 0; i < 128 * 128; ++i) b.f32(float(i));
  if (poke_at != SIZE_MAX) b.bytes()[data + poke_at] ^= 1;
  return b.bytes();
}

MediaKey identity_of(const std::vector<uint8_t>& bytes) {
  auto f = reel::gguf::File::from_memory(bytes.data(), bytes.size(), "mmproj");
  return reel::model_identity(*f);
}

TEST_F(MediaCacheTest, ModelIdentityCoversMetadataAndSampledWeights) {
  const MediaKey base = identity_of(tiny_gguf(768));
  EXPECT_EQ(base, identity_of(tiny_gguf(768)));
  EXPECT_NE(base, identity_of(tiny_gguf(512)));             // metadata
  EXPECT_NE(base, identity_of(tiny_gguf(768, 10)));         // first sample
  EXPECT_NE(base, identity_of(tiny_gguf(768, 32768)));      // middle sample
  EXPECT_NE(base, identity_of(tiny_gguf(768, 65536 - 1)));  // last sample
  // Between the samples nothing is read: identity must stay cheap on an 800 MB mmproj.
  EXPECT_EQ(base, identity_of(tiny_gguf(768, 10000)));
}

TEST_F(MediaCacheTest, ModelIdentityTellsTheShippedVisionModelsApart) {
  const std::string dir = REEL_FIXTURE_DIR "/models/";
  auto identity = [&](const char* name) {
    return reel::model_identity(*reel::gguf::File::open(dir + name));
  };
  const MediaKey f32 = identity("tiny-a-mmproj-f32.gguf");
  EXPECT_EQ(f32, identity("tiny-a-mmproj-f32.gguf"));  // stable across opens (a new process)
  EXPECT_NE(f32, identity("tiny-a-mmproj-f16.gguf"));  // the same model in other weight types
}

// ---- Corrupt entries ----------------------------------------------------------------------

struct Damage {
  const char* name;
  void (*apply)(std::vector<char>& bytes, const EncodedImage& image);
};

const Damage kDamages[] = {
    {"flipped payload byte", [](auto& b, auto&) { b[kHeaderBytes + b.size() / 2] ^= 0x40; }},
    {"flipped checksum byte", [](auto& b, auto&) { b[41] ^= 1; }},
    {"truncated by one byte", [](auto& b, auto&) { b.pop_back(); }},
    {"truncated inside the header", [](auto& b, auto&) { b.resize(30); }},
    {"empty", [](auto& b, auto&) { b.clear(); }},
    {"one byte appended", [](auto& b, auto&) { b.push_back(0); }},
    {"wrong magic", [](auto& b, auto&) { b[0] = 'X'; }},
    {"other (older) format version", [](auto& b, auto&) { b[8] = 1; }},
    {"other kind", [](auto& b, auto&) { b[12] = 2; }},
    {"other key in the header", [](auto& b, auto&) { b[16] ^= 1; }},
    {"header claims a huge payload",
     [](auto& b, auto&) {
       const uint64_t huge = uint64_t(1) << 62;
       std::memcpy(b.data() + 32, &huge, sizeof huge);
     }},
    // Behind a valid checksum: a length prefix asking for 2^60 floats must be refused before
    // any allocation (the test would die of bad_alloc or OOM otherwise).
    {"resealed huge float count",
     [](auto& b, const EncodedImage& e) {
       const size_t main_count = kHeaderBytes + 8 + e.path.size() + 6 * 4 + 2 * 8;
       const uint64_t huge = uint64_t(1) << 60;
       std::memcpy(b.data() + main_count, &huge, sizeof huge);
       reseal(b);
     }},
    {"resealed path length beyond the payload",
     [](auto& b, auto&) {
       const uint64_t longer = 1 << 20;
       std::memcpy(b.data() + kHeaderBytes, &longer, sizeof longer);
       reseal(b);
     }},
};

TEST_F(MediaCacheTest, CorruptEntryIsDroppedCountedAndRecomputed) {
  const MediaKey key = reel::image_key(kFile, 96, 64, kModel);
  const EncodedImage image = make_image(5);
  for (const Damage& damage : kDamages) {
    SCOPED_TRACE(damage.name);
    fs::remove_all(cache_dir());
    MediaCache(1 << 20, cache_dir()).put_image(key, std::make_shared<const EncodedImage>(image));
    const std::string entry = MediaCache(0, cache_dir()).entry_path(key, MediaKind::Image);
    std::vector<char> bytes = read_bytes(entry);
    ASSERT_GT(bytes.size(), kHeaderBytes);
    damage.apply(bytes, image);
    write_bytes(entry, bytes);

    MediaCache cache(1 << 20, cache_dir());
    EXPECT_EQ(cache.find_image(key), nullptr);
    EXPECT_EQ(cache.stats().corrupt_dropped, 1);
    EXPECT_EQ(cache.stats().misses, 1);
    EXPECT_FALSE(fs::exists(entry)) << "a corrupt entry must be deleted";
    // The caller recomputes and puts; a later process then finds the good entry.
    cache.put_image(key, std::make_shared<const EncodedImage>(image));
    MediaCache later(1 << 20, cache_dir());
    const auto got = later.find_image(key);
    ASSERT_NE(got, nullptr);
    expect_equal(*got, image);
    EXPECT_EQ(later.stats().corrupt_dropped, 0);
  }
}

TEST_F(MediaCacheTest, InconsistentVideoBehindAValidChecksumIsDropped) {
  // put() trusts its caller; a reader must not: these would send the prompt code out of bounds.
  auto broken = [](void (*edit)(EncodedVideo&)) {
    EncodedVideo v = make_video(1, false);
    edit(v);
    return v;
  };
  const EncodedVideo cases[] = {
      broken([](EncodedVideo& v) { v.main.pop_back(); }),
      broken([](EncodedVideo& v) { v.deepstack.resize(v.deepstack.size() + 4); }),
      broken([](EncodedVideo& v) { v.n_deepstack = 2; }),
      broken([](EncodedVideo& v) { v.plan.frames.pop_back(); }),
      broken([](EncodedVideo& v) { v.plan.frames[2] = 40; }),  // == n_frames
      broken([](EncodedVideo& v) {
        v.plan.indices = {5, 0, 10, 15, 20};
      }),
      broken([](EncodedVideo& v) { v.plan.group_times.pop_back(); }),
      broken([](EncodedVideo& v) { v.plan.n_groups = 0; }),
      broken([](EncodedVideo& v) { v.plan.info.rotation = 45; }),
      broken([](EncodedVideo& v) {
        v.plan.info.vfr_times_s = std::make_shared<const std::vector<double>>(39, 0.0);
      }),
  };
  int i = 0;
  for (const EncodedVideo& v : cases) {
    SCOPED_TRACE("case " + std::to_string(i++));
    const MediaKey key{uint64_t(i), 99};
    MediaCache(0, cache_dir()).put_video(key, std::make_shared<const EncodedVideo>(v));
    MediaCache cache(1 << 20, cache_dir());
    EXPECT_EQ(cache.find_video(key), nullptr);
    EXPECT_EQ(cache.stats().corrupt_dropped, 1);
  }
  EXPECT_EQ(entry_files(), 0u);
}

TEST_F(MediaCacheTest, EntryCopiedUnderAnotherKeyIsDropped) {
  const MediaKey a{1, 1}, b{2, 2};
  MediaCache writer(0, cache_dir());
  writer.put_image(a, std::make_shared<const EncodedImage>(make_image(1)));
  fs::copy_file(writer.entry_path(a, MediaKind::Image), writer.entry_path(b, MediaKind::Image));
  fs::copy_file(writer.entry_path(a, MediaKind::Image), writer.entry_path(a, MediaKind::Video));
  MediaCache reader(1 << 20, cache_dir());
  EXPECT_EQ(reader.find_image(b), nullptr);
  EXPECT_EQ(reader.find_video(a), nullptr);
  EXPECT_NE(reader.find_image(a), nullptr);
  EXPECT_EQ(reader.stats().corrupt_dropped, 2);
}

TEST_F(MediaCacheTest, LinkOrFifoUnderAnEntryNameIsDroppedNotFollowed) {
  const MediaKey a{1, 1}, b{2, 2};
  MediaCache cache(1 << 20, cache_dir());
  write_bytes(path("precious"), {'x'});
  ASSERT_EQ(::symlink(path("precious").c_str(), cache.entry_path(a, MediaKind::Image).c_str()), 0);
  ASSERT_EQ(::mkfifo(cache.entry_path(b, MediaKind::Image).c_str(), 0600), 0);
  EXPECT_EQ(cache.find_image(a), nullptr);
  EXPECT_EQ(cache.find_image(b), nullptr);  // must not block on the FIFO
  EXPECT_EQ(cache.stats().corrupt_dropped, 2);
  EXPECT_TRUE(fs::exists(path("precious")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(cache.entry_path(a, MediaKind::Image))));
  EXPECT_FALSE(fs::exists(fs::symlink_status(cache.entry_path(b, MediaKind::Image))));
}

// ---- Memory bound -------------------------------------------------------------------------

TEST_F(MediaCacheTest, LeastRecentlyUsedIsEvictedByBytes) {
  const size_t one = reel::memory_bytes(make_image(0));
  MediaCache cache(2 * one + one / 2);  // room for two entries
  const MediaKey a{1, 0}, b{2, 0}, c{3, 0};
  cache.put_image(a, std::make_shared<const EncodedImage>(make_image(0)));
  cache.put_image(b, std::make_shared<const EncodedImage>(make_image(0)));
  ASSERT_NE(cache.find_image(a), nullptr);  // a is now the most recently used
  cache.put_image(c, std::make_shared<const EncodedImage>(make_image(0)));
  EXPECT_EQ(cache.find_image(b), nullptr);
  EXPECT_NE(cache.find_image(a), nullptr);
  EXPECT_NE(cache.find_image(c), nullptr);
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_EQ(cache.stats().memory_bytes, 2 * one);
  EXPECT_EQ(cache.stats().memory_entries, 2u);

  // Putting a key again replaces its entry without charging it twice.
  cache.put_image(c, std::make_shared<const EncodedImage>(make_image(0)));
  EXPECT_EQ(cache.stats().memory_bytes, 2 * one);
  EXPECT_EQ(cache.stats().evictions, 1);
}

// The folder's bound: after each write the least recently used entries go until the rest fit,
// and a disk hit counts as a use (the entry read last survives). Two caches on the folder stand
// for two processes sharing it.
TEST_F(MediaCacheTest, DiskFolderStaysUnderItsLimitDroppingTheLeastRecentlyUsed) {
  const MediaKey a{1, 0}, b{2, 0}, c{3, 0};
  const auto image = std::make_shared<const EncodedImage>(make_image(0));
  MediaCache(0, cache_dir()).put_image(a, image);
  const uint64_t one = fs::file_size(MediaCache(0, cache_dir()).entry_path(a, MediaKind::Image));
  const uint64_t limit = 2 * one + one / 2;  // room for two entries
  MediaCache writer(0, cache_dir(), nullptr, limit);
  writer.put_image(b, image);
  EXPECT_EQ(entry_files(), 2u);
  // Entries' times are the order of use: make it unambiguous on any file system's clock.
  const auto t0 = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(writer.entry_path(a, MediaKind::Image), t0);
  fs::last_write_time(writer.entry_path(b, MediaKind::Image), t0 + std::chrono::minutes(1));
  MediaCache reader(0, cache_dir(), nullptr, limit);
  ASSERT_NE(reader.find_image(a), nullptr);  // a is now the most recently used
  writer.put_image(c, image);
  EXPECT_EQ(entry_files(), 2u);
  EXPECT_FALSE(fs::exists(writer.entry_path(b, MediaKind::Image)));
  EXPECT_TRUE(fs::exists(writer.entry_path(a, MediaKind::Image)));
  EXPECT_TRUE(fs::exists(writer.entry_path(c, MediaKind::Image)));
  EXPECT_EQ(writer.stats().disk_evictions, 1);

  // A limit below one entry: nothing stays, not even the entry just written.
  MediaCache tiny(0, cache_dir(), nullptr, one / 2);
  tiny.put_image(MediaKey{4, 0}, image);
  EXPECT_EQ(entry_files(), 0u);
  // Without a limit nothing is ever deleted.
  MediaCache unbounded(0, cache_dir());
  for (uint64_t k = 5; k < 9; ++k) unbounded.put_image(MediaKey{k, 0}, image);
  EXPECT_EQ(entry_files(), 4u);
}

TEST_F(MediaCacheTest, EntryLargerThanTheLimitIsNotKeptInMemory) {
  EncodedImage big = make_image(0);
  big.main.resize(6 * 4096, 0.5f);  // width 4096 instead of 4
  big.deepstack.resize(3 * big.main.size(), -0.5f);
  const size_t limit = reel::memory_bytes(big) - 1;
  MediaCache cache(limit, cache_dir());
  const MediaKey small{1, 0}, large{2, 0};
  cache.put_image(small, std::make_shared<const EncodedImage>(make_image(0)));
  cache.put_image(large, std::make_shared<const EncodedImage>(big));
  EXPECT_EQ(cache.stats().evictions, 0) << "a value that cannot fit must not evict others";
  EXPECT_EQ(cache.stats().memory_bytes, reel::memory_bytes(make_image(0)));
  // Still on disk: the next find reads it back (and again does not keep it in memory).
  const auto got = cache.find_image(large);
  ASSERT_NE(got, nullptr);
  expect_equal(*got, big);
  EXPECT_EQ(cache.stats().disk_hits, 1);
  EXPECT_EQ(cache.stats().memory_entries, 1u);
}

TEST_F(MediaCacheTest, MemoryBytesCountFloatsAndMetadata) {
  const EncodedVideo v = make_video(1, true);
  const size_t floats = sizeof(float) * (v.main.size() + v.deepstack.size());
  const size_t vfr = sizeof(double) * 40;
  EXPECT_GT(reel::memory_bytes(v), floats + vfr + sizeof(EncodedVideo));
  EXPECT_LT(reel::memory_bytes(v), floats + vfr + sizeof(EncodedVideo) + 1024);
}

// ---- Disk problems ------------------------------------------------------------------------

TEST_F(MediaCacheTest, WriteFailureIsNotedOnceAndNeverFailsThePut) {
  std::vector<std::string> notes;
  MediaCache cache(1 << 20, cache_dir(), [&](const std::string& n) { notes.push_back(n); });
  fs::remove_all(cache_dir());  // as good as a full disk or a read-only folder, even for root
  const MediaKey a{1, 0}, b{2, 0};
  cache.put_image(a, std::make_shared<const EncodedImage>(make_image(0)));
  cache.put_image(b, std::make_shared<const EncodedImage>(make_image(0)));
  EXPECT_NE(cache.find_image(a), nullptr);  // still served from memory
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("media cache: cannot write to " + cache_dir()), std::string::npos)
      << notes[0];
  EXPECT_EQ(notes[0].find('\n'), std::string::npos);
  EXPECT_EQ(cache.stats().disk_write_failures, 1);  // not retried after the first failure
  EXPECT_EQ(cache.stats().disk_writes, 0);
}

TEST_F(MediaCacheTest, FolderIsCreatedOrRefused) {
  MediaCache nested(0, path("a/b/c"));
  EXPECT_TRUE(fs::is_directory(path("a/b/c")));
  write_bytes(path("file"), {'x'});
  EXPECT_THROW(MediaCache(0, path("file")), reel::Error);
}

TEST_F(MediaCacheTest, StaleTemporariesAreRemovedFreshOnesKept) {
  fs::create_directory(cache_dir());
  const std::string stale = path("cache/ab.image.reelmc.tmp.Xy12Zq");
  const std::string fresh = path("cache/cd.image.reelmc.tmp.Ab34Cd");
  write_bytes(stale, {'x'});
  write_bytes(fresh, {'x'});
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  MediaCache cache(0, cache_dir());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh)) << "may belong to a process writing it now";
}

TEST_F(MediaCacheTest, NoTemporaryIsLeftBehind) {
  MediaCache cache(0, cache_dir());
  cache.put_video({1, 0}, std::make_shared<const EncodedVideo>(make_video(0, true)));
  cache.put_image({1, 0}, std::make_shared<const EncodedImage>(make_image(0)));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cache_dir()))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  const std::string hex = MediaKey{1, 0}.hex();
  EXPECT_EQ(names, (std::vector<std::string>{hex + ".image.reelmc", hex + ".video.reelmc"}));
}

// ---- Threads ------------------------------------------------------------------------------

TEST_F(MediaCacheTest, ConcurrentFindAndPutSeeOnlyWholeRightValues) {
  // Room for about four of the sixteen keys in memory, so threads evict, read back from disk
  // and rewrite entries under each other. Every value found must be the one for its key.
  MediaCache cache(4 * reel::memory_bytes(make_image(0)) + 100, cache_dir());
  constexpr int kThreads = 8, kRounds = 300, kKeys = 16;
  std::atomic<int> wrong{0}, finds{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const int k = (r * 7 + t * 3) % kKeys;
        const MediaKey key{uint64_t(k), 42};
        ++finds;
        if (auto got = cache.find_image(key)) {
          if (got->width != 641 + k || got->main[1] != 0.25f + float(k)) ++wrong;
        } else {
          cache.put_image(key, std::make_shared<const EncodedImage>(make_image(k)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto s = cache.stats();
  EXPECT_EQ(s.memory_hits + s.disk_hits + s.misses, finds.load());
  EXPECT_GT(s.evictions, 0);
  EXPECT_EQ(s.corrupt_dropped, 0) << "a reader must never see a half-written entry";
  EXPECT_LE(s.memory_bytes, 4 * reel::memory_bytes(make_image(0)) + 100);
}

}  // namespace
