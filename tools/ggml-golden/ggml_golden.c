// Writes a golden file of llama.cpp's block formats for Pargs' tests (see regenerate.sh).
// Usage: ggml_golden <path of libggml-base.so> <output file>
//
// The file is a sequence of records: u8 name length, the name (ASCII), u32 payload length, the payload.
//   input                float32[4096]: 16 blocks of 256 values chosen to reach each quantizer's edge cases
//   <type>.quant         quantize_row_<type>_ref(input) for q8_0, q4_0, q4_K, q5_K, q6_K, q8_K
//   <type>.dequant       dequantize_row_<type>(<type>.quant), float32[4096]
//   f16.from             float32 values; f16.to: ggml_fp32_to_fp16 of each (u16)
//   f16.all              ggml_fp16_to_fp32 of every 16-bit pattern 0..65535 (float32 bit patterns)
//   bf16.from            float32 values; bf16.to: ggml_fp32_to_bf16 of each (u16)
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4096

typedef void (*quantize_fn)(const float *, void *, int64_t);
typedef void (*dequantize_fn)(const void *, float *, int64_t);

static void *lib;
static FILE *out;

static void *symbol(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) { fprintf(stderr, "missing symbol %s\n", name); exit(1); }
    return p;
}

static void record(const char *name, const void *data, uint32_t bytes) {
    uint8_t n = (uint8_t)strlen(name);
    fwrite(&n, 1, 1, out);
    fwrite(name, 1, n, out);
    fwrite(&bytes, 4, 1, out);
    fwrite(data, 1, bytes, out);
}

// xorshift64* and a Box-Muller normal: fixed inputs, any platform.
static uint64_t state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return (double)((state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static float normal(void) {
    double u = uniform(), v = uniform();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}
static float from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }

static void fill_input(float *x) {
    for (int b = 0; b < 16; b++) {
        float *y = x + 256 * b;
        for (int j = 0; j < 256; j++) {
            float v;
            switch (b) {
                case 0: v = 0.0f; break;                                         // all zero
                case 1: v = normal(); break;                                     // unit normal
                case 2: v = 0.02f * normal(); break;                             // typical weights
                case 3: v = (float)(2 * uniform() - 1); if (j == 77) v = 40.0f; break; // one outlier
                case 4: v = (j % 3 == 0) ? -0.0f : (j % 3 == 1 ? 0.0f : from_bits(1u + (uint32_t)j)); break; // ±0, float subnormals
                case 5: v = 0.5f; break;                                         // constant positive
                case 6: v = -3.0f; break;                                        // constant negative
                case 7: v = 60000.0f * (float)(2 * uniform() - 1); break;        // near the f16 maximum
                case 8: v = 1e-6f * normal(); break;                             // scales that are f16 subnormals
                case 9: v = (j / 32) % 2 ? 0.0f : normal(); break;               // zero sub-blocks among others
                case 10: v = fabsf(normal()) + 0.1f; break;                      // positive only (min > 0)
                case 11: v = -fabsf(normal()) - 0.1f; break;                     // negative only
                case 12: v = 0.25f * (float)((j % 33) - 16); break;              // rounding ties
                case 13: v = (j % 32 == 5) ? -7.0f : (float)(uniform() - 0.5); break; // negative extreme
                case 14: v = normal() * (1 << (j % 8)); break;                   // mixed magnitudes
                default: v = 1e-20f * normal(); break;                           // tiny (below f16 range)
            }
            y[j] = v;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s libggml-base.so out.bin\n", argv[0]); return 2; }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    out = fopen(argv[2], "wb");
    if (!out) { perror(argv[2]); return 1; }

    static float input[N], back[N];
    static uint8_t quant[N * 2];
    fill_input(input);
    record("input", input, sizeof input);

    struct { const char *name; int block_elements, block_bytes; } types[] = {
        {"q8_0", 32, 34}, {"q4_0", 32, 18}, {"q4_K", 256, 144}, {"q5_K", 256, 176}, {"q6_K", 256, 210}, {"q8_K", 256, 292},
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        char name[64];
        snprintf(name, sizeof name, "quantize_row_%s_ref", types[t].name);
        quantize_fn quantize = (quantize_fn)symbol(name);
        snprintf(name, sizeof name, "dequantize_row_%s", types[t].name);
        dequantize_fn dequantize = (dequantize_fn)symbol(name);
        uint32_t bytes = (uint32_t)(N / types[t].block_elements * types[t].block_bytes);
        memset(quant, 0, sizeof quant);
        quantize(input, quant, N);
        dequantize(quant, back, N);
        snprintf(name, sizeof name, "%s.quant", types[t].name);
        record(name, quant, bytes);
        snprintf(name, sizeof name, "%s.dequant", types[t].name);
        record(name, back, sizeof back);
    }

    // Conversions: special values, then random floats over many magnitudes.
    uint16_t (*fp32_to_fp16)(float) = (uint16_t (*)(float))symbol("ggml_fp32_to_fp16");
    float (*fp16_to_fp32)(uint16_t) = (float (*)(uint16_t))symbol("ggml_fp16_to_fp32");
    uint16_t (*fp32_to_bf16)(float) = (uint16_t (*)(float))symbol("ggml_fp32_to_bf16");
    uint32_t specials[] = {
        0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x477fe000 /* 65504 */, 0x477fefff, 0x477ff000 /* 65520 */,
        0x477ff001, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00001 /* signalling NaN */,
        0x7fc12345, 0x33800000 /* 2^-24 */, 0x33000000 /* 2^-25: tie to 0 */, 0x33000001, 0x33c00000 /* 1.5·2^-24 */,
        0x38800000 /* 2^-14 */, 0x387fc000, 0x00000001, 0x807fffff, 0x3f808000 /* bf16 tie, even */, 0x3f818000 /* tie, odd */,
        0x3f808001, 0x7f7f8000, 0x7f7f7fff, 0x3f801000 /* f16 tie */, 0x3f803000,
    };
    enum { S = sizeof specials / sizeof specials[0], R = 2000 };
    static float from[S + R];
    static uint16_t to[S + R];
    for (int i = 0; i < S; i++) from[i] = from_bits(specials[i]);
    for (int i = 0; i < R; i++) from[S + i] = normal() * powf(2.0f, (float)(int)(uniform() * 80 - 40));
    record("f16.from", from, sizeof from);
    for (int i = 0; i < S + R; i++) to[i] = fp32_to_fp16(from[i]);
    record("f16.to", to, sizeof to);
    static float all[65536];
    for (int h = 0; h < 65536; h++) all[h] = fp16_to_fp32((uint16_t)h);
    record("f16.all", all, sizeof all);
    record("bf16.from", from, sizeof from);
    for (int i = 0; i < S + R; i++) to[i] = fp32_to_bf16(from[i]);
    record("bf16.to", to, sizeof to);

    fclose(out);
    return 0;
}
