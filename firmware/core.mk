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
