# core.mk -- the ctypes shim over the portable core (features, RF, preprocessing, bundle, selection), so
# pytest can compare the C core with its Python definitions value for value. Included by the Makefile.
#
#   make -C firmware core-shim   -> build/shim/libdysan_core_shim.so

CORE_SHIM := $(BUILD)/shim/libdysan_core_shim.so
CORE_SHIM_SRCS := tests/core_shim.c tests/shim_port.c $(CORE_SRCS)

.PHONY: core-shim
core-shim: $(CORE_SHIM)

$(CORE_SHIM): $(CORE_SHIM_SRCS) $(wildcard core/include/*.h core/nn/*.h core/proto/*.h ports/host/*.h ports/common/*.h)
	@mkdir -p $(@D)
	$(call say,SO,$@)
	$(Q)$(HOST_CC) $(CSTD) -O2 -g -fPIC -shared $(APP_DEFS) $(PORT_INC) -o $@ $(CORE_SHIM_SRCS) -lm

# The same shim under AddressSanitizer + UBSan, for the malformed-input tests (tests/test_app_bundle.py loads
# it into a Python started with LD_PRELOAD=$(cc -print-file-name=libasan.so)).
CORE_SHIM_ASAN := $(BUILD)/shim-asan/libdysan_core_shim.so

.PHONY: core-shim-asan
core-shim-asan: $(CORE_SHIM_ASAN)

$(CORE_SHIM_ASAN): $(CORE_SHIM_SRCS) $(wildcard core/include/*.h core/nn/*.h core/proto/*.h ports/host/*.h ports/common/*.h)
	@mkdir -p $(@D)
	$(call say,SO,$@)
	$(Q)$(HOST_CC) $(CSTD) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	  -fPIC -shared $(APP_DEFS) $(PORT_INC) -o $@ $(CORE_SHIM_SRCS) -lm

# The calibration forest's per-window work (features + forest) as a standalone runner: natively, and on the
# Cortex-M4F under QEMU with the bare-metal harness of tests/qemu (nn.mk's), where `dysan bench --steps
# calibration` counts its instructions (host/dysan/calibration/cost.py).
#
#   make -C firmware rf-runner   -> build/rf-host/rf_runner, build/rf-qemu/rf_runner.elf
RF_RUNNER_SRCS := tests/rf_runner.c core/src/dysan_features.c core/src/dysan_rf.c
RF_RUNNER_DEPS := $(RF_RUNNER_SRCS) core/include/dysan_features.h core/include/dysan_rf.h \
                  core/include/dysan_rf_format.h core/include/dysan_contract.h core/include/dysan_le.h

.PHONY: rf-runner
rf-runner: $(BUILD)/rf-host/rf_runner $(BUILD)/rf-qemu/rf_runner.elf

$(BUILD)/rf-host/rf_runner: $(RF_RUNNER_DEPS)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(HOST_CC) $(CSTD) -O2 -g -Icore/include -o $@ $(RF_RUNNER_SRCS)

$(BUILD)/rf-qemu/rf_runner.elf: $(RF_RUNNER_DEPS) tests/qemu/startup.c tests/qemu/nn_qemu.h tests/qemu/nn_qemu.ld
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(M4_CC) $(CSTD) $(M4_ARCH) -O2 -g -ffunction-sections -fdata-sections -DRF_RUNNER_QEMU -Icore/include \
	  -Itests $(RF_RUNNER_SRCS) tests/qemu/startup.c $(M4_ARCH) --specs=rdimon.specs -nostartfiles \
	  -T tests/qemu/nn_qemu.ld -Wl,--gc-sections -o $@
