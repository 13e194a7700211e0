// Whisper tiny.en (Q8_0) on the GPU: one stream's decode latency by audio window, then many streams at once
// (one decoder state per thread), as Candor's pool would run them.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "whisper.h"

static float *pcm; static int n_pcm; static struct whisper_context *ctx;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static struct whisper_full_params params(int audio_ctx) {
    struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.n_threads = 1; p.language = "en"; p.no_context = true; p.print_progress = false; p.print_realtime = false;
    p.print_special = false; p.print_timestamps = false; p.token_timestamps = true; p.audio_ctx = audio_ctx;
    p.temperature_inc = 0.0f;
    return p;
}

static int ctx_for(int n) { int f = (int)((n / 16000.0 + 1.0) * 50.0); f = (f + 63) / 64 * 64; return f < 384 ? 384 : (f > 1500 ? 1500 : f); }

static double decode(struct whisper_state *st, int n, char *text, int cap) {
    double t = now();
    if (whisper_full_with_state(ctx, st, params(ctx_for(n)), pcm, n) != 0) { fprintf(stderr, "decode failed\n"); exit(1); }
    double ms = (now() - t) * 1000.0;
    if (text) { text[0] = 0; for (int i = 0; i < whisper_full_n_segments_from_state(st); i++) strncat(text, whisper_full_get_segment_text_from_state(st, i), cap - strlen(text) - 1); }
    return ms;
}

struct job { int decodes; int n; double total_ms; };
static void *worker(void *arg) {
    struct job *j = arg; struct whisper_state *st = whisper_init_state(ctx);
    decode(st, j->n, NULL, 0);
    for (int i = 0; i < j->decodes; i++) j->total_ms += decode(st, j->n, NULL, 0);
    whisper_free_state(st); return NULL;
}

int main(int argc, char **argv) {
    int use_gpu = argc > 3 ? atoi(argv[3]) : 1;
    FILE *f = fopen(argv[2], "rb"); fseek(f, 0, SEEK_END); n_pcm = ftell(f) / 4; rewind(f);
    pcm = malloc(n_pcm * 4); if (fread(pcm, 4, n_pcm, f) != (size_t)n_pcm) return 1; fclose(f);
    struct whisper_context_params cp = whisper_context_default_params(); cp.use_gpu = use_gpu; cp.flash_attn = use_gpu;
    double t0 = now(); ctx = whisper_init_from_file_with_params(argv[1], cp); if (!ctx) return 1;
    printf("model loaded in %.0f ms, gpu=%d\n", (now() - t0) * 1000.0, use_gpu);
    struct whisper_state *st = whisper_init_state(ctx); char text[4096];
    int windows[] = {2, 4, 8, 11};
    for (int w = 0; w < 4; w++) {
        int n = windows[w] * 16000 < n_pcm ? windows[w] * 16000 : n_pcm; double sum = 0;
        decode(st, n, text, sizeof text);
        for (int i = 0; i < 10; i++) sum += decode(st, n, NULL, 0);
        printf("one stream, %2d s of audio (ctx %d): %.1f ms per decode | %s\n", windows[w], ctx_for(n), sum / 10, text);
    }
    whisper_free_state(st);
    int threads[] = {1, 4, 8, 16, 32, 64};
    for (int k = 0; k < (use_gpu ? 6 : 2); k++) {
        int T = threads[k]; pthread_t th[64]; struct job jobs[64]; int decodes = use_gpu ? 8 : 2;
        double t = now();
        for (int i = 0; i < T; i++) { jobs[i] = (struct job){decodes, n_pcm, 0}; pthread_create(&th[i], NULL, worker, &jobs[i]); }
        double lat = 0; for (int i = 0; i < T; i++) { pthread_join(th[i], NULL); lat += jobs[i].total_ms; }
        double wall = now() - t;
        printf("%2d streams at once, 11 s finals: %.1f decodes/s (%.0f audio-seconds/s), mean latency %.0f ms\n",
               T, T * decodes / wall, T * decodes * 11.0 / wall, lat / (T * decodes));
    }
    return 0;
}
