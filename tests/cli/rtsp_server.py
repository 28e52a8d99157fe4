#!/usr/bin/python3
"""A tiny RTSP server for the tests (GStreamer's GstRtspServer, Debian's gir1.2-gst-rtsp-server-1.0
and python3-gst-1.0): serves a generated live H.264 clip (moving test pattern, 160x120, 10 fps, a
key frame every second) on a free loopback port at rtsp://127.0.0.1:PORT/x over TCP or UDP as the
client asks, at /tcp over TCP only and at /udp over UDP only (so a test can tell which was used). Prints "PORT <n>" on stdout once it listens; runs until killed.

Usage: rtsp_server.py
Exits 77 when GStreamer's RTSP server (or its H.264 encoder) is not installed.
"""

import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
except (ImportError, ValueError) as e:
    print(f"GStreamer's RTSP server is not installed ({e})", file=sys.stderr)
    sys.exit(77)

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def main():
    Gst.init(None)
    if Gst.ElementFactory.find("x264enc") is None:
        print("GStreamer's x264enc (gstreamer1.0-plugins-ugly) is not installed", file=sys.stderr)
        sys.exit(77)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")  # any free port
    lower = GstRtsp.RTSPLowerTrans
    for path, protocols in (("/x", lower.TCP | lower.UDP), ("/tcp", lower.TCP),
                            ("/udp", lower.UDP)):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(PIPELINE)
        factory.set_shared(True)  # one pipeline for every client of the path
        factory.set_protocols(protocols)
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print("cannot start the RTSP server", file=sys.stderr)
        sys.exit(1)
    print(f"PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
