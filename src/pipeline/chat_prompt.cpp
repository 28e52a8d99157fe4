#include "pipeline/chat_prompt.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>

#include "common/error.h"
#include "pipeline/chat_template.h"
#include "pipeline/media_cache.h"
#include "pipeline/session.h"

namespace reel {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t mix(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t mix_double(uint64_t h, double d) {
  uint64_t bits;
  static_assert(sizeof bits == sizeof d);
  std::memcpy(&bits, &d, sizeof d);
  return mix(h, bits);
}

uint64_t nonzero(uint64_t h) {
  return h == 0 ? 1 : h;
}

uint64_t identity_of(const MediaKey& bytes, uint64_t salt) {
  return nonzero(mix(mix(mix(kFnvOffset, salt), bytes.lo), bytes.hi));
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

// How an image is sized: part of its identity (other options, other rows).
uint64_t image_salt(const ImageOptions& o) {
  return mix(mix(mix(kFnvOffset, 'I'), uint64_t(o.min_pixels)), uint64_t(o.max_pixels));
}

uint64_t video_salt(const VideoOptions& o) {
  uint64_t h = mix(kFnvOffset, 'V');
  h = mix_double(h, o.fps);
  for (int64_t v : {int64_t(o.min_frames), int64_t(o.max_frames), int64_t(o.n_frames), o.max_tokens,
                    int64_t(o.as_images), int64_t(o.display_corrections), o.budget.min_pixels,
                    o.budget.max_pixels})
    h = mix(h, uint64_t(v));
  return h;
}

// The plan's choices (frames and size) complete a video's identity.
uint64_t plan_identity(uint64_t source, const VideoPlan& p) {
  uint64_t h = mix(mix(source, uint64_t(p.resized_w)), uint64_t(p.resized_h));
  for (int64_t f : p.frames) h = mix(h, uint64_t(f));
  for (double t : p.group_times) h = mix_double(h, t);
  return nonzero(h);
}

// One medium of the prompt, in order of appearance.
struct Medium {
  bool is_video = false;
  std::string path;
  // A window (already encoded): its groups, of which `in` are in the prompt (the newest).
  std::shared_ptr<const LiveGroups> window;
  std::span<const std::shared_ptr<const LiveGroup>> in;
  MediaKey bytes;       // hash of the file
  uint64_t source = 0;  // identity of the bytes and options (before a video's plan)
  std::shared_ptr<const EncodedImage> image;
  std::shared_ptr<const EncodedVideo> video;
  std::optional<VideoPlan> plan;  // a video's plan when it is not in the memo
  uint64_t id = 0;
};

// Replaces the i-th marker (of either kind) with expansion(i).
template <class F>
std::string replace_markers(const std::string& text, F expansion) {
  std::string out;
  size_t at = 0, i = 0;
  while (true) {
    const size_t hit = std::min(text.find(kImageMarker, at), text.find(kVideoMarker, at));
    if (hit == std::string::npos) break;
    out.append(text, at, hit - at);
    out += expansion(i++);
    at = hit + kImageMarker.size();  // both markers have the same length
  }
  out.append(text, at);
  return out;
}

std::string context_message(int64_t prompt, int64_t answer, int n_ctx) {
  return "the prompt needs " + std::to_string(prompt) + " tokens and " + std::to_string(answer) +
         " for the answer, but the context holds " + std::to_string(n_ctx);
}

void encode_images(const Model& model, ops::Context& ctx, std::vector<Medium>& media,
                   const ChatPromptOptions& o, MediaMemo& memo, ChatPrompt& out) {
  std::unique_ptr<VisionScratch> scratch;  // made for the first image encoded, then reused
  for (Medium& m : media) {
    if (m.is_video || m.window) continue;
    ctx.throw_if_cancelled();
    m.bytes = hash_file(m.path);
    m.source = identity_of(m.bytes, image_salt(o.image));
    m.id = m.source;
    if ((m.image = memo.image(m.source))) {
      ++out.memo_hits;
    } else {
      const DecodedImage img = decode_image(m.path, o.image);
      const media::Size2 size = model_size(model.vision(), img, o.image);
      const int n = image_tokens(model.vision(), size);
      if (n + kMarkerTokens > o.n_ctx)
        throw ContextFull(m.path + " needs " + std::to_string(n) +
                          " visual tokens but the context holds " + std::to_string(o.n_ctx));
      std::optional<MediaKey> key;
      if (o.media_cache) {
        key = image_key(m.bytes, size.width, size.height, o.model_key);
        if ((m.image = o.media_cache->find_image(*key))) ++out.cache_hits;
      }
      if (!m.image) {
        if (!scratch) scratch = model.vision().new_scratch();
        m.image = std::make_shared<const EncodedImage>(
            encode_decoded(model.vision(), img, size, ctx, scratch.get()));
        out.vision_encode_ms += m.image->encode_ms;
        if (key) o.media_cache->put_image(*key, m.image);
      }
      memo.put(m.source, m.image);
    }
    ++out.n_images;
    out.image_tokens += m.image->n_tokens();
  }
}

// Plans (or finds in the memo) each video within its share of `room` prompt tokens.
void plan_videos(const Model& model, std::vector<Medium>& media, int n_videos, int64_t room,
                 const ChatPromptOptions& o, MediaMemo& memo, ChatPrompt& out) {
  const VisionGeometry& v = model.vision().geometry();
  const VideoOptions video = video_options_for(model.vision(), o.video);
  const int64_t share = room / n_videos + kMarkerTokens;
  for (Medium& m : media) {
    if (!m.is_video) continue;
    m.bytes = hash_file(m.path);
    m.source = identity_of(m.bytes, video_salt(video));
    std::shared_ptr<const EncodedVideo> hit = memo.video(m.source);
    if (hit && video_prompt_tokens(hit->plan) <= share) {
      m.video = hit;
      ++out.memo_hits;
    } else {
      VideoPlan p = plan_video_prompt(m.path, video, v.patch_size, v.spatial_merge,
                                      std::max<int64_t>(1, share));
      if (o.max_video_seconds > 0 && p.info.duration_s > o.max_video_seconds)
        throw Error(m.path + ": the video lasts " + seconds_text(p.info.duration_s) +
                    " s, over the limit of " + seconds_text(o.max_video_seconds) + " s");
      for (const std::string& n : p.notes) out.notes.push_back(m.path + ": " + n);
      if (hit && same_plan(hit->plan, p)) {
        m.video = hit;
        ++out.memo_hits;
      } else {
        m.plan = std::move(p);
      }
    }
    const VideoPlan& plan = m.video ? m.video->plan : *m.plan;
    m.id = plan_identity(m.source, plan);
    ++out.n_videos;
    out.n_frames += static_cast<int>(plan.indices.size());
    out.video_tokens += plan.n_tokens();
  }
}

void encode_videos(const Model& model, ops::Context& ctx, std::vector<Medium>& media,
                   const ChatPromptOptions& o, MediaMemo& memo, ChatPrompt& out) {
  for (Medium& m : media) {
    if (!m.is_video || m.video) continue;
    std::optional<MediaKey> key;
    if (o.media_cache) {
      key = video_key(m.bytes, *m.plan, o.model_key);
      if ((m.video = o.media_cache->find_video(*key))) ++out.cache_hits;
    }
    if (!m.video) {
      m.video = std::make_shared<const EncodedVideo>(encode_video(model.vision(), *m.plan, ctx));
      out.vision_encode_ms += m.video->encode_ms;
      if (key) o.media_cache->put_video(*key, m.video);
    }
    memo.put(m.source, m.video);
  }
}

// The prompt text of one medium: an image's or a window's in full; a video's once planned
// (before that, its bare marker, for counting what the others take).
std::string medium_text(const Medium& m) {
  if (m.window) return live_video_text(m.in);
  if (!m.is_video) return image_prompt_text(m.image->n_tokens());
  if (m.video) return m.video->prompt_text();
  return m.plan ? video_prompt_text(*m.plan) : std::string(kVideoMarker);
}

// Tokens of `text` with its markers expanded, videos still bare markers.
int64_t counted_tokens(const Tokenizer& tok, const std::string& text,
                       const std::vector<Medium>& media) {
  const std::string counted = replace_markers(text, [&](size_t i) {
    return media[i].is_video ? std::string(kVideoMarker) : medium_text(media[i]);
  });
  return static_cast<int64_t>(tok.encode(counted, true).size());
}

// Leaves out the oldest groups of the longest window (as ask_about_window does for one) until
// the text, images, windows and `reserve` fit n_ctx; the tokens that then leaves for videos.
// Throws reel::ContextFull when even one group per window does not fit.
int64_t fit_windows(const Tokenizer& tok, const std::string& text, std::vector<Medium>& media,
                    int64_t reserve, int n_ctx, ChatPrompt& out) {
  size_t left_out = 0;
  for (;;) {
    const int64_t base = counted_tokens(tok, text, media);
    const int64_t over = base + reserve - n_ctx;
    const bool videos =
        std::any_of(media.begin(), media.end(), [](const Medium& m) { return m.is_video; });
    Medium* longest = nullptr;
    for (Medium& m : media)
      if (m.window && (!longest || m.in.size() > longest->in.size())) longest = &m;
    if (over < 0 || (over == 0 && !videos)) {  // videos need at least one token
      if (left_out > 0)
        out.notes.push_back("the oldest " + std::to_string(left_out) +
                            " groups of the stream windows were left out to fit the context");
      return n_ctx - base - reserve;
    }
    if (!longest || longest->in.size() <= 1)
      throw ContextFull("the prompt needs " + std::to_string(base) +
                        (videos ? " tokens before its videos and " : " tokens and ") +
                        std::to_string(reserve) + " for the answer, but the context holds " +
                        std::to_string(n_ctx));
    // Each group: its visual tokens and about 8 of timestamp and markers.
    const int64_t per_group = longest->in.front()->rows.n_tokens() + 8;
    const int64_t groups = std::max<int64_t>(1, (over + per_group - 1) / per_group);
    const size_t drop = std::min<size_t>(longest->in.size() - 1, size_t(groups));
    longest->in = longest->in.subspan(drop);
    left_out += drop;
  }
}

}  // namespace

MediaMemo::MediaMemo(size_t max_entries, size_t max_bytes)
    : max_entries_(max_entries), max_bytes_(max_bytes) {}

MediaMemo::Entry* MediaMemo::find(uint64_t key) {
  for (Entry& e : entries_)
    if (e.key == key) {
      e.last_use = ++clock_;
      return &e;
    }
  return nullptr;
}

std::shared_ptr<const EncodedImage> MediaMemo::image(uint64_t key) {
  Entry* e = find(key);
  return e ? e->image : nullptr;
}

std::shared_ptr<const EncodedVideo> MediaMemo::video(uint64_t key) {
  Entry* e = find(key);
  return e ? e->video : nullptr;
}

void MediaMemo::insert(Entry e) {
  if (max_entries_ == 0 || e.bytes > max_bytes_) return;  // would evict everything for itself
  std::erase_if(entries_, [&](const Entry& x) {
    if (x.key != e.key) return false;
    bytes_ -= x.bytes;
    return true;
  });
  while (!entries_.empty() && (entries_.size() >= max_entries_ || bytes_ + e.bytes > max_bytes_)) {
    auto oldest =
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
    bytes_ -= oldest->bytes;
    entries_.erase(oldest);
  }
  e.last_use = ++clock_;
  bytes_ += e.bytes;
  entries_.push_back(std::move(e));
}

void MediaMemo::put(uint64_t key, std::shared_ptr<const EncodedImage> image) {
  Entry e;
  e.key = key;
  e.bytes = (image->main.size() + image->deepstack.size()) * sizeof(float);
  e.image = std::move(image);
  insert(std::move(e));
}

void MediaMemo::put(uint64_t key, std::shared_ptr<const EncodedVideo> video) {
  Entry e;
  e.key = key;
  e.bytes = (video->main.size() + video->deepstack.size()) * sizeof(float);
  e.video = std::move(video);
  insert(std::move(e));
}

uint64_t file_identity(const std::string& path, uint64_t salt) {
  return identity_of(hash_file(path), salt);  // XXH3 through the regular-file checks
}

ThinkingSwitch model_thinking_switch(const Model& model) {
  const auto tmpl = model.text_file().opt_str("tokenizer.chat_template");
  return thinking_switch(tmpl.value_or(std::string_view()));
}

std::string model_generation_prompt(const Model& model, Think think) {
  return generation_prompt(model_thinking_switch(model), think);
}

std::string render_chat_turns(const std::vector<ChatTurn>& turns,
                              const std::string& generation_prompt, bool think_blocks) {
  std::vector<ChatMessage> messages;
  messages.reserve(turns.size());
  for (const ChatTurn& t : turns) {
    ChatMessage m{t.role, {}};
    for (const ChatPart& p : t.parts) {
      switch (p.kind) {
        case ChatPart::Kind::Text:
          m.content += p.text;
          break;
        case ChatPart::Kind::Image:
          m.content += kImageMarker;
          break;
        case ChatPart::Kind::Video:
        case ChatPart::Kind::Window:
          m.content += kVideoMarker;
          break;
      }
    }
    messages.push_back(std::move(m));
  }
  return render_chat(messages, generation_prompt, think_blocks);
}

ChatPrompt build_chat_prompt(const Model& model, ops::Context& ctx,
                             const std::vector<ChatTurn>& turns, const ChatPromptOptions& o,
                             MediaMemo& memo) {
  ChatPrompt out;
  const ThinkingSwitch sw = model_thinking_switch(model);
  const std::string text =
      render_chat_turns(turns, generation_prompt(sw, o.think), sw.think_blocks);
  // The media in order of appearance. A later system message is not rendered (the template
  // keeps only a first one), so neither are its media.
  std::vector<Medium> media;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].role == "system" && i > 0) continue;
    for (const ChatPart& p : turns[i].parts)
      if (p.kind != ChatPart::Kind::Text) {
        Medium m;
        m.is_video = p.kind == ChatPart::Kind::Video;
        m.path = p.text;
        if (p.kind == ChatPart::Kind::Window) {
          if (!p.window || p.window->empty()) throw InternalError("a window part without groups");
          m.window = p.window;
          m.in = *p.window;
        }
        media.push_back(std::move(m));
      }
  }
  if (!media.empty() && !model.has_vision())
    throw Error("images and videos need a vision model (an mmproj file)");
  const Tokenizer& tok = model.tokenizer();
  const int64_t reserve = o.max_tokens > 0 ? o.max_tokens : std::min(o.answer_reserve, o.n_ctx / 4);

  encode_images(model, ctx, media, o, memo, out);
  const int n_videos = static_cast<int>(
      std::count_if(media.begin(), media.end(), [](const Medium& m) { return m.is_video; }));
  const bool has_window =
      std::any_of(media.begin(), media.end(), [](const Medium& m) { return bool(m.window); });
  if (n_videos > 0 || has_window) {
    // The text, images and windows in full (windows less their oldest groups if need be), each
    // video as its bare marker; videos share what is left (at least one token: fit_windows
    // throws otherwise).
    const int64_t room = fit_windows(tok, text, media, reserve, o.n_ctx, out);
    if (n_videos > 0) plan_videos(model, media, n_videos, room, o, memo, out);
  }

  const std::string expanded =
      replace_markers(text, [&](size_t i) { return medium_text(media[i]); });
  out.ids = tok.encode(expanded, true);
  const int64_t answer = media.empty() ? 1 : reserve;
  if (int64_t(out.ids.size()) + answer > o.n_ctx)
    throw ContextFull(context_message(int64_t(out.ids.size()), answer, o.n_ctx));

  encode_videos(model, ctx, media, o, memo, out);
  for (const Medium& m : media) {
    if (m.window) {
      // The window's groups keep their identities: a later question about the same window,
      // grown, reuses the KV prefix up to its newest common group.
      for (const VisualBlock& b : live_blocks(m.in)) {
        out.blocks.push_back(b);
        out.video_tokens += int(b.hm * b.wm);
      }
      out.media.push_back(std::make_shared<const LiveGroups>(m.in.begin(), m.in.end()));
      ++out.n_videos;
      out.n_frames += live_frames(m.in);
      continue;
    }
    if (!m.is_video) {
      out.blocks.push_back(block_of(*m.image));
      out.blocks.back().id = m.id;
      out.media.push_back(m.image);
      continue;
    }
    uint64_t group = 0;
    for (const VisualBlock& b : m.video->blocks()) {
      out.blocks.push_back(b);
      out.blocks.back().id = nonzero(m.id * kFnvPrime + ++group);  // per temporal group
    }
    out.media.push_back(m.video);
  }
  return out;
}

}  // namespace reel
