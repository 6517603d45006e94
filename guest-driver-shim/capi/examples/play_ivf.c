/*
 * play_ivf - a small C player on libmediaredir: plays a VP8 or VP9 IVF
 * file through the media-redirection broker.
 *
 * SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
 *
 * Usage: play_ivf BROKER_SOCKET FILE.ivf
 *
 * What it shows: the V4L2-like flow of the API. Open the broker, wait for
 * a client that decodes the codec (QUERYCAP/ENUM_FMT), check the format
 * (TRY_FMT), create a presentation and a stream (S_FMT), request buffers
 * mapped into this process (REQBUFS + mmap), read each frame from the
 * file straight into a buffer (no intermediate copy), queue it (QBUF),
 * take buffers back when the device is done (DQBUF) with poll() on the
 * handle's fd, queue an empty EOS buffer and wait for the EOS event
 * (DQEVENT).
 *
 * On success it prints one line to stdout,
 *   play_ivf: ok frames=N bytes=B eos=1
 * and exits 0; on failure it prints the reason to stderr and exits 1
 * (2 when the broker cannot be reached).
 *
 * Build: cc -std=c11 -I include examples/play_ivf.c -L target/release \
 *           -lmediaredir -o play_ivf
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mediaredir.h"

#define NUM_BUFFERS 4
#define WAIT_CLIENT_MS 5000
#define STALL_MS 10000
#define EOS_TIMEOUT_MS 20000
#define MAX_FRAME (64u << 20)

/* ---------------------------------------------------------------- IVF */

struct ivf {
    FILE *file;
    uint32_t codec;   /* MEDIAREDIR_CODEC_VP8 or _VP9 */
    uint32_t width, height;
    uint32_t rate;    /* time base denominator */
    uint32_t scale;   /* time base numerator */
    uint32_t max_frame; /* largest frame in the file */
    uint32_t frames;
    long first_frame; /* file offset of the first frame header */
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/* Reads the 32-byte file header, then scans the 12-byte frame headers
 * once for the largest frame (the buffer size to request). */
static int ivf_open(struct ivf *ivf, const char *path)
{
    uint8_t h[32];
    memset(ivf, 0, sizeof(*ivf));
    ivf->file = fopen(path, "rb");
    if (!ivf->file) {
        fprintf(stderr, "play_ivf: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fread(h, 1, sizeof(h), ivf->file) != sizeof(h) ||
        memcmp(h, "DKIF", 4) != 0 || le16(h + 6) < 32) {
        fprintf(stderr, "play_ivf: %s: not an IVF file\n", path);
        return -1;
    }
    if (memcmp(h + 8, "VP80", 4) == 0) {
        ivf->codec = MEDIAREDIR_CODEC_VP8;
    } else if (memcmp(h + 8, "VP90", 4) == 0) {
        ivf->codec = MEDIAREDIR_CODEC_VP9;
    } else {
        fprintf(stderr, "play_ivf: %s: codec %.4s is not VP8 or VP9\n", path,
                (const char *)(h + 8));
        return -1;
    }
    ivf->width = le16(h + 12);
    ivf->height = le16(h + 14);
    ivf->rate = le32(h + 16);
    ivf->scale = le32(h + 20);
    if (ivf->rate == 0 || ivf->scale == 0) {
        fprintf(stderr, "play_ivf: %s: zero time base\n", path);
        return -1;
    }
    ivf->first_frame = le16(h + 6);
    if (fseek(ivf->file, ivf->first_frame, SEEK_SET) != 0)
        return -1;
    for (;;) {
        uint8_t fh[12];
        size_t got = fread(fh, 1, sizeof(fh), ivf->file);
        if (got == 0)
            break;
        uint32_t size = le32(fh);
        if (got != sizeof(fh) || size == 0 || size > MAX_FRAME ||
            fseek(ivf->file, (long)size, SEEK_CUR) != 0) {
            fprintf(stderr, "play_ivf: %s: corrupt frame %" PRIu32 "\n", path,
                    ivf->frames);
            return -1;
        }
        if (size > ivf->max_frame)
            ivf->max_frame = size;
        ivf->frames++;
    }
    if (ivf->frames == 0) {
        fprintf(stderr, "play_ivf: %s: no frames\n", path);
        return -1;
    }
    return fseek(ivf->file, ivf->first_frame, SEEK_SET);
}

/* Ticks of the IVF time base to nanoseconds (no 64-bit overflow for any
 * realistic pts). */
static uint64_t ivf_ns(const struct ivf *ivf, uint64_t ticks)
{
    uint64_t q = ticks * ivf->scale;
    return q / ivf->rate * 1000000000u + q % ivf->rate * 1000000000u / ivf->rate;
}

/* VP8: bit 0 of the frame tag is 0 on key frames. VP9: frame_marker(2),
 * profile(2, +1 reserved bit for profile 3), show_existing_frame,
 * frame_type (0 = key). */
static int is_keyframe(uint32_t codec, const uint8_t *frame)
{
    uint8_t b = frame[0];
    if (codec == MEDIAREDIR_CODEC_VP8)
        return (b & 1) == 0;
    if ((b >> 6) != 2)
        return 0;
    int profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
    int bit = profile == 3 ? 5 : 4;
    if ((b >> (7 - bit)) & 1)
        return 0; /* show_existing_frame */
    bit++;
    return ((b >> (7 - bit)) & 1) == 0;
}

/* ------------------------------------------------------------ player */

struct player {
    struct mediaredir *m;
    uint32_t presentation;
    int have_presentation;
    uint32_t stream;
    uint32_t free[NUM_BUFFERS]; /* buffer indices this process holds */
    uint32_t num_free;
    int eos;          /* MEDIAREDIR_EVENT_EOS seen */
    int failed;       /* a stream error or failed buffer */
    uint64_t not_ok;  /* buffers back with a status other than OK */
};

static int fail(struct player *p, const char *what, int err)
{
    fprintf(stderr, "play_ivf: %s: %s (%d): %s\n", what,
            mediaredir_strerror(err), err, mediaredir_last_error(p->m));
    return -1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes every completed buffer and every event the handle has now
 * (non-blocking mode: each call returns -EAGAIN when nothing waits).
 * Returns how many it took, or -1. */
static int drain(struct player *p)
{
    int taken = 0;
    for (;;) {
        uint32_t index, status;
        int r = mediaredir_dequeue_buffer(p->m, p->stream, &index, &status);
        if (r == -EAGAIN || r == -EINVAL) /* none back / none queued */
            break;
        if (r != 0)
            return fail(p, "dequeue_buffer", r);
        if (status != MEDIAREDIR_STATUS_OK)
            p->not_ok++;
        p->free[p->num_free++] = index;
        taken++;
    }
    for (;;) {
        struct mediaredir_event ev;
        int r = mediaredir_dequeue_event(p->m, &ev);
        if (r == -EAGAIN)
            break;
        if (r != 0)
            return fail(p, "dequeue_event", r);
        taken++;
        if (ev.kind == MEDIAREDIR_EVENT_EOS && ev.id == p->stream) {
            p->eos = 1;
        } else if (ev.kind == MEDIAREDIR_EVENT_STREAM_ERROR &&
                   ev.id == p->stream) {
            fprintf(stderr, "play_ivf: stream error: %s\n",
                    mediaredir_strerror((int)ev.status));
            p->failed = 1;
        } else if (ev.kind == MEDIAREDIR_EVENT_CLIENT_DISCONNECTED) {
            fprintf(stderr, "play_ivf: the client went away\n");
            p->failed = 1;
        }
    }
    return taken;
}

/* Drains; if nothing was there, waits up to timeout_ms for the fd to
 * become readable and drains again. Returns what drain() returns. */
static int service(struct player *p, int timeout_ms)
{
    int taken = drain(p);
    if (taken != 0)
        return taken;
    struct pollfd pfd = {.fd = mediaredir_fd(p->m), .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
        perror("play_ivf: poll");
        return -1;
    }
    return drain(p);
}

/* A buffer this process holds, waiting for the device to give one back. */
static int get_buffer(struct player *p, uint32_t *index)
{
    long long deadline = now_ms() + STALL_MS;
    while (p->num_free == 0) {
        if (p->failed || now_ms() >= deadline) {
            fprintf(stderr, "play_ivf: no buffer came back\n");
            return -1;
        }
        if (service(p, 100) < 0)
            return -1;
    }
    *index = p->free[--p->num_free];
    return 0;
}

static int wait_for_client(struct player *p, uint32_t codec)
{
    long long deadline = now_ms() + WAIT_CLIENT_MS;
    for (;;) {
        struct mediaredir_caps caps;
        struct mediaredir_codec_cap codecs[64];
        int r = mediaredir_query_caps(p->m, &caps, codecs, 64);
        if (r != 0)
            return fail(p, "query_caps", r);
        if (caps.client_connected) {
            uint32_t n = caps.num_codecs < 64 ? caps.num_codecs : 64;
            for (uint32_t i = 0; i < n; i++)
                if (codecs[i].codec == codec &&
                    (codecs[i].flags & MEDIAREDIR_CODEC_FLAG_DECODE))
                    return 0;
            fprintf(stderr, "play_ivf: the client does not decode codec %#x "
                            "(%" PRIu32 " codecs)\n", codec, caps.num_codecs);
            return -1;
        }
        if (now_ms() >= deadline) {
            fprintf(stderr, "play_ivf: no client connected\n");
            return -1;
        }
        struct mediaredir_event ev;
        /* A CLIENT_CONNECTED event ends the wait early. */
        r = mediaredir_wait_event(p->m, 50, &ev);
        if (r != 0 && r != -ETIMEDOUT)
            return fail(p, "wait_event", r);
    }
}

static int play(struct player *p, struct ivf *ivf, uint64_t *bytes)
{
    int r;
    if (wait_for_client(p, ivf->codec) != 0)
        return -1;

    struct mediaredir_stream_format fmt = {
        .codec = ivf->codec,
        .direction = MEDIAREDIR_DIRECTION_PLAYBACK,
        .txq = 0,
        .width = ivf->width,
        .height = ivf->height,
        .fps_num = ivf->rate,
        .fps_den = ivf->scale,
        .codec_data = NULL, /* VP8/VP9 have none */
        .codec_data_len = 0,
    };
    if ((r = mediaredir_try_format(p->m, &fmt)) != 0)
        return fail(p, "try_format", r);
    if ((r = mediaredir_create_presentation(p->m, 0, &p->presentation)) != 0)
        return fail(p, "create_presentation", r);
    p->have_presentation = 1;
    if ((r = mediaredir_create_stream(p->m, p->presentation, &fmt,
                                      &p->stream)) != 0)
        return fail(p, "create_stream", r);
    uint32_t count;
    size_t size;
    if ((r = mediaredir_request_buffers(p->m, p->stream, NUM_BUFFERS,
                                        ivf->max_frame, &count, &size)) != 0)
        return fail(p, "request_buffers", r);
    if (count == 0 || count > NUM_BUFFERS || size < ivf->max_frame) {
        fprintf(stderr, "play_ivf: got %" PRIu32 " buffers of %zu bytes\n",
                count, size);
        return -1;
    }
    for (uint32_t i = 0; i < count; i++)
        p->free[p->num_free++] = count - 1 - i;
    if ((r = mediaredir_play(p->m, p->presentation)) != 0)
        return fail(p, "play", r);
    if ((r = mediaredir_set_nonblocking(p->m, 1)) != 0)
        return fail(p, "set_nonblocking", r);

    uint64_t duration = ivf_ns(ivf, 1);
    for (uint32_t n = 0; n < ivf->frames; n++) {
        uint8_t fh[12];
        uint32_t index;
        uint8_t *data;
        size_t cap;
        if (fread(fh, 1, sizeof(fh), ivf->file) != sizeof(fh)) {
            fprintf(stderr, "play_ivf: short read\n");
            return -1;
        }
        uint32_t len = le32(fh);
        uint64_t pts = ivf_ns(ivf, le64(fh + 4));
        if (get_buffer(p, &index) != 0)
            return -1;
        if ((r = mediaredir_buffer(p->m, p->stream, index, &data, &cap)) != 0)
            return fail(p, "buffer", r);
        if (len > cap) {
            fprintf(stderr, "play_ivf: frame of %" PRIu32 " bytes > %zu\n",
                    len, cap);
            return -1;
        }
        /* In place: the file is read straight into the shared buffer. */
        if (fread(data, 1, len, ivf->file) != len) {
            fprintf(stderr, "play_ivf: short read\n");
            return -1;
        }
        struct mediaredir_buffer_info info = {
            .bytes_used = len,
            .flags = is_keyframe(ivf->codec, data) ? MEDIAREDIR_FLAG_KEYFRAME
                                                   : 0,
            .pts = pts,
            .dts = pts,
            .duration = duration,
        };
        if ((r = mediaredir_queue_buffer(p->m, p->stream, index, &info)) != 0)
            return fail(p, "queue_buffer", r);
        *bytes += len;
    }

    /* End of stream: an empty buffer with the EOS flag. */
    uint32_t index;
    if (get_buffer(p, &index) != 0)
        return -1;
    struct mediaredir_buffer_info eos = {
        .bytes_used = 0,
        .flags = MEDIAREDIR_FLAG_EOS,
        .pts = MEDIAREDIR_TIME_NONE,
        .dts = MEDIAREDIR_TIME_NONE,
        .duration = MEDIAREDIR_TIME_NONE,
    };
    if ((r = mediaredir_queue_buffer(p->m, p->stream, index, &eos)) != 0)
        return fail(p, "queue_buffer (EOS)", r);

    long long deadline = now_ms() + EOS_TIMEOUT_MS;
    while (!p->eos) {
        if (p->failed || now_ms() >= deadline) {
            fprintf(stderr, "play_ivf: no EOS event\n");
            return -1;
        }
        if (service(p, 100) < 0)
            return -1;
    }
    if (p->not_ok != 0) {
        fprintf(stderr, "play_ivf: %" PRIu64 " buffers not consumed\n",
                p->not_ok);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s BROKER_SOCKET FILE.ivf\n", argv[0]);
        return 1;
    }
    struct player p = {0};
    int r = mediaredir_open(argv[1], &p.m);
    if (r != 0) {
        fprintf(stderr, "play_ivf: cannot open %s: %s (%d)\n", argv[1],
                mediaredir_strerror(r), r);
        return 2;
    }
    struct ivf ivf;
    uint64_t bytes = 0;
    int ok = ivf_open(&ivf, argv[2]) == 0 && play(&p, &ivf, &bytes) == 0;
    if (p.have_presentation) {
        /* Blocking again for the teardown; its buffers come back
         * cancelled if any are still queued. */
        mediaredir_set_nonblocking(p.m, 0);
        r = mediaredir_destroy_presentation(p.m, p.presentation);
        if (r != 0 && ok) {
            fail(&p, "destroy_presentation", r);
            ok = 0;
        }
    }
    mediaredir_close(p.m);
    if (ivf.file)
        fclose(ivf.file);
    if (!ok)
        return 1;
    printf("play_ivf: ok frames=%" PRIu32 " bytes=%" PRIu64 " eos=%d\n",
           ivf.frames, bytes, p.eos);
    return 0;
}
