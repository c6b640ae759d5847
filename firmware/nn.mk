# nn.mk -- the int8 model-image interpreter (core/nn) and its test runners.
#
#   nn-host   build/nn-host/nn_runner            native runner (bit-exactness tests)
#   nn-asan   build/nn-asan/nn_runner            the same under -fsanitize=address,undefined (malformed images)
#   nn-qemu   build/nn-qemu/nn_runner.elf        Cortex-M4F runner for qemu-system-arm -M mps2-an386 (DSP path)
#             build/nn-qemu/nn_runner_portable.elf   the same with the portable kernels (-DDYSAN_NN_NO_DSP)
#
# Included by firmware/Makefile, or standalone: make -C firmware -f nn.mk nn-host. Paths are relative to
# firmware/; every variable is NN_-prefixed so the including Makefile's CC/CFLAGS do not leak in.

NN_STANDALONE := $(filter $(firstword $(MAKEFILE_LIST)),$(lastword $(MAKEFILE_LIST)))
NN_PREV_GOAL := $(.DEFAULT_GOAL)

NN_DIR     := core/nn
# every kernel file: the portable dysan_nn_<op>.c and its Cortex-M4 DSP path dysan_nn_<op>_m4.c
NN_SRCS    := $(sort $(wildcard $(NN_DIR)/*.c))
NN_HDRS    := $(sort $(wildcard $(NN_DIR)/*.h)) core/include/dysan_le.h
# core/include for dysan_le.h, the core's one little-endian reader (nothing else from there)
NN_INC     := -I$(NN_DIR) -Icore/include
NN_RUNNER  := tests/nn_runner.c
NN_MK      := $(lastword $(filter %nn.mk,$(MAKEFILE_LIST)))
NN_WARN    := -std=c11 -Wall -Wextra -Werror

NN_HOST_CC     ?= cc
NN_HOST_CFLAGS ?= -O2 -g
NN_ASAN_FLAGS  ?= -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

NN_ARM_CC      ?= arm-none-eabi-gcc
NN_ARM_SIZE    ?= arm-none-eabi-size
NN_ARM_ARCH    := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
NN_ARM_CFLAGS  ?= -O2 -g -ffunction-sections -fdata-sections
NN_QEMU_DIR    := tests/qemu
NN_QEMU_SRCS   := $(NN_QEMU_DIR)/startup.c
NN_QEMU_LD     := $(NN_QEMU_DIR)/nn_qemu.ld
NN_ARM_LDFLAGS := $(NN_ARM_ARCH) --specs=rdimon.specs -nostartfiles -T $(NN_QEMU_LD) \
                  -Wl,--gc-sections

.PHONY: nn-all nn-host nn-asan nn-qemu nn-clean

nn-all: nn-host nn-asan nn-qemu

nn-host: build/nn-host/nn_runner
nn-asan: build/nn-asan/nn_runner
nn-qemu: build/nn-qemu/nn_runner.elf build/nn-qemu/nn_runner_portable.elf

build/nn-host/nn_runner: $(NN_SRCS) $(NN_HDRS) $(NN_RUNNER) $(NN_MK)
	@mkdir -p $(@D)
	$(NN_HOST_CC) $(NN_WARN) $(NN_HOST_CFLAGS) $(NN_INC) $(NN_SRCS) $(NN_RUNNER) -o $@

build/nn-asan/nn_runner: $(NN_SRCS) $(NN_HDRS) $(NN_RUNNER) $(NN_MK)
	@mkdir -p $(@D)
	$(NN_HOST_CC) $(NN_WARN) $(NN_ASAN_FLAGS) $(NN_INC) $(NN_SRCS) $(NN_RUNNER) -o $@

build/nn-qemu/nn_runner.elf: $(NN_SRCS) $(NN_HDRS) $(NN_RUNNER) $(NN_MK) $(NN_QEMU_SRCS) $(NN_QEMU_DIR)/nn_qemu.h $(NN_QEMU_LD)
	@mkdir -p $(@D)
	$(NN_ARM_CC) $(NN_WARN) $(NN_ARM_ARCH) $(NN_ARM_CFLAGS) -DNN_RUNNER_QEMU $(NN_INC) -Itests \
	  $(NN_SRCS) $(NN_RUNNER) $(NN_QEMU_SRCS) $(NN_ARM_LDFLAGS) -o $@
	$(NN_ARM_SIZE) $@

build/nn-qemu/nn_runner_portable.elf: $(NN_SRCS) $(NN_HDRS) $(NN_RUNNER) $(NN_MK) $(NN_QEMU_SRCS) $(NN_QEMU_DIR)/nn_qemu.h $(NN_QEMU_LD)
	@mkdir -p $(@D)
	$(NN_ARM_CC) $(NN_WARN) $(NN_ARM_ARCH) $(NN_ARM_CFLAGS) -DNN_RUNNER_QEMU -DDYSAN_NN_NO_DSP $(NN_INC) -Itests \
	  $(NN_SRCS) $(NN_RUNNER) $(NN_QEMU_SRCS) $(NN_ARM_LDFLAGS) -o $@
	$(NN_ARM_SIZE) $@

nn-clean:
	rm -rf build/nn-host build/nn-asan build/nn-qemu

ifneq ($(NN_STANDALONE),)
.DEFAULT_GOAL := nn-all
else
.DEFAULT_GOAL := $(NN_PREV_GOAL)
# included by firmware/Makefile: `make host` / `make qemu` build the runners too
EXTRA_HOST_TARGETS += build/nn-host/nn_runner
EXTRA_QEMU_TARGETS += build/nn-qemu/nn_runner.elf build/nn-qemu/nn_runner_portable.elf
endif
