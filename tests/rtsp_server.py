"""A real RTSP server for tests and benchmarks: GStreamer's (gst-rtsp-server), serving H.264 mp4 files.

Run with a Python that has GStreamer's introspection bindings (Debian: ``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-good/-bad/-ugly``; ``scripts/install-system-deps.sh``
installs them). The project's virtual environment usually cannot see them, so :mod:`tests.rtsp_helpers` starts
this file with the system ``python3``. Only the standard library and ``gi`` are imported here.

Three commands:

- ``encode OUT.mp4 --size 320x240 --fps 30 --seconds 3``: write a generated H.264 mp4 (``videotestsrc``'s
  moving ball, ``x264enc``), for a clone without the real data set; with ``--raw`` the frames are raw BGR of
  that size read from stdin instead (real video decoded by the caller);
- ``serve --port 0 --mount /cam=FILE.mp4 ...``: serve each mp4 at ``rtsp://127.0.0.1:PORT/cam`` with
  ``filesrc ! qtdemux ! h264parse ! rtph264pay`` (no re-encoding), each client from the start of the file at
  its own rate. Prints ``port N`` once listening, then runs until SIGTERM / SIGINT or its stdin closes.
  ``--user NAME --password-env VAR`` requires basic authentication (the password read from ``$VAR``).
  ``--live /PATH=WxH`` serves one live scene (a moving ball, encoded as it is served) at that size; every
  ``--live`` mount shows the same moment, as a camera's main and sub-streams do;
- ``play PIPELINE --frames N``: play a pipeline that ends in ``appsink`` (as OpenCV would) until N frames came
  and print ``frames N WIDTHxHEIGHT FORMAT`` (a reader's pipeline checked without an OpenCV built with GStreamer).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _encode(args: argparse.Namespace) -> int:
    width, height = (int(v) for v in args.size.split("x"))
    frames = round(args.seconds * args.fps)
    source = (
        f"fdsrc fd=0 ! rawvideoparse format=bgr width={width} height={height} framerate={args.fps}/1"
        if args.raw
        else f"videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width={width},height={height},"
        f"framerate={args.fps}/1"
    )
    pipeline = Gst.parse_launch(
        f"{source} ! videoconvert ! "
        f"x264enc speed-preset=ultrafast key-int-max={args.fps} bframes=0 ! "
        f"video/x-h264,profile=baseline ! h264parse ! mp4mux ! filesink location={args.out}"
    )
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        print(f"encode failed: {message.parse_error()[0].message}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for mount in args.mount:
        path, sep, file = mount.partition("=")
        if not sep or not path.startswith("/") or not Path(file).is_file():
            print(f"--mount {mount!r}: expected /PATH=EXISTING_FILE.mp4", file=sys.stderr)
            return 2
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{file}" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )'
        )
        factory.set_shared(False)  # every client its own pipeline: each camera starts at the file's start
        if args.user:
            factory.add_role_from_structure(
                Gst.Structure.new_from_string(
                    f"user,{GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS}=(boolean)true,"
                    f"{GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT}=(boolean)true"
                )
            )
        mounts.add_factory(path, factory)
    producer = None
    if args.live:  # one live scene, every --live mount a view of it at its own size: a camera's two streams
        producer = Gst.parse_launch(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! "
            "intervideosink channel=scene"
        )
        producer.set_state(Gst.State.PLAYING)
    for mount in args.live:
        path, sep, size = mount.partition("=")
        width, _, height = size.partition("x")
        if not sep or not path.startswith("/") or not (width.isdigit() and height.isdigit()):
            print(f"--live {mount!r}: expected /PATH=WIDTHxHEIGHT", file=sys.stderr)
            return 2
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( intervideosrc channel=scene ! videoscale ! videoconvert ! "
            f"video/x-raw,width={width},height={height},framerate=30/1 ! "
            f"x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 ! rtph264pay name=pay0 pt=96 )"
        )
        factory.set_shared(True)
        mounts.add_factory(path, factory)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        password = os.environ.get(args.password_env or "", "")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, password), token)
        server.set_auth(auth)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    GLib.io_add_watch(
        sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_HUP | GLib.IO_IN, lambda *_: loop.quit()
    )
    print(f"port {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


def _play(args: argparse.Namespace) -> int:
    pipeline = Gst.parse_launch(args.pipeline)
    sink = next(e for e in pipeline.children if e.get_factory().get_name() == "appsink")
    pipeline.set_state(Gst.State.PLAYING)
    frames, caps = 0, None
    while frames < args.frames:
        sample = sink.emit("try-pull-sample", int(args.timeout * Gst.SECOND))
        if sample is None:
            break
        frames, caps = frames + 1, sample.get_caps().get_structure(0)
    pipeline.set_state(Gst.State.NULL)
    if caps is None:
        print("no frame came", file=sys.stderr)
        return 1
    size = f"{caps.get_value('width')}x{caps.get_value('height')}"
    print(f"frames {frames} {size} {caps.get_value('format')}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode")
    enc.add_argument("out")
    enc.add_argument("--size", default="320x240")
    enc.add_argument("--fps", type=int, default=30)
    enc.add_argument("--seconds", type=float, default=3.0)
    enc.add_argument("--raw", action="store_true", help="encode raw BGR frames of --size read from stdin")
    srv = sub.add_parser("serve")
    srv.add_argument("--port", type=int, default=0)
    srv.add_argument("--mount", action="append", default=[], metavar="/PATH=FILE.mp4")
    srv.add_argument("--live", action="append", default=[], metavar="/PATH=WIDTHxHEIGHT")
    srv.add_argument("--user")
    srv.add_argument("--password-env", metavar="VAR")
    play = sub.add_parser("play")
    play.add_argument("pipeline")
    play.add_argument("--frames", type=int, default=30)
    play.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each frame")
    args = parser.parse_args(argv)
    Gst.init(None)
    return {"encode": _encode, "serve": _serve, "play": _play}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
