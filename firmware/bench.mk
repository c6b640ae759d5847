# bench.mk -- side-by-side benchmark programs against the reference implementations in ../shared/vendor.
#
#   nn-cmsis-bench   build/bench/nn_cmsis_bench.elf   our kernels and CMSIS-NN's, op by op, in QEMU (mps2-an386)
#
# Standalone (make -C firmware -f bench.mk nn-cmsis-bench); `dysan bench-firmware` runs it. The vendor tarball
# is unpacked into build/vendor (git-ignored) -- never into the repository. CMSIS-NN's C sources are compiled
# directly, at TFLM's third-party kernel level (-O2), like our kernels. Without the vendor folder the target
# stops with one clear line.

BENCH_VENDOR_TAR ?= ../../shared/vendor/tflm/tflm-cmsis-nn.tar.xz
BENCH_VENDOR     := build/vendor
CMSIS_NN         := $(BENCH_VENDOR)/cmsis_nn
BENCH_CC         ?= arm-none-eabi-gcc
BENCH_ARCH       := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
BENCH_CFLAGS     ?= -O2 -g -ffunction-sections -fdata-sections
BENCH_NN_DIR     := core/nn
BENCH_NN_SRCS    := $(sort $(wildcard $(BENCH_NN_DIR)/*.c))
BENCH_NN_HDRS    := $(sort $(wildcard $(BENCH_NN_DIR)/*.h)) core/include/dysan_le.h
BENCH_LDFLAGS    := $(BENCH_ARCH) --specs=rdimon.specs -nostartfiles -T tests/qemu/nn_qemu.ld -Wl,--gc-sections
# The kernel families TFLM's cmsis_nn kernels call for our op kinds (float variants left out).
CMSIS_NN_DIRS    := ConvolutionFunctions FullyConnectedFunctions PoolingFunctions BasicMathFunctions \
                    NNSupportFunctions
BENCH_OBJ        := build/bench/cmsis_nn

.PHONY: nn-cmsis-bench bench-vendor bench-clean

nn-cmsis-bench: build/bench/nn_cmsis_bench.elf

$(CMSIS_NN)/Include/arm_nnfunctions.h:
	@test -f $(BENCH_VENDOR_TAR) || { echo "bench: $(BENCH_VENDOR_TAR) not found (../shared/vendor is absent): CMSIS-NN comparison skipped" >&2; exit 3; }
	@mkdir -p build
	tar -xJf $(BENCH_VENDOR_TAR) -C build
	@touch $@

bench-vendor: $(CMSIS_NN)/Include/arm_nnfunctions.h

# CMSIS-NN as one static library (the sources are listed after the unpack, by a recursive make).
build/bench/libcmsis-nn.a: $(CMSIS_NN)/Include/arm_nnfunctions.h bench.mk
	@mkdir -p $(BENCH_OBJ)
	$(MAKE) -s -f bench.mk bench-cmsis-objs
	rm -f $@ && arm-none-eabi-ar rcs $@ $(BENCH_OBJ)/*.o

CMSIS_NN_SRCS := $(filter-out %_f16.c %_f32.c,$(foreach d,$(CMSIS_NN_DIRS),$(wildcard $(CMSIS_NN)/Source/$(d)/*.c)))
CMSIS_NN_OBJS := $(patsubst %.c,$(BENCH_OBJ)/%.o,$(notdir $(CMSIS_NN_SRCS)))
vpath %.c $(foreach d,$(CMSIS_NN_DIRS),$(CMSIS_NN)/Source/$(d))

.PHONY: bench-cmsis-objs
bench-cmsis-objs: $(CMSIS_NN_OBJS)

$(BENCH_OBJ)/%.o: %.c
	$(BENCH_CC) $(BENCH_ARCH) $(BENCH_CFLAGS) -I$(CMSIS_NN)/Include -c $< -o $@

build/bench/nn_cmsis_bench.elf: bench/nn_cmsis_bench.c build/bench/libcmsis-nn.a $(BENCH_NN_SRCS) $(BENCH_NN_HDRS) \
                                tests/qemu/startup.c tests/qemu/nn_qemu.h bench.mk
	$(BENCH_CC) -std=c11 -Wall -Wextra -Werror $(BENCH_ARCH) $(BENCH_CFLAGS) -I$(BENCH_NN_DIR) -Icore/include \
	  -Itests -isystem $(CMSIS_NN)/Include bench/nn_cmsis_bench.c $(BENCH_NN_SRCS) tests/qemu/startup.c \
	  build/bench/libcmsis-nn.a $(BENCH_LDFLAGS) -o $@
	arm-none-eabi-size $@

bench-clean:
	rm -rf build/bench

# ---- TFLM's interpreter (reference kernels and CMSIS-NN kernels) ------------------------------------------
# The libraries are built by `python -m dysan.bench.tflm build` (dysan bench-firmware starts it in the
# background): the compile commands TFLM's own Makefile runs for `microlite` (read with make -n), limited to
# the interpreter core and the kernels of the device family's ops, archived per variant under
# build/tflm/<tarball hash>/<variant>/libtensorflow-microlite.a.
TFLM_SRC   := $(BENCH_VENDOR)/tflite-micro
TFLM_HASH  := $(shell test -f $(BENCH_VENDOR_TAR) && sha256sum $(BENCH_VENDOR_TAR) | cut -c1-12)
TFLM_CACHE := $(abspath build/tflm/$(TFLM_HASH))

# The TFLM bench program against each library (the harness's linker script plus C++ static constructors).
TFLM_INC := -I$(TFLM_SRC) -I$(TFLM_SRC)/tensorflow/lite/micro/tools/make/downloads \
            -I$(TFLM_SRC)/tensorflow/lite/micro/tools/make/downloads/gemmlowp \
            -I$(TFLM_SRC)/tensorflow/lite/micro/tools/make/downloads/flatbuffers/include \
            -I$(TFLM_SRC)/tensorflow/lite/micro/tools/make/downloads/ruy
TFLM_CXXFLAGS := -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics -fno-unwind-tables \
                 -ffunction-sections -fdata-sections -DTF_LITE_STATIC_MEMORY -DTF_LITE_MCU_DEBUG_LOG -DNDEBUG -O2
TFLM_LDFLAGS := $(BENCH_ARCH) --specs=rdimon.specs -nostartfiles -T build/bench/tflm_qemu.ld -Wl,--gc-sections

.PHONY: tflm-bench
tflm-bench: build/bench/tflm_bench_ref.elf build/bench/tflm_bench_cmsis_nn.elf

build/bench/tflm_qemu.ld: tests/qemu/nn_qemu.ld bench.mk
	@mkdir -p $(@D)
	sed 's|^    .ARM.exidx : .*|&\n    .init_array : ALIGN(4) { __init_array_start = .; KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*)) __init_array_end = .; } > CODE|' $< > $@

build/bench/tflm_startup.o: tests/qemu/startup.c tests/qemu/nn_qemu.h
	@mkdir -p $(@D)
	$(BENCH_CC) -std=c11 $(BENCH_ARCH) $(BENCH_CFLAGS) -c $< -o $@

build/bench/tflm_bench_%.elf: bench/tflm_bench.cc $(TFLM_CACHE)/%/libtensorflow-microlite.a build/bench/tflm_qemu.ld \
                              build/bench/tflm_startup.o
	arm-none-eabi-g++ $(TFLM_CXXFLAGS) $(BENCH_ARCH) $(TFLM_INC) -Itests $< build/bench/tflm_startup.o \
	  $(TFLM_CACHE)/$*/libtensorflow-microlite.a $(TFLM_LDFLAGS) -lm -o $@
	arm-none-eabi-size $@
