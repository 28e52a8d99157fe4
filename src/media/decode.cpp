// Image decoding with the libraries Pillow itself uses (libjpeg-turbo, libpng, libwebp), so that
// pixels match transformers' PIL-based loading; BMP, GIF and TIFF go through FFmpeg's decoders.
// Color conversion follows PIL's convert("RGB"), which transformers' load_image and
// image_transforms.convert_to_rgb call: alpha is dropped (not composited), grayscale replicated,
// 16-bit samples take their high byte, except 16-bit grayscale, which PIL clips to 255.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
// jerror.h after jpeglib.h: the warning codes.
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include "common/error.h"
#include "common/fs.h"
#include "media/av_util.h"
#include "media/exif.h"
#include "media/image.h"
#include "media/sws_rgb.h"

namespace reel::media {
namespace {

enum class Format { kJpeg, kPng, kWebp, kGif, kBmp, kTiff, kUnknown };

Format sniff(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(d + at, magic, len) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return Format::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return Format::kPng;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return Format::kWebp;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::kGif;
  if (starts("BM", 2)) return Format::kBmp;
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return Format::kTiff;
  return Format::kUnknown;
}

[[noreturn]] void fail(const std::string& name, const std::string& what,
                       ErrorKind kind = ErrorKind::InvalidInput) {
  throw_error(kind, name + ": " + what);
}

// Refuses zero or oversized dimensions before any pixel buffer exists.
void check_size(int64_t w, int64_t h, const ImageLimits& limits, const std::string& name) {
  if (w <= 0 || h <= 0) {
    fail(name, "invalid image size " + std::to_string(w) + "x" + std::to_string(h));
  }
  if (w > limits.max_pixels || h > limits.max_pixels || w * h > limits.max_pixels) {
    fail(name, "image is " + std::to_string(w) + "x" + std::to_string(h) + ", over the limit of " +
                   std::to_string(limits.max_pixels) + " pixels");
  }
}

bool size_ok(int64_t w, int64_t h, const ImageLimits& limits) {
  return w > 0 && h > 0 && w <= limits.max_pixels && h <= limits.max_pixels &&
         w * h <= limits.max_pixels;
}

// ---------------------------------------------------------------------------------------------
// JPEG (libjpeg-turbo; ISLOW IDCT and fancy upsampling, the library defaults Pillow keeps).
// libjpeg reports errors by longjmp; all state lives in JpegJob so no destructor is skipped.

constexpr int kMaxJpegScans = 1000;  // progressive "scan bombs" decode for minutes otherwise

struct JpegJob {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  jmp_buf jmp;
  char message[JMSG_LENGTH_MAX + 64] = {};
  ErrorKind kind = ErrorKind::InvalidInput;  // of the failure in `message`
  const ImageLimits* limits = nullptr;
  int width = 0, height = 0, components = 0, orientation = 1;
  bool adobe = false;
  J_COLOR_SPACE space = JCS_RGB;
  std::vector<uint8_t> pixels;
};

JpegJob* jpeg_job(j_common_ptr c) {
  return static_cast<JpegJob*>(c->client_data);
}

// Valid JPEG that this libjpeg cannot decode (12- or 16-bit samples, a process it lacks), as
// opposed to corrupt data. A corrupt precision byte (say 7) stays a corrupt file.
bool jpeg_unsupported(j_common_ptr c) {
  switch (c->err->msg_code) {
    case JERR_BAD_PRECISION: {
      const int bits = reinterpret_cast<j_decompress_ptr>(c)->data_precision;
      return bits == 12 || bits == 16;
    }
    case JERR_NOT_COMPILED:
    case JERR_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_ARITH_NOTIMPL:
      return true;
    default:
      return false;
  }
}

void jpeg_error_exit(j_common_ptr c) {
  JpegJob* job = jpeg_job(c);
  c->err->format_message(c, job->message);
  if (jpeg_unsupported(c)) job->kind = ErrorKind::Unsupported;
  longjmp(job->jmp, 1);
}

// A premature end of data is a warning to libjpeg (it pads with gray); Pillow refuses the file.
void jpeg_emit_message(j_common_ptr c, int level) {
  if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
    std::snprintf(jpeg_job(c)->message, sizeof(JpegJob::message), "truncated JPEG data");
    longjmp(jpeg_job(c)->jmp, 1);
  }
}

void jpeg_progress(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxJpegScans) {
    std::snprintf(jpeg_job(c)->message, sizeof(JpegJob::message), "too many JPEG scans");
    longjmp(jpeg_job(c)->jmp, 1);
  }
}

void read_jpeg_orientation(JpegJob& job) {
  for (jpeg_saved_marker_ptr m = job.cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
        std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      job.orientation = detail::exif_orientation(m->data, m->data_length);
      return;
    }
  }
}

// Returns false with job.message set on failure.
bool run_jpeg(JpegJob& job, const uint8_t* data, size_t size) {
  jpeg_decompress_struct& c = job.cinfo;
  c.err = jpeg_std_error(&job.err);
  job.err.error_exit = jpeg_error_exit;
  job.err.emit_message = jpeg_emit_message;
  job.progress.progress_monitor = jpeg_progress;
  if (setjmp(job.jmp)) {
    jpeg_destroy_decompress(&c);
    return false;
  }
  jpeg_create_decompress(&c);
  c.client_data = &job;
  c.progress = &job.progress;
  // Progressive coefficient buffers scale with the image; bound them by the pixel limit.
  c.mem->max_memory_to_use =
      std::min<int64_t>(job.limits->max_pixels, int64_t{1} << 36) * 16 + (int64_t{64} << 20);
  jpeg_mem_src(&c, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&c, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&c, TRUE);
  read_jpeg_orientation(job);
  job.width = static_cast<int>(c.image_width);
  job.height = static_cast<int>(c.image_height);
  if (!size_ok(job.width, job.height, *job.limits)) {
    jpeg_destroy_decompress(&c);
    return true;  // the caller reports the size
  }
  if (c.jpeg_color_space == JCS_GRAYSCALE) {
    c.out_color_space = JCS_GRAYSCALE;
  } else if (c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK) {
    c.out_color_space = JCS_CMYK;
  } else {
    c.out_color_space = JCS_RGB;
  }
  job.space = c.out_color_space;
  job.adobe = c.saw_Adobe_marker;
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&c);
  job.components = c.output_components;
  const size_t stride = size_t(c.output_width) * c.output_components;
  try {
    job.pixels.resize(stride * c.output_height);
  } catch (const std::bad_alloc&) {
    std::snprintf(job.message, sizeof(job.message), "out of memory");
    job.kind = ErrorKind::Io;
    jpeg_destroy_decompress(&c);
    return false;
  }
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = job.pixels.data() + size_t(c.output_scanline) * stride;
    jpeg_read_scanlines(&c, &row, 1);
  }
  // All rows are in; what follows the last scan (EOI, trailing bytes) is not needed.
  jpeg_abort_decompress(&c);
  jpeg_destroy_decompress(&c);
  return true;
}

// PIL's CMYK -> RGB: each channel is (255 - k) scaled by (255 - c), with PIL's rounding of x*y/255.
uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits) {
  auto job = std::make_unique<JpegJob>();
  job->limits = &limits;
  if (!run_jpeg(*job, data, size)) fail(name, std::string("JPEG: ") + job->message, job->kind);
  check_size(job->width, job->height, limits, name);
  Image img;
  img.width = job->width;
  img.height = job->height;
  const size_t n = size_t(img.width) * img.height;
  img.rgb.resize(n * 3);
  const uint8_t* p = job->pixels.data();
  if (job->space == JCS_GRAYSCALE) {
    for (size_t i = 0; i < n; ++i) std::fill_n(&img.rgb[i * 3], 3, p[i]);
  } else if (job->space == JCS_CMYK) {
    // Adobe (Photoshop) CMYK JPEGs store inverted samples; PIL reads them as "CMYK;I".
    const int inv = job->adobe ? 255 : 0;
    for (size_t i = 0; i < n; ++i) {
      const int nk = 255 - (p[i * 4 + 3] ^ inv);
      for (int ch = 0; ch < 3; ++ch) {
        img.rgb[i * 3 + ch] = static_cast<uint8_t>(nk - muldiv255(p[i * 4 + ch] ^ inv, nk));
      }
    }
  } else {
    img.rgb = std::move(job->pixels);
  }
  detail::apply_orientation(img, job->orientation);
  return img;
}

// ---------------------------------------------------------------------------------------------
// PNG (libpng). Same longjmp discipline as JPEG.

struct PngJob {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = {};
  ErrorKind kind = ErrorKind::InvalidInput;  // of the failure in `message`
  const ImageLimits* limits = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  int width = 0, height = 0, channels = 0, depth = 0, color_type = 0;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
};

void png_read_mem(png_structp png, png_bytep out, size_t n) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (job->size - job->pos < n) png_error(png, "truncated PNG data");
  std::memcpy(out, job->data + job->pos, n);
  job->pos += n;
}

void png_fail(png_structp png, png_const_charp msg) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof(job->message), "%s", msg);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

// The eXIf chunk, before or after the image data, found by walking the chunk list directly:
// libpng rejects an eXIf payload that starts with "Exif\0\0", which PIL accepts.
int png_orientation(const uint8_t* d, size_t n) {
  size_t pos = 8;
  while (n >= 12 && pos <= n - 12) {
    const size_t len = size_t(d[pos]) << 24 | size_t(d[pos + 1]) << 16 | size_t(d[pos + 2]) << 8 |
                       size_t(d[pos + 3]);
    if (len > n - pos - 12) break;
    const uint8_t* type = d + pos + 4;
    if (std::memcmp(type, "eXIf", 4) == 0) return detail::exif_orientation(d + pos + 8, len);
    if (std::memcmp(type, "IEND", 4) == 0) break;
    pos += 12 + len;
  }
  return 1;
}

bool run_png(PngJob& job) {
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_fail, png_warn);
  if (job.png == nullptr) {
    std::snprintf(job.message, sizeof(job.message), "out of memory");
    job.kind = ErrorKind::Io;
    return false;
  }
  job.info = png_create_info_struct(job.png);
  if (job.info == nullptr) {
    std::snprintf(job.message, sizeof(job.message), "out of memory");
    job.kind = ErrorKind::Io;
  }
  if (job.info == nullptr || setjmp(png_jmpbuf(job.png))) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    return false;
  }
  png_set_read_fn(job.png, &job, png_read_mem);
  png_read_info(job.png, job.info);
  job.width = static_cast<int>(png_get_image_width(job.png, job.info));
  job.height = static_cast<int>(png_get_image_height(job.png, job.info));
  if (!size_ok(job.width, job.height, *job.limits)) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    return true;  // the caller reports the size
  }
  job.color_type = png_get_color_type(job.png, job.info);
  const int bit_depth = png_get_bit_depth(job.png, job.info);
  if (job.color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job.png);
  // 1/2/4-bit gray scales to 0..255 by bit replication, as PIL's "1"/"L;2"/"L;4" unpackers do.
  if (job.color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(job.png);
  }
  png_set_interlace_handling(job.png);
  png_read_update_info(job.png, job.info);
  job.channels = png_get_channels(job.png, job.info);
  job.depth = png_get_bit_depth(job.png, job.info);
  const size_t stride = png_get_rowbytes(job.png, job.info);
  if (stride != size_t(job.width) * job.channels * (job.depth / 8) || job.channels < 1 ||
      job.channels > 4) {
    job.kind = ErrorKind::Unsupported;
    png_error(job.png, "unsupported PNG pixel layout");
  }
  bool oom = false;
  try {
    job.pixels.resize(stride * job.height);
    job.rows.resize(job.height);
  } catch (const std::bad_alloc&) {
    oom = true;  // png_error longjmps; never from inside a handler
  }
  if (oom) {
    job.kind = ErrorKind::Io;
    png_error(job.png, "out of memory");
  }
  for (int y = 0; y < job.height; ++y) job.rows[y] = job.pixels.data() + size_t(y) * stride;
  png_read_image(job.png, job.rows.data());
  png_destroy_read_struct(&job.png, &job.info, nullptr);
  return true;
}

void png_to_rgb(const PngJob& job, Image& img) {
  const size_t n = size_t(img.width) * img.height;
  const int ch = job.channels;
  const uint8_t* p = job.pixels.data();
  const bool gray = ch <= 2;
  if (job.depth == 8) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* s = p + i * ch;
      uint8_t* d = &img.rgb[i * 3];
      d[0] = s[0];
      d[1] = gray ? s[0] : s[1];
      d[2] = gray ? s[0] : s[2];
    }
    return;
  }
  // 16-bit, big-endian samples. PIL keeps the high byte ("RGB;16B", "LA;16B"), but a plain
  // 16-bit grayscale image becomes mode I;16 whose conversion to RGB clips at 255.
  const bool clip = job.color_type == PNG_COLOR_TYPE_GRAY;
  auto sample = [&](const uint8_t* s) -> uint8_t {
    if (!clip) return s[0];
    const int v = s[0] << 8 | s[1];
    return static_cast<uint8_t>(std::min(v, 255));
  };
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* s = p + i * ch * 2;
    uint8_t* d = &img.rgb[i * 3];
    d[0] = sample(s);
    d[1] = gray ? d[0] : sample(s + 2);
    d[2] = gray ? d[0] : sample(s + 4);
  }
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  auto job = std::make_unique<PngJob>();
  job->data = data;
  job->size = size;
  job->limits = &limits;
  if (!run_png(*job)) fail(name, std::string("PNG: ") + job->message, job->kind);
  check_size(job->width, job->height, limits, name);
  Image img;
  img.width = job->width;
  img.height = job->height;
  img.rgb.resize(size_t(img.width) * img.height * 3);
  png_to_rgb(*job, img);
  detail::apply_orientation(img, png_orientation(data, size));
  return img;
}

// ---------------------------------------------------------------------------------------------
// WebP (libwebp, fancy upsampling as libwebp defaults; animated files: the first frame).

int webp_orientation(const uint8_t* data, size_t size) {
  // RIFF container: "RIFF" size "WEBP", then chunks of fourcc, little-endian size, padded data.
  size_t pos = 12;
  while (size >= 8 && pos <= size - 8) {
    const uint8_t* c = data + pos;
    const size_t len = size_t(c[4]) | size_t(c[5]) << 8 | size_t(c[6]) << 16 | size_t(c[7]) << 24;
    if (len > size - pos - 8) break;
    if (std::memcmp(c, "EXIF", 4) == 0) return detail::exif_orientation(c + 8, len);
    pos += 8 + len + (len & 1);
  }
  return 1;
}

Image decode_webp_animated(const uint8_t* data, size_t size, const std::string& name, Image img) {
  WebPAnimDecoderOptions opts;
  WebPAnimDecoderOptionsInit(&opts);
  opts.color_mode = MODE_RGBA;
  opts.use_threads = 0;
  WebPData wd{data, size};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(WebPAnimDecoderNew(&wd, &opts),
                                                                   WebPAnimDecoderDelete);
  WebPAnimInfo info;
  if (!dec || !WebPAnimDecoderGetInfo(dec.get(), &info) || int(info.canvas_width) != img.width ||
      int(info.canvas_height) != img.height) {
    fail(name, "WebP: corrupt animation");
  }
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &rgba, &timestamp)) fail(name, "WebP: corrupt frame");
  const size_t n = size_t(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) std::memcpy(&img.rgb[i * 3], rgba + i * 4, 3);
  return img;
}

Image decode_webp(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) fail(name, "WebP: corrupt header");
  check_size(features.width, features.height, limits, name);
  Image img;
  img.width = features.width;
  img.height = features.height;
  img.rgb.resize(size_t(img.width) * img.height * 3);
  if (features.has_animation) {
    img = decode_webp_animated(data, size, name, std::move(img));
  } else if (WebPDecodeRGBInto(data, size, img.rgb.data(), img.rgb.size(), img.width * 3) ==
             nullptr) {
    fail(name, "WebP: corrupt or truncated data");
  }
  detail::apply_orientation(img, webp_orientation(data, size));
  return img;
}

// ---------------------------------------------------------------------------------------------
// BMP, GIF (first frame), TIFF: FFmpeg decoders fed the whole file as one packet.

// Dimensions from the header, so an oversized image is refused before FFmpeg allocates it.
void check_header_size(Format f, const uint8_t* d, size_t n, const ImageLimits& limits,
                       const std::string& name) {
  auto le16 = [&](size_t at) { return int64_t(d[at]) | int64_t(d[at + 1]) << 8; };
  auto le32 = [&](size_t at) { return int32_t(uint32_t(le16(at)) | uint32_t(le16(at + 2)) << 16); };
  if (f == Format::kGif) {
    if (n < 13) fail(name, "GIF: truncated header");
    check_size(le16(6), le16(8), limits, name);
  } else if (f == Format::kBmp) {
    if (n < 26) fail(name, "BMP: truncated header");
    if (le32(14) == 12) {
      check_size(le16(18), le16(20), limits, name);
    } else {
      const int64_t h = le32(22);
      check_size(le32(18), h < 0 ? -h : h, limits, name);
    }
  }
}

void frame_to_rgb(const AVFrame* frame, Image& img, const std::string& name) {
  AvPtr<SwsContext> sws(sws_getContext(frame->width, frame->height, AVPixelFormat(frame->format),
                                       frame->width, frame->height, AV_PIX_FMT_RGB24, SWS_POINT,
                                       nullptr, nullptr, nullptr));
  if (!sws) fail(name, "unsupported pixel format", ErrorKind::Unsupported);
  scale_to_rgb(sws.get(), frame, img);
}

Image decode_ffmpeg(Format f, const uint8_t* data, size_t size, const std::string& name,
                    const ImageLimits& limits) {
  static const char* const kNames[] = {"JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF", "?"};
  const std::string label = std::string(kNames[int(f)]) + ": ";
  check_header_size(f, data, size, limits, name);
  init_ffmpeg();  // FFmpeg's log silenced: the errors are worded here
  const AVCodecID id = f == Format::kGif   ? AV_CODEC_ID_GIF
                       : f == Format::kBmp ? AV_CODEC_ID_BMP
                                           : AV_CODEC_ID_TIFF;
  const AVCodec* codec = avcodec_find_decoder(id);
  if (codec == nullptr)
    fail(name, label + "no decoder in this FFmpeg build", ErrorKind::Unsupported);
  AvPtr<AVCodecContext> ctx(avcodec_alloc_context3(codec));
  AvPtr<AVPacket> pkt(av_packet_alloc());
  AvPtr<AVFrame> frame(av_frame_alloc());
  if (!ctx || !pkt || !frame || size > size_t(INT32_MAX) - AV_INPUT_BUFFER_PADDING_SIZE) {
    fail(name, label + "out of memory", ErrorKind::Io);
  }
  ctx->max_pixels = limits.max_pixels;
  ctx->thread_count = 1;
  if (avcodec_open2(ctx.get(), codec, nullptr) < 0 || av_new_packet(pkt.get(), int(size)) < 0) {
    fail(name, label + "cannot open decoder", ErrorKind::Io);  // only memory can fail here
  }
  std::memcpy(pkt->data, data, size);
  int rc = avcodec_send_packet(ctx.get(), pkt.get());
  if (rc >= 0) rc = avcodec_receive_frame(ctx.get(), frame.get());
  if (rc == AVERROR(EAGAIN) && avcodec_send_packet(ctx.get(), nullptr) >= 0) {
    rc = avcodec_receive_frame(ctx.get(), frame.get());
  }
  // FFmpeg's TIFF decoder answers PATCHWELCOME for valid files it cannot read (a compression
  // or sample layout it lacks).
  if (rc == AVERROR_PATCHWELCOME || rc == AVERROR(ENOSYS))
    fail(name, label + "uses a feature FFmpeg cannot decode", ErrorKind::Unsupported);
  if (rc == AVERROR(ENOMEM)) fail(name, label + "out of memory", ErrorKind::Io);
  if (rc < 0) fail(name, label + "corrupt or truncated data");
  check_size(frame->width, frame->height, limits, name);
  Image img;
  img.width = frame->width;
  img.height = frame->height;
  img.rgb.resize(size_t(img.width) * img.height * 3);
  frame_to_rgb(frame.get(), img, name);
  return img;
}

}  // namespace

namespace {

Image decode_by_format(const uint8_t* data, size_t size, const std::string& name,
                       const ImageLimits& limits) {
  switch (sniff(data, size)) {
    case Format::kJpeg:
      return decode_jpeg(data, size, name, limits);
    case Format::kPng:
      return decode_png(data, size, name, limits);
    case Format::kWebp:
      return decode_webp(data, size, name, limits);
    case Format::kGif:
      return decode_ffmpeg(Format::kGif, data, size, name, limits);
    case Format::kBmp:
      return decode_ffmpeg(Format::kBmp, data, size, name, limits);
    case Format::kTiff:
      return decode_ffmpeg(Format::kTiff, data, size, name, limits);
    case Format::kUnknown:
      break;
  }
  fail(name, "unknown image format (expected JPEG, PNG, WebP, GIF, BMP or TIFF)",
       ErrorKind::Unsupported);
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits) {
  if (size == 0) fail(name, "empty file");
  try {
    return decode_by_format(data, size, name, limits);
  } catch (const std::bad_alloc&) {
    // An image within the limits that this machine cannot hold: the system's failure.
    fail(name, "out of memory", ErrorKind::Io);
  }
}

Image load_image(const std::string& path, const ImageLimits& limits) {
  // Only regular files: a FIFO, a device (/dev/zero, /dev/stdin) or a socket is refused at once,
  // as are directories and link loops, each with its own reason (none of them has a size to
  // check against the limit, and a FIFO without a writer would block forever).
  const int fd = open_regular_file(path, "image");
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    fail(path, std::string("cannot read: ") + std::strerror(err), error_kind_for_errno(err));
  }
  const int64_t bytes = st.st_size;
  if (bytes > limits.max_file_bytes) {
    fail(path, "file is " + std::to_string(bytes) + " bytes, over the limit of " +
                   std::to_string(limits.max_file_bytes));
  }
  std::vector<uint8_t> data;
  try {
    data.resize(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    fail(path, "out of memory", ErrorKind::Io);
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      fail(path, std::string("read error: ") + std::strerror(err), error_kind_for_errno(err));
    }
    if (n == 0) fail(path, "file shrank while being read");
    done += static_cast<size_t>(n);
  }
  return decode_image(data.data(), data.size(), path, limits);
}

}  // namespace reel::media
