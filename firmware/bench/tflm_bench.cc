// tflm_bench.cc -- the TFLM interpreter on the same models as our kernels, on one Cortex-M4F under QEMU.
//
//   tflm_bench MODEL.tflite INPUTS      INPUTS: N x input_bytes int8
//
// Links libtensorflow-microlite.a built by TFLM's own Makefile with its reference kernels or with its
// CMSIS-NN kernels (firmware/bench.mk); the same source and harness for both. Prints
//   "calibration instructions I ticks T", "arena_used A", then "invoke <i> ticks <t> crc <c>" per input
//   (SysTick under -icount shift=0 around Invoke(); crc: FNV-1a of the output bytes), then "ok N".
// Built by firmware/bench.mk from ../shared/vendor (never copied into the repository).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" {
#include "qemu/nn_qemu.h"
}

namespace {

constexpr size_t kMaxModel = 512 * 1024;
constexpr size_t kArena = 192 * 1024;
alignas(16) uint8_t g_model[kMaxModel];
alignas(16) uint8_t g_arena[kArena];

long ReadFile(const char* path, uint8_t* buf, size_t cap) {
  FILE* f = fopen(path, "rb");
  if (!f) return -1;
  size_t n = 0, got;
  while (n < cap && (got = fread(buf + n, 1, cap - n, f)) > 0) n += got;
  fclose(f);
  return static_cast<long>(n);
}

}  // namespace

// No C++ runtime start files under the bare-metal harness (-nostartfiles): run the static constructors here,
// and define what crtbegin / crti would (nothing is ever unloaded or finalized: exit() ends the emulator).
extern "C" {
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);
void* __dso_handle = nullptr;
void _fini(void) {}
}

int main(int argc, char** argv) {
  for (void (**f)(void) = __init_array_start; f != __init_array_end; ++f) (*f)();
  if (argc != 3) {
    printf("error usage: tflm_bench MODEL INPUTS\n");
    return 2;
  }
  if (ReadFile(argv[1], g_model, sizeof g_model) <= 0) {
    printf("error cannot read %s\n", argv[1]);
    return 2;
  }
  const tflite::Model* model = tflite::GetModel(g_model);
  static tflite::MicroMutableOpResolver<16> resolver;
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddFullyConnected();
  resolver.AddAveragePool2D();
  resolver.AddMaxPool2D();
  resolver.AddMean();
  resolver.AddAdd();
  resolver.AddLeakyRelu();
  resolver.AddQuantize();
  resolver.AddDequantize();
  resolver.AddReshape();
  resolver.AddExpandDims();
  resolver.AddSqueeze();
  resolver.AddRelu();
  resolver.AddRelu6();
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArena);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("error AllocateTensors failed\n");
    return 2;
  }
  TfLiteTensor* in = interpreter.input(0);
  TfLiteTensor* out = interpreter.output(0);
  printf("calibration instructions %lu ticks %llu\n", 4000000ul,
         static_cast<unsigned long long>(nn_qemu_calibrate(2000000u)));
  printf("arena_used %lu\n", static_cast<unsigned long>(interpreter.arena_used_bytes()));
  FILE* fin = fopen(argv[2], "rb");
  if (!fin) {
    printf("error cannot open %s\n", argv[2]);
    return 2;
  }
  unsigned long count = 0;
  while (fread(in->data.int8, 1, in->bytes, fin) == in->bytes) {
    const uint64_t t0 = nn_qemu_ticks();
    const TfLiteStatus st = interpreter.Invoke();
    const uint64_t t1 = nn_qemu_ticks();
    if (st != kTfLiteOk) {
      printf("error Invoke failed\n");
      return 2;
    }
    uint32_t crc = 2166136261u;
    for (size_t i = 0; i < out->bytes; i++) crc = (crc ^ static_cast<uint8_t>(out->data.int8[i])) * 16777619u;
    printf("invoke %lu ticks %llu crc %08lx\n", count, static_cast<unsigned long long>(t1 - t0),
           static_cast<unsigned long>(crc));
    count++;
  }
  fclose(fin);
  printf("ok %lu\n", count);
  return 0;
}
