#include "pipeline/conversation.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <utility>

#include "common/clock.h"
#include "common/error.h"

namespace reel {

std::string splice_media_markers(std::string text, const std::string& markers) {
  size_t first = std::string::npos;
  for (const char* tag : {"<image>", "<video>"})
    for (size_t at; (at = text.find(tag)) != std::string::npos;) {
      first = std::min(first, at);
      text.erase(at, 7);
    }
  if (first == std::string::npos) first = 0;
  return text.insert(first, markers);
}

// What one turn brings in and how, from planning to encoded rows.
struct Conversation::Turn {
  bool want_images = false, want_video = false;
  std::vector<DecodedImage> decoded;      // only when the cache cannot serve
  std::vector<std::pair<int, int>> dims;  // (width, height) of each image as decoded
  std::vector<media::Size2> sizes;        // chosen model sizes
  std::vector<std::shared_ptr<const EncodedImage>> images;
  std::optional<VideoPlan> plan;
  std::shared_ptr<const EncodedVideo> video;
  TurnStats stats;
};

namespace {

SessionOptions session_options(const ConversationOptions& o) {
  SessionOptions s;
  s.sampling = o.sampling;
  s.system_prompt = o.system_prompt;
  s.sequence = o.sequence;
  s.cancel = o.cancel;
  s.think = o.think;
  s.chat_template = o.chat_template;
  return s;
}

}  // namespace

Conversation::Conversation(Scheduler& scheduler, ConversationOptions options)
    : opts_(std::move(options)), session_(scheduler, session_options(opts_)) {}

Conversation::~Conversation() = default;

void Conversation::clear() {
  session_.clear();
  images_in_ = video_in_ = false;
}

int64_t Conversation::count_tokens(const std::string& content) const {
  return static_cast<int64_t>(
      model().tokenizer().encode(session_.user_turn_text(content), true).size());
}

// Sizes the images so that together they take at most `budget` visual tokens, shrinking each
// in proportion to what it would take on its own. Decodes them (all or nothing) unless the
// cache holds all of them.
void Conversation::plan_images(Turn& t, int64_t budget, const TurnEvents& ev) {
  const VisionEncoder& vision = model().vision();
  const bool cached = image_cache_.size() == opts_.images.size();
  if (cached) {
    for (const auto& e : image_cache_) t.dims.emplace_back(e->width, e->height);
  } else {
    for (const std::string& path : opts_.images) {
      exec_ctx().throw_if_cancelled();
      t.decoded.push_back(decode_image(path, opts_.image));
      t.dims.emplace_back(t.decoded.back().image.width, t.decoded.back().image.height);
    }
  }
  auto size_all = [&](const std::vector<ImageOptions>& per_image) {
    std::vector<media::Size2> sizes;
    int64_t total = 0;
    for (size_t i = 0; i < t.dims.size(); ++i) {
      DecodedImage probe;  // smart_resize needs only the dimensions
      probe.path = opts_.images[i];
      probe.image.width = t.dims[i].first;
      probe.image.height = t.dims[i].second;
      sizes.push_back(model_size(vision, probe, per_image[i]));
      total += image_tokens(vision, sizes.back());
    }
    return std::make_pair(sizes, total);
  };
  std::vector<ImageOptions> per_image(t.dims.size(), opts_.image);
  auto [sizes, total] = size_all(per_image);
  if (total > budget) {
    const int64_t natural = total;
    std::vector<int64_t> own;
    for (const media::Size2& s : sizes) own.push_back(image_tokens(vision, s));
    const int side = vision.geometry().factor();
    const int64_t area = int64_t(side) * side;
    for (int round = 0; round < 40 && total > budget; ++round) {
      const double share = double(budget) / double(natural) * (1.0 - 0.03 * round);
      for (size_t i = 0; i < per_image.size(); ++i) {
        per_image[i].max_pixels =
            std::max<int64_t>(area, int64_t(double(own[i]) * share * double(area)));
        per_image[i].min_pixels = std::min(opts_.image.min_pixels, per_image[i].max_pixels);
      }
      std::tie(sizes, total) = size_all(per_image);
    }
    if (total > budget)
      throw ContextFull("the images need at least " + std::to_string(total) +
                        " visual tokens but the context leaves " +
                        std::to_string(std::max<int64_t>(0, budget)) + " for them");
    if (ev.note) {
      std::string note = std::to_string(sizes.size()) + (sizes.size() == 1 ? " image" : " images") +
                         " would take " + std::to_string(natural) + " visual tokens, over the " +
                         std::to_string(budget) + " the context leaves for them: sized down to";
      for (size_t i = 0; i < sizes.size(); ++i)
        note += (i ? ", " : " ") + std::to_string(sizes[i].width) + "x" +
                std::to_string(sizes[i].height) + " (" +
                std::to_string(image_tokens(vision, sizes[i])) + " tokens)";
      ev.note(note);
    }
  }
  t.sizes = sizes;
  t.stats.image_tokens = static_cast<int>(total);
  t.stats.n_images = static_cast<int>(sizes.size());
}

// Plans the video within `budget` prompt tokens (visual tokens, timestamps and markers).
void Conversation::plan_video(Turn& t, int64_t budget, const TurnEvents& ev) {
  const VisionGeometry& v = model().vision().geometry();
  VideoPlan p =
      plan_video_prompt(opts_.video_path, video_options_for(model().vision(), opts_.video),
                        v.patch_size, v.spatial_merge, std::max<int64_t>(1, budget));
  if (ev.note)
    for (const std::string& n : p.notes) ev.note(opts_.video_path + ": " + n);
  t.stats.video_tokens = p.n_tokens();
  t.stats.n_frames = static_cast<int>(p.indices.size());
  t.plan = std::move(p);
}

void Conversation::encode_media(Turn& t, const TurnEvents& ev) {
  if (t.sizes.empty() && !t.plan) return;  // a text turn: there may be no vision model
  const VisionEncoder& vision = model().vision();
  ops::Context& ctx = exec_ctx();
  const bool reuse_images = t.decoded.empty() && image_cache_.size() == t.sizes.size();
  std::vector<uint64_t> ids(t.sizes.size(), 0);
  std::unique_ptr<VisionScratch> scratch;  // made for the first image encoded, then reused
  for (size_t i = 0; i < t.sizes.size(); ++i) {
    ctx.throw_if_cancelled();
    const auto& hit = reuse_images && image_cache_[i]->resized_w == t.sizes[i].width &&
                              image_cache_[i]->resized_h == t.sizes[i].height
                          ? image_cache_[i]
                          : nullptr;
    if (hit) {
      t.images.push_back(hit);
      ids[i] = image_ids_[i];
      continue;
    }
    const std::string& path = opts_.images[i];
    std::optional<MediaKey> key;
    if (opts_.media_cache) {
      key = image_key(file_key(path), t.sizes[i].width, t.sizes[i].height, model_key());
      ids[i] = identity_of(*key);
      if (auto cached = opts_.media_cache->find_image(*key)) {
        t.images.push_back(std::move(cached));
        ++t.stats.media_cache_hits;
        if (ev.note) ev.note(path + ": encoded before, taken from the media cache");
        continue;
      }
    }
    if (ev.progress) ev.progress("encoding images", int(i), int(t.sizes.size()));
    const DecodedImage img =
        t.decoded.empty() ? decode_image(path, opts_.image) : std::move(t.decoded[i]);
    if (!scratch) scratch = vision.new_scratch();
    t.images.push_back(std::make_shared<const EncodedImage>(
        encode_decoded(vision, img, t.sizes[i], ctx, scratch.get())));
    t.stats.media_decode_ms += t.images.back()->decode_ms;
    t.stats.vision_encode_ms += t.images.back()->encode_ms;
    if (key) opts_.media_cache->put_image(*key, t.images.back());
    if (ids[i] == 0) ids[i] = new_block_identity();
    if (ev.progress) ev.progress("encoding images", int(i + 1), int(t.sizes.size()));
  }
  if (!t.images.empty()) {  // valid encodings, whatever happens next
    image_cache_ = t.images;
    image_ids_ = ids;
  }
  if (t.plan) {
    if (video_cache_ && same_plan(video_cache_->plan, *t.plan)) {
      t.video = video_cache_;
      return;
    }
    std::optional<MediaKey> key;
    if (opts_.media_cache) {
      key = video_key(file_key(opts_.video_path), *t.plan, model_key());
      if (auto cached = opts_.media_cache->find_video(*key)) {
        t.video = std::move(cached);
        video_cache_ = t.video;
        video_id_ = identity_of(*key);
        ++t.stats.media_cache_hits;
        if (ev.note) ev.note(opts_.video_path + ": encoded before, taken from the media cache");
        return;
      }
    }
    auto progress = [&](int done, int total) {
      if (ev.progress) ev.progress("encoding video", done, total);
    };
    t.video =
        std::make_shared<const EncodedVideo>(reel::encode_video(vision, *t.plan, ctx, progress));
    t.stats.media_decode_ms += t.video->decode_ms;
    t.stats.vision_encode_ms += t.video->encode_ms;
    if (key) opts_.media_cache->put_video(*key, t.video);
    video_cache_ = t.video;
    video_id_ = key ? identity_of(*key) : new_block_identity();
  }
}

// The cache key of a file's bytes, hashed once per conversation (the files are the ones the
// conversation was given; they are taken not to change under it).
const MediaKey& Conversation::file_key(const std::string& path) {
  auto it = file_keys_.find(path);
  if (it == file_keys_.end()) it = file_keys_.emplace(path, hash_file(path)).first;
  return it->second;
}

const MediaKey& Conversation::model_key() {
  // A vision encoder of another backend (no GGUF file) is known by its file's bytes.
  if (!model_key_)
    model_key_ = model().vision_file() ? model_identity(*model().vision_file())
                                       : hash_file(model().mmproj_path());
  return *model_key_;
}

uint64_t Conversation::identity_of(const MediaKey& key) {
  const uint64_t id = key.lo ^ (key.hi * 0x9E3779B97F4A7C15ULL);
  return id ? id : 1;
}

TurnStats Conversation::ask(const std::string& text, bool place_unmarked_media,
                            const TurnEvents& ev) {
  const auto t0 = Clock::now();
  Turn t;
  const bool has_image_tag = text.find("<image>") != std::string::npos;
  const bool has_video_tag = text.find("<video>") != std::string::npos;
  t.want_images = !images_in_ && !opts_.images.empty() &&
                  (has_image_tag || (place_unmarked_media && !has_video_tag));
  t.want_video = !video_in_ && !opts_.video_path.empty() &&
                 (has_video_tag || (opts_.image_marker_brings_video && has_image_tag) ||
                  (place_unmarked_media && !has_image_tag));
  if ((t.want_images || t.want_video) && !model().has_vision())
    throw Error("images and videos need a vision model (an mmproj file)");

  // Count the turn with one marker per medium, then size the media into what is left.
  std::string markers;
  if (t.want_images)
    for (size_t i = 0; i < opts_.images.size(); ++i) markers += kImageMarker;
  if (t.want_video) markers += kVideoMarker;
  const int64_t base = count_tokens(splice_media_markers(text, markers));
  const int64_t reserve = opts_.max_tokens > 0
                              ? opts_.max_tokens
                              : std::min<int64_t>(opts_.answer_reserve, session_.n_ctx() / 4);
  const int64_t left = int64_t(session_.n_ctx()) - session_.n_kept();
  if (t.want_images || t.want_video) {
    const int64_t room = left - base - reserve;  // beyond the markers already counted
    if (room < 1)
      throw ContextFull("the turn needs " + std::to_string(base) + " tokens before its media and " +
                        std::to_string(reserve) + " for the answer, but the context has " +
                        std::to_string(left) + " left of " + std::to_string(session_.n_ctx()));
    int64_t image_extra = 0;
    if (t.want_images) {
      const int64_t n = static_cast<int64_t>(opts_.images.size());
      // With a video in the same turn, the images may take at most half of the room.
      const int64_t image_room = t.want_video ? room / 2 : room;
      plan_images(t, image_room + n, ev);  // + the one pad per marker counted in `base`
      image_extra = t.stats.image_tokens - n;
    }
    if (t.want_video) plan_video(t, room - image_extra + kMarkerTokens, ev);
  }

  // The exact prompt, before any encoding.
  std::string expansion;
  for (const media::Size2& s : t.sizes)
    expansion += image_prompt_text(image_tokens(model().vision(), s));
  if (t.plan) expansion += video_prompt_text(*t.plan);
  const std::vector<TokenId> ids = model().tokenizer().encode(
      session_.user_turn_text(splice_media_markers(text, expansion)), true);
  const int64_t need = int64_t(ids.size()) + ((t.want_images || t.want_video) ? reserve : 1);
  if (need > left)
    throw ContextFull("the prompt needs " + std::to_string(int64_t(ids.size())) + " tokens and " +
                      std::to_string(need - int64_t(ids.size())) +
                      " for the answer, but the context has " + std::to_string(left) + " left of " +
                      std::to_string(session_.n_ctx()));

  encode_media(t, ev);
  std::vector<VisualBlock> blocks;
  for (size_t i = 0; i < t.images.size(); ++i) {
    blocks.push_back(block_of(*t.images[i]));
    blocks.back().id = image_ids_[i];
  }
  if (t.video) {
    int group = 0;
    for (const VisualBlock& b : t.video->blocks()) {
      blocks.push_back(b);
      blocks.back().id = video_id_ * 0x100000001B3ULL + uint64_t(++group);  // per group
    }
  }
  t.stats.media_wall_ms = ms_since(t0);

  TextSink sink = [&](std::string_view piece) {
    if (t.stats.first_token_ms == 0) t.stats.first_token_ms = ms_since(t0);
    return ev.text ? ev.text(piece) : true;
  };
  auto prefill_progress = [&](int done, int total) {
    if (ev.progress) ev.progress("reading the prompt", done, total);
  };
  t.stats.gen = session_.ask_tokens(ids, blocks, opts_.max_tokens, sink, prefill_progress);
  t.stats.generated = session_.answer_ids();
  t.stats.kv_bytes = session_.sequence().bytes();

  // The turn is complete: its media are in the dialogue.
  images_in_ = images_in_ || t.want_images;
  video_in_ = video_in_ || t.want_video;
  return std::move(t.stats);
}

}  // namespace reel
