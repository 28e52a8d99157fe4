#include "encode.h"

#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include <cstring>
#include <stdexcept>

namespace reel::media::test {

Bytes encode_jpeg(const std::vector<uint8_t>& pixels, int w, int h, int components, int quality,
                  const Bytes& app1) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  if (!app1.empty()) jpeg_write_marker(&c, JPEG_APP0 + 1, app1.data(), unsigned(app1.size()));
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&pixels[size_t(c.next_scanline) * w * components]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes out(buf, buf + size);
  free(buf);
  return out;
}

namespace {
void png_write_mem(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void png_flush_noop(png_structp) {}
}  // namespace

Bytes encode_png(const std::vector<uint8_t>& samples, int w, int h, int color_type, int depth,
                 const std::vector<uint8_t>& palette, const Bytes& exif) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) throw std::runtime_error("png encode failed");
  png_set_write_fn(png, &out, png_write_mem, png_flush_noop);
  png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> pal;
  for (size_t i = 0; i + 2 < palette.size(); i += 3) {
    pal.push_back({palette[i], palette[i + 1], palette[i + 2]});
  }
  if (!pal.empty()) png_set_PLTE(png, info, pal.data(), int(pal.size()));
  if (!exif.empty())
    png_set_eXIf_1(png, info, png_uint_32(exif.size()), const_cast<uint8_t*>(exif.data()));
  png_write_info(png, info);
  const size_t stride = samples.size() / h;
  for (int y = 0; y < h; ++y) png_write_row(png, &samples[size_t(y) * stride]);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

Bytes encode_webp_lossless(const std::vector<uint8_t>& rgb, int w, int h) {
  uint8_t* buf = nullptr;
  const size_t n = WebPEncodeLosslessRGB(rgb.data(), w, h, w * 3, &buf);
  Bytes out(buf, buf + n);
  WebPFree(buf);
  return out;
}

namespace {
void put16(Bytes& b, unsigned v) {
  b.push_back(v & 0xFF);
  b.push_back((v >> 8) & 0xFF);
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v & 0xFFFF);
  put16(b, v >> 16);
}
}  // namespace

Bytes encode_bmp24(const std::vector<uint8_t>& rgb, int w, int h) {
  const int stride = (w * 3 + 3) & ~3;
  Bytes b = {'B', 'M'};
  put32(b, 54 + stride * h);
  put32(b, 0);
  put32(b, 54);
  put32(b, 40);
  put32(b, w);
  put32(b, h);  // positive: bottom-up rows
  put16(b, 1);
  put16(b, 24);
  put32(b, 0);
  put32(b, stride * h);
  put32(b, 2835);
  put32(b, 2835);
  put32(b, 0);
  put32(b, 0);
  for (int y = h - 1; y >= 0; --y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = &rgb[(size_t(y) * w + x) * 3];
      b.push_back(p[2]);
      b.push_back(p[1]);
      b.push_back(p[0]);
    }
    for (int i = w * 3; i < stride; ++i) b.push_back(0);
  }
  return b;
}

Bytes encode_gif(const std::vector<uint8_t>& indices, int w, int h,
                 const std::vector<uint8_t>& palette) {
  Bytes b = {'G', 'I', 'F', '8', '9', 'a'};
  put16(b, w);
  put16(b, h);
  b.push_back(0xF7);  // global table, 8 bits, 256 entries
  b.push_back(0);
  b.push_back(0);
  for (int i = 0; i < 768; ++i) b.push_back(i < int(palette.size()) ? palette[i] : 0);
  b.push_back(0x2C);
  put16(b, 0);
  put16(b, 0);
  put16(b, w);
  put16(b, h);
  b.push_back(0);
  // LZW with code size 8: a clear code before every pixel keeps every code 9 bits wide and the
  // table empty, so each pixel is a literal.
  b.push_back(8);
  Bytes data;
  uint32_t acc = 0;
  int bits = 0;
  auto emit = [&](unsigned code) {
    acc |= code << bits;
    bits += 9;
    while (bits >= 8) {
      data.push_back(acc & 0xFF);
      acc >>= 8;
      bits -= 8;
    }
  };
  for (uint8_t i : indices) {
    emit(256);
    emit(i);
  }
  emit(257);
  if (bits > 0) data.push_back(acc & 0xFF);
  for (size_t i = 0; i < data.size(); i += 255) {
    const size_t n = std::min<size_t>(255, data.size() - i);
    b.push_back(uint8_t(n));
    b.insert(b.end(), data.begin() + i, data.begin() + i + n);
  }
  b.push_back(0);
  b.push_back(0x3B);
  return b;
}

Bytes exif_block(int orientation, bool prefix) {
  Bytes b;
  if (prefix) b = {'E', 'x', 'i', 'f', 0, 0};
  const uint8_t tiff[] = {'M',  'M',
                          0,    42,
                          0,    0,
                          0,    8,  // header, IFD0 at 8
                          0,    1,  // one entry
                          0x01, 0x12,
                          0,    3,
                          0,    0,
                          0,    1,  // Orientation, SHORT, count 1
                          0,    uint8_t(orientation),
                          0,    0,  // value
                          0,    0,
                          0,    0};  // no next IFD
  for (uint8_t v : tiff) b.push_back(v);  // (insert() trips a GCC 12 -Wstringop-overread)
  return b;
}

}  // namespace reel::media::test
