#include "media/av_util.h"

#include <mutex>

extern "C" {
#include <libavutil/log.h>
#ifdef REEL_HAVE_AVDEVICE
#include <libavdevice/avdevice.h>
#endif
}

namespace reel::media {

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_QUIET);
    avformat_network_init();
#ifdef REEL_HAVE_AVDEVICE
    avdevice_register_all();
#endif
  });
}

}  // namespace reel::media
