/*
 * mediaredir.h - C API of the media-redirection player (libmediaredir).
 *
 * SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
 *
 * A guest application redirects compressed audio/video to the Spice client
 * through the broker (`mediaredir-broker`, which owns the virtio device).
 * This API is shaped like V4L2's memory-to-memory decoder API: open the
 * device, query capabilities, set a format, request buffers that are
 * mapped into the process, fill them in place, queue them, dequeue them
 * when the device is done, and read events. Every function names the V4L2
 * call it corresponds to.
 *
 * Return convention of every `int` function:
 *   0            success;
 *   negative     -errno: a local failure. -EINVAL: a NULL or invalid
 *                argument, or a call that does not fit the buffers' state;
 *                -EAGAIN: non-blocking mode and nothing is ready;
 *                -ETIMEDOUT: the broker did not answer in time;
 *                -EPROTO: the broker sent a malformed message;
 *                -ENOTRECOVERABLE: an internal error (a bug) was caught;
 *                any other -errno: the broker socket failed (e.g. -ENOENT
 *                or -ECONNREFUSED from mediaredir_open, -ECONNRESET when
 *                the broker went away);
 *   positive     a protocol status (MEDIAREDIR_STATUS_*): the broker or
 *                the device refused the request (e.g. MEDIAREDIR_STATUS_
 *                UNSUPPORTED when the client cannot decode a format).
 * mediaredir_strerror() names any of them; mediaredir_last_error() gives
 * the detailed message of a handle's last failure.
 *
 * Threads: a handle may be used by one thread at a time; different handles
 * are independent. Times are nanoseconds of stream time.
 *
 * Build: `cargo build -p mediaredir-capi --release` gives
 * target/release/libmediaredir.so (and libmediaredir.a); link with
 * `-lmediaredir` (the static library also needs `-lpthread -ldl -lm`).
 */
#ifndef MEDIAREDIR_H
#define MEDIAREDIR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

/** The broker's default socket. */
#define MEDIAREDIR_DEFAULT_SOCKET "/run/mediaredir/broker.sock"

/** "No time": a pts, dts or duration that is not known. */
#define MEDIAREDIR_TIME_NONE UINT64_MAX

/* Protocol status codes (positive return values, buffer completions,
 * event status). */
#define MEDIAREDIR_STATUS_OK 0
#define MEDIAREDIR_STATUS_UNSUPPORTED 1     /* client cannot decode it */
#define MEDIAREDIR_STATUS_INVALID 2         /* malformed field or size */
#define MEDIAREDIR_STATUS_BAD_STATE 3       /* not legal in this state */
#define MEDIAREDIR_STATUS_NO_ENTITY 4       /* unknown presentation/stream */
#define MEDIAREDIR_STATUS_LIMIT 5           /* count or size limit */
#define MEDIAREDIR_STATUS_NO_CLIENT 6       /* no client connected */
#define MEDIAREDIR_STATUS_CANCELLED 7       /* flushed before consumed */
#define MEDIAREDIR_STATUS_STALE 8           /* device restarted: hello */
#define MEDIAREDIR_STATUS_IO 9              /* client or transport failed */
#define MEDIAREDIR_STATUS_NEEDS_RESET 10    /* device needs a reset */
#define MEDIAREDIR_STATUS_UNKNOWN_REQUEST 11
#define MEDIAREDIR_STATUS_DROPPED 12        /* consumed without being sent */

/* Codecs (struct mediaredir_stream_format.codec,
 * struct mediaredir_codec_cap.codec). */
#define MEDIAREDIR_CODEC_H264 0x001     /* codec data optional (avcC) */
#define MEDIAREDIR_CODEC_H265 0x002     /* codec data optional (hvcC) */
#define MEDIAREDIR_CODEC_VP8 0x003      /* no codec data */
#define MEDIAREDIR_CODEC_VP9 0x004      /* no codec data */
#define MEDIAREDIR_CODEC_AV1 0x005      /* codec data optional (av1C) */
#define MEDIAREDIR_CODEC_MJPEG 0x006    /* no codec data */
#define MEDIAREDIR_CODEC_THEORA 0x007   /* codec data required */
#define MEDIAREDIR_CODEC_MPEG2_VIDEO 0x008 /* codec data optional (sequence header) */
#define MEDIAREDIR_CODEC_MPEG4 0x009    /* codec data optional (VOS/VOL headers) */
#define MEDIAREDIR_CODEC_OPUS 0x101     /* codec data optional (OpusHead) */
#define MEDIAREDIR_CODEC_VORBIS 0x102   /* codec data required */
#define MEDIAREDIR_CODEC_AAC 0x103      /* codec data optional (ASC) */
#define MEDIAREDIR_CODEC_MP3 0x104      /* no codec data */
#define MEDIAREDIR_CODEC_FLAC 0x105     /* codec data required */
#define MEDIAREDIR_CODEC_PCM_S16LE 0x106 /* codec data optional (WAVE dwChannelMask, 4 bytes LE) */
#define MEDIAREDIR_CODEC_AC3 0x107      /* no codec data */
#define MEDIAREDIR_CODEC_EAC3 0x108     /* no codec data */
#define MEDIAREDIR_CODEC_MP2 0x109      /* no codec data */
#define MEDIAREDIR_CODEC_PCM_S24LE 0x10A /* 3 bytes a sample; codec data as PCM_S16LE */
#define MEDIAREDIR_CODEC_PCM_S32LE 0x10B /* codec data as PCM_S16LE */
#define MEDIAREDIR_CODEC_PCM_F32LE 0x10C /* codec data as PCM_S16LE */
#define MEDIAREDIR_CODEC_PCM_U8 0x10D    /* codec data as PCM_S16LE */

/* struct mediaredir_codec_cap.flags. */
#define MEDIAREDIR_CODEC_FLAG_DECODE 0x1
#define MEDIAREDIR_CODEC_FLAG_ENCODE 0x2
#define MEDIAREDIR_CODEC_FLAG_RTP 0x4

/* struct mediaredir_stream_format.direction. */
#define MEDIAREDIR_DIRECTION_PLAYBACK 0
#define MEDIAREDIR_DIRECTION_CAPTURE 1

/* struct mediaredir_buffer_info.flags (V4L2_BUF_FLAG_*). */
#define MEDIAREDIR_FLAG_KEYFRAME 0x1     /* a sync point */
#define MEDIAREDIR_FLAG_DISCONT 0x2      /* discontinuity before this */
#define MEDIAREDIR_FLAG_CODEC_CONFIG 0x4 /* in-band codec configuration */
#define MEDIAREDIR_FLAG_EOS 0x8          /* end of stream (may be empty) */
#define MEDIAREDIR_FLAG_DECODE_ONLY 0x10 /* decode, do not show */

/* struct mediaredir_event.kind. */
#define MEDIAREDIR_EVENT_CLIENT_CONNECTED 0x01
#define MEDIAREDIR_EVENT_CLIENT_DISCONNECTED 0x02
#define MEDIAREDIR_EVENT_EOS 0x03
#define MEDIAREDIR_EVENT_POSITION 0x04
#define MEDIAREDIR_EVENT_STREAM_ERROR 0x05
#define MEDIAREDIR_EVENT_QOS 0x06
#define MEDIAREDIR_EVENT_STATE_CHANGED 0x07
#define MEDIAREDIR_EVENT_KEYFRAME_NEEDED 0x08
#define MEDIAREDIR_EVENT_EVENTS_LOST 0x09
#define MEDIAREDIR_EVENT_DEVICE_STARTED 0x0A
#define MEDIAREDIR_EVENT_CALL_STATS 0x10
#define MEDIAREDIR_EVENT_CALL_ENDED 0x11
#define MEDIAREDIR_EVENT_CALL_DTMF 0x12

/* Presentation states (struct mediaredir_position.state, value 0 of
 * MEDIAREDIR_EVENT_STATE_CHANGED). */
#define MEDIAREDIR_STATE_IDLE 0
#define MEDIAREDIR_STATE_PLAYING 1
#define MEDIAREDIR_STATE_PAUSED 2

/** Most clip rectangles of a geometry. */
#define MEDIAREDIR_MAX_CLIP_RECTS 16

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

/** A connection to the broker (opaque; like an open /dev/videoN). */
struct mediaredir;

/** What the connected client decodes (struct v4l2_fmtdesc). */
struct mediaredir_codec_cap {
    uint32_t codec;      /* MEDIAREDIR_CODEC_* */
    uint32_t flags;      /* MEDIAREDIR_CODEC_FLAG_* */
    uint32_t max_width;  /* 0: not stated */
    uint32_t max_height; /* 0: not stated */
};

/** The device and its client (struct v4l2_capability). */
struct mediaredir_caps {
    uint32_t generation;       /* device generation (changes on restart) */
    uint32_t client_connected; /* 1 when a client is connected */
    uint32_t client_features;  /* the client's feature bits */
    uint32_t num_codecs;       /* codecs the client reported (all of them,
                                  even when fewer fit the caller's array) */
};

/** A stream format (struct v4l2_format). Unused fields are 0. */
struct mediaredir_stream_format {
    uint32_t codec;       /* MEDIAREDIR_CODEC_* */
    uint32_t direction;   /* MEDIAREDIR_DIRECTION_* */
    uint32_t txq;         /* playback queue: one per stream of a
                             presentation (0, 1, ...) */
    uint32_t source_id;   /* capture source (capture only) */
    uint32_t width;       /* video; 0 for audio */
    uint32_t height;      /* video; 0 for audio */
    uint32_t fps_num;     /* frame rate; 0/0 if unknown */
    uint32_t fps_den;
    uint32_t sample_rate; /* audio; 0 for video */
    uint32_t channels;    /* audio; 0 for video */
    uint32_t bitrate;     /* hint; 0 if unset */
    uint32_t reserved;    /* 0 */
    const uint8_t *codec_data; /* codec configuration (avcC, OpusHead...);
                                  borrowed for the call; NULL iff
                                  codec_data_len is 0 */
    size_t codec_data_len;
};

/** Timing and flags of a queued buffer (struct v4l2_buffer). */
struct mediaredir_buffer_info {
    uint32_t bytes_used; /* payload bytes at the start of the buffer */
    uint32_t flags;      /* MEDIAREDIR_FLAG_* */
    uint64_t pts;        /* presentation time, or MEDIAREDIR_TIME_NONE */
    uint64_t dts;        /* decoding time, or MEDIAREDIR_TIME_NONE */
    uint64_t duration;   /* or MEDIAREDIR_TIME_NONE */
};

/** A rectangle in display pixels. */
struct mediaredir_rect {
    int32_t x;
    int32_t y;
    uint32_t width;
    uint32_t height;
};

/** Where the client shows a presentation's video (V4L2 selection). */
struct mediaredir_geometry {
    uint32_t display_id;          /* guest display index */
    uint32_t visible;             /* 1: shown, 0: hidden */
    int32_t z;                    /* stacking order */
    uint32_t reserved;            /* 0 */
    struct mediaredir_rect dest;  /* destination on the display */
    struct mediaredir_rect source; /* part of the picture; all 0: whole */
    const struct mediaredir_rect *clip; /* visible parts of dest; borrowed
                                           for the call; NULL iff
                                           num_clip is 0 (all of dest) */
    size_t num_clip;              /* at most MEDIAREDIR_MAX_CLIP_RECTS */
};

/** Where playback is. */
struct mediaredir_position {
    uint64_t position_ns; /* stream time being shown */
    uint64_t buffered_ns; /* media buffered at the client */
    uint32_t state;       /* MEDIAREDIR_STATE_* */
    uint32_t reserved;
};

/**
 * An event (struct v4l2_event), as the device sends it.
 *
 * kind                  id            status   values
 * CLIENT_CONNECTED      0             -        [0] client features
 * CLIENT_DISCONNECTED   0             -        -
 * EOS                   stream        -        -
 * POSITION              presentation  -        [0] position_ns,
 *                                              [1] buffered_ns
 * STREAM_ERROR          stream        why      -
 * QOS                   stream        -        [0] rendered, [1] dropped,
 *                                              [2] jitter_ns (int64_t)
 * STATE_CHANGED         presentation  -        [0] MEDIAREDIR_STATE_*
 * KEYFRAME_NEEDED       stream        -        -
 * EVENTS_LOST           0             -        [0] how many
 * DEVICE_STARTED        0             -        - (mediaredir_hello()
 *                                              gives the generation)
 * CALL_STATS            session       -        [0] jitter_us,
 *                       [1] packets_lost, [2] rtt_us, [3] mos_x100,
 *                       [4] packets_received
 * CALL_ENDED            session       why      -
 * CALL_DTMF             session       -        [0] RFC 4733 event
 */
struct mediaredir_event {
    uint32_t kind;       /* MEDIAREDIR_EVENT_* */
    uint32_t id;         /* presentation, stream or session; 0 if none */
    uint32_t reserved;   /* 0 */
    uint32_t status;     /* MEDIAREDIR_STATUS_* (errors), else 0 */
    uint64_t values[6];
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
/* The Rust side asserts the same sizes. */
_Static_assert(sizeof(struct mediaredir_event) == 64, "event layout");
_Static_assert(sizeof(struct mediaredir_buffer_info) == 32, "buffer info");
_Static_assert(sizeof(struct mediaredir_codec_cap) == 16, "codec cap");
_Static_assert(sizeof(struct mediaredir_caps) == 16, "caps");
_Static_assert(sizeof(struct mediaredir_rect) == 16, "rect");
_Static_assert(sizeof(struct mediaredir_position) == 24, "position");
#endif

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

/**
 * Connects to the broker at socket_path (NULL: MEDIAREDIR_DEFAULT_SOCKET)
 * and says HELLO. V4L2: open().
 *
 * On success *out is a new handle owned by the caller, to be freed with
 * mediaredir_close(); on failure *out is set to NULL. Errors: -EINVAL (out
 * NULL), the socket's -errno (-ENOENT: no broker there, -ECONNREFUSED,
 * -EACCES), -ETIMEDOUT, or a status the broker answered HELLO with.
 * Blocking mode, 10 s timeout.
 */
int mediaredir_open(const char *socket_path, struct mediaredir **out);

/**
 * Closes the connection and frees the handle (NULL: nothing). The broker
 * destroys the handle's presentations and streams; buffer pointers from
 * mediaredir_buffer() become invalid. V4L2: close().
 */
void mediaredir_close(struct mediaredir *m);

/**
 * The socket's file descriptor, for poll()/epoll (POLLIN: a reply,
 * completed buffer or event waits), or -EINVAL for NULL. Owned by the
 * handle: do not read, write or close it. After poll() reports it
 * readable, dequeue (buffers, events) until -EAGAIN, as with
 * edge-triggered epoll: completions are read into internal queues.
 */
int mediaredir_fd(const struct mediaredir *m);

/**
 * Non-blocking mode (nonblocking != 0): mediaredir_dequeue_buffer() and
 * mediaredir_dequeue_event() return -EAGAIN instead of waiting. Control
 * calls always wait for their answer. V4L2: O_NONBLOCK.
 */
int mediaredir_set_nonblocking(struct mediaredir *m, int nonblocking);

/**
 * Longest wait for an answer and, in blocking mode, for a buffer or an
 * event (default 10000 ms; 0 is taken as 1 ms).
 */
int mediaredir_set_timeout(struct mediaredir *m, uint32_t timeout_ms);

/**
 * Says HELLO again, needed after the device restarted (calls fail with
 * MEDIAREDIR_STATUS_STALE); *generation (may be NULL) is the new device
 * generation.
 */
int mediaredir_hello(struct mediaredir *m, uint32_t *generation);

/**
 * The message of the last failed call on m ("" if none; "invalid handle"
 * for NULL). Owned by the handle, valid until the next call on it.
 */
const char *mediaredir_last_error(const struct mediaredir *m);

/**
 * A static, NUL-terminated description of a return value of this API
 * (0, -errno or MEDIAREDIR_STATUS_*); never NULL. V4L2: strerror().
 */
const char *mediaredir_strerror(int error);

/* ------------------------------------------------------------------ */
/* Capabilities and formats                                            */
/* ------------------------------------------------------------------ */

/**
 * The device and what the connected client decodes. V4L2:
 * VIDIOC_QUERYCAP + VIDIOC_ENUM_FMT.
 *
 * Fills *caps; writes min(caps->num_codecs, max_codecs) entries to codecs
 * (which may be NULL when max_codecs is 0). Without a client,
 * client_connected and num_codecs are 0 (not an error): poll this or wait
 * for MEDIAREDIR_EVENT_CLIENT_CONNECTED.
 */
int mediaredir_query_caps(struct mediaredir *m, struct mediaredir_caps *caps,
                          struct mediaredir_codec_cap *codecs,
                          size_t max_codecs);

/**
 * Whether a stream of *format would be accepted: 0, or
 * MEDIAREDIR_STATUS_UNSUPPORTED (the client cannot decode it),
 * MEDIAREDIR_STATUS_NO_CLIENT, MEDIAREDIR_STATUS_INVALID. -EINVAL for an
 * unknown codec or direction. V4L2: VIDIOC_TRY_FMT.
 */
int mediaredir_try_format(struct mediaredir *m,
                          const struct mediaredir_stream_format *format);

/* ------------------------------------------------------------------ */
/* Presentations and streams                                           */
/* ------------------------------------------------------------------ */

/**
 * Creates a presentation: one clock for its streams (audio and video of
 * one file). live != 0: a live source, no preroll. *presentation is its
 * id. No V4L2 equivalent (a media-controller pipeline).
 */
int mediaredir_create_presentation(struct mediaredir *m, int live,
                                   uint32_t *presentation);

/**
 * Destroys a presentation and its streams; their queued buffers complete
 * with MEDIAREDIR_STATUS_CANCELLED and can still be dequeued.
 */
int mediaredir_destroy_presentation(struct mediaredir *m,
                                    uint32_t presentation);

/**
 * Creates a stream of *format in a presentation; *stream is its id.
 * format->codec_data is copied. V4L2: VIDIOC_S_FMT.
 */
int mediaredir_create_stream(struct mediaredir *m, uint32_t presentation,
                             const struct mediaredir_stream_format *format,
                             uint32_t *stream);

/**
 * Destroys a stream; waits until its queued buffers come back
 * (cancelled), then frees them.
 */
int mediaredir_destroy_stream(struct mediaredir *m, uint32_t stream);

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

/**
 * count buffers of at least size bytes each for a stream, in shared
 * memory of the broker mapped into this process (no copy anywhere in the
 * guest). *count_out (may be NULL) is the number given, *size_out (may be
 * NULL) the size of each (size rounded up to 64 bytes). All buffers start
 * held by the caller, indices 0 .. count-1. count 0 frees the buffers;
 * calling it again replaces them; both need every buffer dequeued
 * (-EINVAL otherwise). V4L2: VIDIOC_REQBUFS + mmap().
 */
int mediaredir_request_buffers(struct mediaredir *m, uint32_t stream,
                               uint32_t count, size_t size,
                               uint32_t *count_out, size_t *size_out);

/**
 * The memory of buffer index of a stream, to fill in place: *data and
 * *size. Only a buffer the caller holds (never queued, or dequeued):
 * -EINVAL otherwise. The memory belongs to the handle; the pointer is
 * valid until the buffer is queued, the buffers are requested again, the
 * stream or its presentation is destroyed, or the handle is closed.
 * V4L2: the mmap()ed plane of VIDIOC_QUERYBUF.
 */
int mediaredir_buffer(struct mediaredir *m, uint32_t stream, uint32_t index,
                      uint8_t **data, size_t *size);

/**
 * Hands buffer index (its first info->bytes_used bytes) to the device;
 * the caller must not touch it until it is dequeued. An empty buffer with
 * MEDIAREDIR_FLAG_EOS ends the stream (MEDIAREDIR_EVENT_EOS follows once
 * played). -EINVAL: an index the caller does not hold, or bytes_used
 * larger than the buffer. V4L2: VIDIOC_QBUF.
 */
int mediaredir_queue_buffer(struct mediaredir *m, uint32_t stream,
                            uint32_t index,
                            const struct mediaredir_buffer_info *info);

/**
 * mediaredir_queue_buffer() for an audio buffer whose decoded output the
 * client clips: clip_start samples (per channel) are dropped at its start
 * and clip_end at its end (encoder delay, Opus pre-skip, end padding).
 * Ignored (played whole) by a device without clipping support.
 */
int mediaredir_queue_buffer_clipped(struct mediaredir *m, uint32_t stream,
                                    uint32_t index,
                                    const struct mediaredir_buffer_info *info,
                                    uint32_t clip_start, uint32_t clip_end);

/**
 * The next buffer of a stream the device gave back: *index, and *status
 * (may be NULL): MEDIAREDIR_STATUS_OK when consumed, _CANCELLED when
 * flushed, _DROPPED, _STALE after a device restart, or an error. The
 * caller holds it again. -EAGAIN in non-blocking mode when none is back
 * yet; -ETIMEDOUT in blocking mode; -EINVAL when none is queued.
 * V4L2: VIDIOC_DQBUF.
 */
int mediaredir_dequeue_buffer(struct mediaredir *m, uint32_t stream,
                              uint32_t *index, uint32_t *status);

/* ------------------------------------------------------------------ */
/* Playback control                                                    */
/* ------------------------------------------------------------------ */

/** Plays a presentation. V4L2: VIDIOC_STREAMON. */
int mediaredir_play(struct mediaredir *m, uint32_t presentation);

/** Pauses a presentation (buffers stay queued). V4L2: VIDIOC_DECODER_CMD
 * (V4L2_DEC_CMD_PAUSE). */
int mediaredir_pause(struct mediaredir *m, uint32_t presentation);

/**
 * Flushes a presentation for a seek: queued buffers come back
 * MEDIAREDIR_STATUS_CANCELLED; the next buffers start at position_ns.
 * V4L2: VIDIOC_STREAMOFF + VIDIOC_STREAMON.
 */
int mediaredir_seek(struct mediaredir *m, uint32_t presentation,
                    uint64_t position_ns);

/** Pauses and flushes (seek to 0). V4L2: VIDIOC_STREAMOFF. */
int mediaredir_stream_off(struct mediaredir *m, uint32_t presentation);

/** Playback rate, 1.0 normal (0.125 .. 8 accepted by the device; -EINVAL
 * when not finite or not positive). No V4L2 equivalent. */
int mediaredir_set_rate(struct mediaredir *m, uint32_t presentation,
                        double rate);

/** Volume of an audio stream (1.0: unity gain, at most 4.0) and mute.
 * V4L2: VIDIOC_S_CTRL (V4L2_CID_AUDIO_VOLUME, V4L2_CID_AUDIO_MUTE). */
int mediaredir_set_volume(struct mediaredir *m, uint32_t stream,
                          double volume, int mute);

/** Where and whether the client shows a presentation's video; the
 * clip array is copied. V4L2: VIDIOC_S_SELECTION. */
int mediaredir_set_geometry(struct mediaredir *m, uint32_t presentation,
                            const struct mediaredir_geometry *geometry);

/** Where playback of a presentation is. V4L2: VIDIOC_G_CTRL-style
 * query (no exact equivalent). */
int mediaredir_query_position(struct mediaredir *m, uint32_t presentation,
                              struct mediaredir_position *position);

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/**
 * The next event of the handle's objects, or a broadcast one (client
 * connected/gone, events lost, device started), into *event. -EAGAIN in
 * non-blocking mode when none waits; -ETIMEDOUT in blocking mode.
 * V4L2: VIDIOC_DQEVENT.
 */
int mediaredir_dequeue_event(struct mediaredir *m,
                             struct mediaredir_event *event);

/**
 * Like mediaredir_dequeue_event(), waiting up to timeout_ms whatever the
 * blocking mode: -ETIMEDOUT when none came. V4L2: poll() + VIDIOC_DQEVENT.
 */
int mediaredir_wait_event(struct mediaredir *m, uint32_t timeout_ms,
                          struct mediaredir_event *event);

#ifdef __cplusplus
}
#endif

#endif /* MEDIAREDIR_H */
