// Videos into vision tokens. A plan (which frames, what size, how many tokens) is made from
// the file's metadata alone, so `reel frames` needs no model; encoding then decodes the
// planned frames on one thread while the vision encoder works through the temporal groups
// already decoded on the others.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "media/sampling.h"
#include "media/video.h"
#include "model/vision_encoder.h"
#include "ops/ops.h"
#include "pipeline/image_encoder.h"
#include "pipeline/prompt_layout.h"

namespace reel {

struct VideoOptions {
  // Sampling: transformers' policy (fps frames per second, clamped to [min, max]) unless
  // n_frames > 0, the original app's N evenly spaced frames.
  double fps = 2.0;
  int min_frames = 4;
  int max_frames = 768;
  int n_frames = 0;
  media::VideoBudget budget = media::kQwen3VLVideoBudget;  // the reference's clip-level pixels
  int64_t max_tokens = 0;           // visual token budget for the video (0: only the context's)
  bool as_images = false;           // the original app's way: every frame a separate image
  ImageOptions image;               // per-frame sizing when as_images
  bool display_corrections = true;  // rotation metadata and non-square pixels
  // An encoder of one input size (VisionGeometry::fixed_width/height): every frame is stretched
  // to it and a budget can only take fewer frames. 0 x 0: sized by the budgets above.
  int fixed_width = 0, fixed_height = 0;
};

// The options as `vision` can take them: an encoder that sees one frame at a time
// (temporal_patch 1) gets the video as images, one frame per image, and a fixed-size one gets
// its size.
VideoOptions video_options_for(const VisionEncoder& vision, VideoOptions o);

// What will be encoded; no model needed.
struct VideoPlan {
  std::string path;
  media::VideoInfo info;
  std::vector<int64_t> indices;  // sampled frames, ascending
  std::vector<int64_t> frames;   // frame of each temporal slot (odd counts repeat the last)
  // Seconds, one per temporal group: as the reference computes them on constant frame rate, the
  // mean of the pair's presentation times on variable frame rate.
  std::vector<double> group_times;
  bool as_images = false;
  bool display_corrections = true;
  int resized_w = 0, resized_h = 0;
  media::Size2 fixed;                // the encoder's one frame size, or 0 x 0
  int grid_h = 0, grid_w = 0;        // patches per frame
  int merge = kQwen3VLSpatialMerge;  // patches per token side (the vision model's spatial merge)
  int n_groups = 0;                  // temporal groups (as_images: frames)
  int tokens_per_group() const { return grid_h * grid_w / (merge * merge); }
  int n_tokens() const { return n_groups * tokens_per_group(); }
  std::vector<std::string> notes;  // what a budget made Reel choose, in words
};

// token_budget: the most prompt tokens the video may take (<= 0: no limit), counting its
// visual tokens plus per_group_extra for each temporal group (its timestamp text and vision
// markers; see video_prompt_tokens). A video that would exceed it is sampled down (smaller
// frames first, then fewer frames); reel::ContextFull when even one small group cannot fit.
VideoPlan plan_video(const std::string& path, const VideoOptions& opts, int patch_size,
                     int merge_size, int64_t token_budget, int per_group_extra = 0);

// A plan whose whole prompt text (video_prompt_tokens: visual tokens, timestamps, markers)
// takes at most prompt_budget tokens (<= 0: no limit). reel::ContextFull when none fits.
VideoPlan plan_video_prompt(const std::string& path, const VideoOptions& opts, int patch_size,
                            int merge_size, int64_t prompt_budget);

// Whether two plans encode to the same rows (the same frames, size and mode).
bool same_plan(const VideoPlan& a, const VideoPlan& b);

// The text that replaces the chat template's video marker for this plan (see
// EncodedVideo::prompt_text), and the number of tokens it holds with Qwen's tokenizer.
std::string video_prompt_text(const VideoPlan& plan);
int64_t video_prompt_tokens(const VideoPlan& plan);
// Tokens of timestamp_text(seconds) with Qwen's tokenizer (digits are single tokens).
int timestamp_tokens(double seconds);

struct EncodedVideo {
  VideoPlan plan;
  int out_dim = 0, n_deepstack = 0;
  std::vector<float> main;       // [n_tokens][D]
  std::vector<float> deepstack;  // [n_deepstack][n_tokens][D]
  double decode_ms = 0;          // decoding + resizing (overlapped with encoding)
  double encode_ms = 0;          // vision encoder
  double wall_ms = 0;

  // The text that replaces the chat template's video marker
  // (<|vision_start|><|video_pad|><|vision_end|>): as transformers expands it, each temporal
  // group "<t.t seconds><|vision_start|>" + pads + "<|vision_end|>" inside the marker's own
  // vision_start/vision_end. As images: one image marker per frame.
  std::string prompt_text() const;
  std::vector<VisualBlock> blocks() const;
};

using ProgressFn = std::function<void(int done, int total)>;
EncodedVideo encode_video(const VisionEncoder& vision, const VideoPlan& plan, ops::Context& ctx,
                          const ProgressFn& progress = nullptr);

// One temporal group encoded on its own, for live video: two frames of the same size (sides
// multiples of patch size x spatial merge, already resized) into the group's visual tokens,
// computed exactly as encode_video computes each of its groups. Throws reel::Error on frames
// of different or unaligned sizes.
struct EncodedGroup {
  int hm = 0, wm = 0;            // tokens per column and per row
  std::vector<float> main;       // [n_tokens][D]
  std::vector<float> deepstack;  // [n_deepstack][n_tokens][D]
  int n_tokens() const { return hm * wm; }
};
EncodedGroup encode_video_group(const VisionEncoder& vision, const media::Image& first,
                                const media::Image& second, ops::Context& ctx);
// The same for any encoder: geometry().temporal_patch frames (one for an encoder of single
// frames, whose group is then an image's rows), of the encoder's fixed size if it has one.
// `scratch` (from vision.new_scratch()) is kept by a caller that encodes group after group;
// null: one for this group alone.
EncodedGroup encode_video_group(const VisionEncoder& vision,
                                std::span<const media::Image* const> frames, ops::Context& ctx,
                                VisionScratch* scratch = nullptr);

// "<1.3 seconds>": the reference's text for a group time (printf %.1f of the double).
std::string timestamp_text(double seconds);

}  // namespace reel
