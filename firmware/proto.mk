# proto.mk -- the wire protocol's C tests, cross-compile checks and fuzzing (firmware/core/proto).
#
# Works included from firmware/Makefile (`include proto.mk`) and standalone (`make -f proto.mk` in
# firmware/). Paths are relative to this file's directory; outputs go to build/proto and build/fuzz.
#
#   proto-host-tests  build the host test programs and the ctypes shim (tests/test_protocol_c.py runs them)
#   proto-test        build and run them
#   proto-cross       compile core/proto with clang and arm-none-eabi-gcc (Cortex-M4F), -Werror
#   fuzz-short        libFuzzer on fuzz_frame.c for PROTO_FUZZ_SECONDS (default 30 s)   (= proto-fuzz-short)
#   fuzz              libFuzzer for PROTO_FUZZ_RUNS inputs (default 1,000,000); prints runs, crashes,
#                     hangs and time, fails on any crash or hang                            (= proto-fuzz)
#   proto-clean       remove build/proto and build/fuzz
#
# Every variable and target here starts with PROTO_/proto- (fuzz and fuzz-short only gain prerequisites;
# FUZZ_TARGETS and TEST_BINS are appended to), so the including Makefile's names, recipes and default goal
# are untouched.

PROTO_SAVED_GOAL := $(.DEFAULT_GOAL)
PROTO_MK := $(lastword $(MAKEFILE_LIST))
PROTO_DIR := $(patsubst %/,%,$(dir $(PROTO_MK)))
PROTO_BUILD := $(PROTO_DIR)/build/proto
PROTO_FUZZ_DIR := $(PROTO_DIR)/build/fuzz
PROTO_GOLDEN := $(PROTO_DIR)/../tests/data/protocol_golden.json

PROTO_CC ?= gcc
PROTO_CLANG ?= clang
PROTO_ARM_CC ?= arm-none-eabi-gcc
PROTO_WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wconversion -Wsign-conversion -Wstrict-prototypes
PROTO_INC := -I$(PROTO_DIR)/core/include -I$(PROTO_DIR)/core/proto
PROTO_SAN ?= -fsanitize=address,undefined -fno-sanitize-recover=all
PROTO_CFLAGS ?= -O1 -g $(PROTO_SAN)
PROTO_ARM_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -ffunction-sections

PROTO_SRC := $(wildcard $(PROTO_DIR)/core/proto/*.c)
PROTO_HDR := $(wildcard $(PROTO_DIR)/core/proto/*.h) $(PROTO_DIR)/core/include/dysan_contract.h \
             $(PROTO_DIR)/core/include/dysan_port.h $(PROTO_DIR)/core/include/dysan_le.h \
             $(PROTO_DIR)/core/include/dysan_crc32.h \
             $(PROTO_DIR)/tests/check_common.h $(PROTO_DIR)/tests/proto_test_common.h
# The port binding needs dysan_port's region functions: only the tests that provide them link it.
PROTO_CORE := $(filter-out %/dysan_counter_port.c,$(PROTO_SRC))

PROTO_TESTS := $(PROTO_BUILD)/proto_crypto_test $(PROTO_BUILD)/proto_frame_test \
               $(PROTO_BUILD)/proto_auth_test $(PROTO_BUILD)/proto_golden_test
PROTO_SHIM := $(PROTO_BUILD)/libdysan_proto_shim.so

PROTO_FUZZ_BIN := $(PROTO_FUZZ_DIR)/fuzz_frame
PROTO_FUZZ_SEEDS := $(PROTO_FUZZ_DIR)/seeds
PROTO_FUZZ_CORPUS := $(PROTO_FUZZ_DIR)/corpus
PROTO_FUZZ_ARTIFACTS := $(PROTO_FUZZ_DIR)/artifacts
PROTO_FUZZ_SECONDS ?= 30
PROTO_FUZZ_RUNS ?= 1000000
PROTO_FUZZ_TIMEOUT ?= 5
PROTO_FUZZ_FLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer,address,undefined \
                    -fno-sanitize-recover=all

.PHONY: proto-host-tests proto-test proto-cross fuzz-short fuzz proto-fuzz-short proto-fuzz proto-fuzz-build \
        proto-clean

proto-host-tests: $(PROTO_TESTS) $(PROTO_SHIM)

$(PROTO_BUILD)/proto_%_test: $(PROTO_DIR)/tests/proto_%_test.c $(PROTO_CORE) $(PROTO_HDR) | $(PROTO_BUILD)
	$(PROTO_CC) $(PROTO_WARN) $(PROTO_CFLAGS) $(PROTO_INC) $< $(PROTO_CORE) -o $@

# The auth test also covers the dysan_port binding, against the RAM flash of proto_fake_port.c.
$(PROTO_BUILD)/proto_auth_test: $(PROTO_DIR)/tests/proto_auth_test.c $(PROTO_DIR)/tests/proto_fake_port.c \
                                $(PROTO_SRC) $(PROTO_HDR) | $(PROTO_BUILD)
	$(PROTO_CC) $(PROTO_WARN) $(PROTO_CFLAGS) $(PROTO_INC) $< $(PROTO_DIR)/tests/proto_fake_port.c \
	  $(PROTO_SRC) -o $@

# No sanitizers in the shared library: it is loaded into an uninstrumented Python.
$(PROTO_SHIM): $(PROTO_DIR)/tests/proto_shim.c $(PROTO_CORE) $(PROTO_HDR) | $(PROTO_BUILD)
	$(PROTO_CC) $(PROTO_WARN) -O2 -g -shared -fPIC $(PROTO_INC) $< $(PROTO_CORE) -o $@

proto-test: proto-host-tests
	@set -e; for t in $(PROTO_TESTS); do \
	  case $$t in *golden*) $$t $(PROTO_GOLDEN);; *) $$t;; esac; \
	done

proto-cross: | $(PROTO_BUILD)/clang $(PROTO_BUILD)/arm
	@set -e; for s in $(PROTO_SRC); do \
	  o=$$(basename $$s .c).o; \
	  $(PROTO_CLANG) $(PROTO_WARN) -O2 $(PROTO_INC) -c $$s -o $(PROTO_BUILD)/clang/$$o; \
	  $(PROTO_ARM_CC) $(PROTO_WARN) $(PROTO_ARM_FLAGS) $(PROTO_INC) -c $$s -o $(PROTO_BUILD)/arm/$$o; \
	done
	@echo "proto-cross: $(words $(PROTO_SRC)) sources clean under $(PROTO_CLANG) and $(PROTO_ARM_CC) (cortex-m4)"
	@command -v arm-none-eabi-size >/dev/null && arm-none-eabi-size -t $(PROTO_BUILD)/arm/*.o | tail -1 || true

$(PROTO_BUILD) $(PROTO_BUILD)/clang $(PROTO_BUILD)/arm $(PROTO_FUZZ_DIR):
	mkdir -p $@

# ------------------------------------------------------------------------------------------------ fuzzing
$(PROTO_FUZZ_BIN): $(PROTO_DIR)/tests/fuzz_frame.c $(PROTO_CORE) $(PROTO_HDR) | $(PROTO_FUZZ_DIR)
	$(PROTO_CLANG) $(PROTO_FUZZ_FLAGS) $(PROTO_INC) $< $(PROTO_CORE) -o $@

# Seeds: every golden vector (valid and refused) in the harness's input modes.
$(PROTO_FUZZ_SEEDS)/.stamp: $(PROTO_BUILD)/proto_golden_test $(PROTO_GOLDEN) | $(PROTO_FUZZ_DIR)
	rm -rf $(PROTO_FUZZ_SEEDS) && mkdir -p $(PROTO_FUZZ_SEEDS)
	$(PROTO_BUILD)/proto_golden_test $(PROTO_GOLDEN) --corpus $(PROTO_FUZZ_SEEDS) >/dev/null
	touch $@

proto-fuzz-build: $(PROTO_FUZZ_BIN) $(PROTO_FUZZ_SEEDS)/.stamp

# $(1): libFuzzer limit flag. Prints one summary line; fails on any crash or hang. The artifacts of the
# previous run are removed first, so the counts are this run's.
define PROTO_RUN_FUZZ
	@mkdir -p $(PROTO_FUZZ_CORPUS) $(PROTO_FUZZ_ARTIFACTS)
	@rm -f $(PROTO_FUZZ_ARTIFACTS)/crash-* $(PROTO_FUZZ_ARTIFACTS)/timeout-* $(PROTO_FUZZ_ARTIFACTS)/oom-* \
	  $(PROTO_FUZZ_ARTIFACTS)/leak-*
	@start=$$(date +%s.%N); \
	$(PROTO_FUZZ_BIN) $(1) -timeout=$(PROTO_FUZZ_TIMEOUT) -artifact_prefix=$(PROTO_FUZZ_ARTIFACTS)/ \
	  -print_final_stats=1 $(PROTO_FUZZ_CORPUS) $(PROTO_FUZZ_SEEDS) > $(PROTO_FUZZ_DIR)/last.log 2>&1; \
	rc=$$?; end=$$(date +%s.%N); \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(PROTO_FUZZ_DIR)/last.log | tail -1); \
	crashes=$$(ls $(PROTO_FUZZ_ARTIFACTS) | grep -c -E '^(crash|leak|oom)-' || true); \
	hangs=$$(ls $(PROTO_FUZZ_ARTIFACTS) | grep -c '^timeout-' || true); \
	cov=$$(grep -o 'cov: [0-9]*' $(PROTO_FUZZ_DIR)/last.log | tail -1); \
	printf 'fuzz_frame: runs=%s crashes=%s hangs=%s time=%.1fs %s exit=%s (log: %s)\n' \
	  "$${runs:-?}" "$$crashes" "$$hangs" "$$(awk "BEGIN{print $$end - $$start}")" "$$cov" "$$rc" \
	  $(PROTO_FUZZ_DIR)/last.log; \
	test "$$rc" = 0 -a "$$crashes" = 0 -a "$$hangs" = 0 || { tail -40 $(PROTO_FUZZ_DIR)/last.log; exit 1; }
endef

proto-fuzz-short: proto-fuzz-build
	$(call PROTO_RUN_FUZZ,-max_total_time=$(PROTO_FUZZ_SECONDS))

proto-fuzz: proto-fuzz-build
	$(call PROTO_RUN_FUZZ,-runs=$(PROTO_FUZZ_RUNS))

# `fuzz` and `fuzz-short` only gain prerequisites here (no recipe), so other fragments can add theirs;
# firmware/Makefile's `fuzz: $(FUZZ_TARGETS)` and `tests: $(TEST_BINS)` pick these up as well.
fuzz: proto-fuzz
fuzz-short: proto-fuzz-short
FUZZ_TARGETS += proto-fuzz
TEST_BINS += $(PROTO_TESTS)

proto-clean:
	rm -rf $(PROTO_BUILD) $(PROTO_FUZZ_DIR)

# Standalone (`make -f proto.mk`): build the tests by default; included: leave the includer's default goal.
ifeq ($(firstword $(MAKEFILE_LIST)),$(PROTO_MK))
.DEFAULT_GOAL := proto-host-tests
else
.DEFAULT_GOAL := $(PROTO_SAVED_GOAL)
endif
