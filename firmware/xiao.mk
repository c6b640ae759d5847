# xiao.mk -- the XIAO nRF52840 Sense image, built offline from the Arduino core in ../shared/vendor.
#
#   make -C firmware xiao          build/xiao/dysan.elf, .hex, .map and size.json; prints the size table
#   make -C firmware xiao-probe PROBE=rodata|data   link the image plus a deliberately oversized section (must fail)
#   make -C firmware xiao-print    the sources and flags of our code (tests compare them with platformio.ini)
#   XIAO_TARBALL=PATH              the vendor tarball (default ../../shared/vendor/xiao-nrf52840/seeed-nrf52-xiao.tar.xz)
#
# What PlatformIO's `pio run -e xiao_ble_sense` does, without the internet: the Seeed fork of the Adafruit nRF52
# core (cores/nRF5, variant Seeed_XIAO_nRF52840_Sense, Bluefruit52Lib, InternalFileSytem, Adafruit_LittleFS,
# Adafruit_nRFCrypto, Adafruit_TinyUSB_Arduino, Wire) compiled with the flags of its platform.txt and
# boards.txt (`xiaonRF52840Sense`), linked with its nrf52840_s140_v7.ld.
#
# Caches: the tarball is unpacked once per content hash into build/vendor/xiao-<hash>/src (never into the tree);
# the vendor objects are archived into build/vendor/xiao-<hash>/libxiao-<flags hash>.a (an archive, as PlatformIO
# links the framework and libraries), so a rerun compiles only our sources. Our sources and flags are those of [env:xiao_ble_sense] in platformio.ini (checked by
# tests/test_board_xiao.py: test_sources_and_flags_match_platformio), compiled with -Werror; the vendor
# headers are -isystem, so their own warnings (440 -Wunused-parameter in the SoftDevice headers) stay theirs.
#
# Memory map: the vendor linker script is used unchanged; boards/xiao/dysan_regions.ld.in (preprocessed with
# ports/nrf52840/board_nrf52840.h, whose regions are generated from host/dysan/boards.py, the one definition
# `dysan flash` and the tests read too) is added as an implicit linker script
# whose ASSERTs make the link FAIL when the flash image (code + .data load image) reaches the BUNDLE region,
# or when the regions overlap each other, the SoftDevice or InternalFS.

XIAO_TARBALL ?= ../../shared/vendor/xiao-nrf52840/seeed-nrf52-xiao.tar.xz
XIAO_DIR     := $(BUILD)/xiao
XIAO_VBUILD  := build/vendor
XIAO_HASH    := $(if $(wildcard $(XIAO_TARBALL)),$(shell sha256sum $(XIAO_TARBALL) | cut -c1-16))
XIAO_VDIR    := $(XIAO_VBUILD)/xiao-$(XIAO_HASH)
XIAO_UNPACKED := $(XIAO_VDIR)/.unpacked
XIAO_CORE    := $(XIAO_VDIR)/src/vendor/seeed-nrf52
XIAO_CMSIS   := $(XIAO_VDIR)/src/vendor/CMSIS_5/CMSIS/Core/Include
XIAO_NORDIC  := $(XIAO_CORE)/cores/nRF5/nordic
XIAO_RTOS    := $(XIAO_CORE)/cores/nRF5/freertos
XIAO_LIBS    := Bluefruit52Lib InternalFileSytem Adafruit_LittleFS Adafruit_nRFCrypto Adafruit_TinyUSB_Arduino Wire
XIAO_CC      := $(M4_PREFIX)gcc
XIAO_CXX     := $(M4_PREFIX)g++
XIAO_AR      := $(M4_PREFIX)ar

# ---- flags of platform.txt / boards.txt (xiaonRF52840Sense, S140 7.3.0, debug level 0) -----------------------
XIAO_ARCH    := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
XIAO_DEFS    := -DF_CPU=64000000 -DARDUINO=10819 -DARDUINO_Seeed_XIAO_nRF52840_Sense -DARDUINO_ARCH_NRF52 \
                '-DARDUINO_BSP_VERSION="1.1.8"' -DNRF52840_XXAA -DUSBCON -DUSE_TINYUSB -DUSB_VID=0x2886 \
                -DUSB_PID=0x8045 '-DUSB_MANUFACTURER="Seeed"' '-DUSB_PRODUCT="XIAO nRF52840 Sense"' \
                -DSOFTDEVICE_PRESENT -DARDUINO_NRF52_ADAFRUIT -DNRF52_SERIES -DDX_CC_TEE -DLFS_NAME_MAX=64 \
                -DCFG_DEBUG=0 -DCFG_LOGGER=0 -DCFG_SYSVIEW=0 -DS140
XIAO_COMMON  := $(XIAO_ARCH) -g -Ofast -ffunction-sections -fdata-sections -nostdlib --param max-inline-insns-single=500
XIAO_CSTD    := -std=gnu11
XIAO_CXXSTD  := -std=gnu++11 -fno-threadsafe-statics -fno-rtti -fno-exceptions
# Every vendor include folder (build.flags.nrf, the variant, each library's src); -I for the vendor's own
# sources, -isystem for ours.
XIAO_VINC_DIRS := $(XIAO_CMSIS) $(XIAO_NORDIC) $(XIAO_NORDIC)/nrfx $(XIAO_NORDIC)/nrfx/hal $(XIAO_NORDIC)/nrfx/mdk \
                  $(XIAO_NORDIC)/nrfx/soc $(XIAO_NORDIC)/nrfx/drivers/include $(XIAO_NORDIC)/nrfx/drivers/src \
                  $(XIAO_NORDIC)/softdevice/s140_nrf52_7.3.0_API/include \
                  $(XIAO_NORDIC)/softdevice/s140_nrf52_7.3.0_API/include/nrf52 \
                  $(XIAO_RTOS)/Source/include $(XIAO_RTOS)/config $(XIAO_RTOS)/portable/GCC/nrf52 \
                  $(XIAO_RTOS)/portable/CMSIS/nrf52 $(XIAO_CORE)/cores/nRF5/sysview/SEGGER \
                  $(XIAO_CORE)/cores/nRF5/sysview/Config $(XIAO_CORE)/libraries/Adafruit_TinyUSB_Arduino/src/arduino \
                  $(XIAO_CORE)/cores/nRF5 $(XIAO_CORE)/variants/Seeed_XIAO_nRF52840_Sense \
                  $(foreach l,$(XIAO_LIBS),$(if $(filter Wire,$(l)),$(XIAO_CORE)/libraries/$(l),$(XIAO_CORE)/libraries/$(l)/src))
XIAO_VFLAGS  := $(XIAO_COMMON) -Werror=return-type $(XIAO_DEFS) $(addprefix -I,$(XIAO_VINC_DIRS))
XIAO_FLAGHASH := $(shell printf '%s' '$(subst ',,$(XIAO_VFLAGS) $(XIAO_CSTD) $(XIAO_CXXSTD))' | sha256sum | cut -c1-12)
XIAO_VLIB    := $(XIAO_VDIR)/libxiao-$(XIAO_FLAGHASH).a
XIAO_VOBJ    := $(XIAO_VDIR)/obj-$(XIAO_FLAGHASH)

# ---- our sources: [env:xiao_ble_sense] of platformio.ini (build_src_filter, build_flags, build_src_flags) ------
XIAO_SRCS     := $(wildcard core/src/*.c core/nn/*.c core/proto/*.c ports/common/*.c) \
                 $(wildcard $(GEN_DIR)/dysan_identity.c) $(wildcard ports/nrf52840/*.cpp)
XIAO_INC      := -Icore/include -Icore/nn -Icore/proto -Iports/common -I$(GEN_DIR)
XIAO_SRC_FLAGS := -Dmain=dysan_app_main -DDYSAN_APP_REPLAY=0 -Wall -Wextra
# -fstack-usage / -fcallgraph-info=su: frame sizes and call graphs for the stack bound of the size table.
XIAO_OUR_FLAGS = $(XIAO_COMMON) $(XIAO_DEFS) $(XIAO_INC) $(XIAO_SRC_FLAGS) -Werror -fstack-usage \
                 -fcallgraph-info=su -MMD -MP $(addprefix -isystem ,$(XIAO_VINC_DIRS))
xobj = $(patsubst %,$(XIAO_DIR)/obj/%.o,$(1))
# Our objects are rebuilt when our flags change (a stamp named by their hash).
XIAO_OUR_STAMP := $(XIAO_DIR)/.flags-$(shell printf '%s' '$(subst ',,$(XIAO_OUR_FLAGS))' | sha256sum | cut -c1-12)
$(XIAO_DIR)/.flags-%:
	@mkdir -p $(@D) && rm -f $(XIAO_DIR)/.flags-* && touch $@

# ---- link: platform.txt's recipe.c.combine.pattern + ldflags; the region checks as an implicit script ------
XIAO_LDSCRIPT := nrf52840_s140_v7.ld
XIAO_REGIONS_LD := $(XIAO_DIR)/dysan_regions.ld
XIAO_CRYPTO_DIR := $(XIAO_CORE)/libraries/Adafruit_nRFCrypto/src/cortex-m4/fpv4-sp-d16-hard
XIAO_LDFLAGS  := $(XIAO_ARCH) -Ofast -u _printf_float -Wl,--gc-sections -Wl,--cref -Wl,--check-sections \
                 -Wl,--unresolved-symbols=report-all -Wl,--warn-common -Wl,--warn-section-align \
                 -Wl,--wrap=malloc -Wl,--wrap=free --specs=nano.specs --specs=nosys.specs \
                 -L$(XIAO_CORE)/cores/nRF5/linker -T$(XIAO_LDSCRIPT) -L$(XIAO_CRYPTO_DIR)
XIAO_LDLIBS   := -Wl,--start-group $(XIAO_VLIB) -lnrf_cc310_0.9.13-no-interrupts -lm -Wl,--end-group
XIAO_ELF      := $(XIAO_DIR)/dysan.elf

.PHONY: xiao xiao-image xiao-vendor xiao-size xiao-probe xiao-print xiao-check-vendor
xiao: xiao-check-vendor check-m4-toolchain $(XIAO_UNPACKED)
	@$(MAKE) --no-print-directory xiao-image

xiao-check-vendor:
	@test -f "$(XIAO_TARBALL)" || { echo "error: $(XIAO_TARBALL) not found (the XIAO board build needs" \
	  "../shared/vendor/xiao-nrf52840; set XIAO_TARBALL=...)" >&2; exit 1; }

# Unpacked into a temporary folder renamed into place, so two builds racing here both see a whole tree.
$(XIAO_UNPACKED):
	$(call say,UNTAR,$(XIAO_TARBALL) -> $(XIAO_VDIR)/src)
	$(Q)mkdir -p $(XIAO_VDIR) && t=$(XIAO_VDIR)/src.tmp.$$$$ && rm -rf $$t && mkdir $$t && \
	  tar -xJf $(XIAO_TARBALL) -C $$t && { mv -T $$t $(XIAO_VDIR)/src 2>/dev/null || rm -rf $$t; }
	@touch $@

# Everything below needs the unpacked tree: evaluated in the sub-make `xiao` starts after unpacking.
ifneq ($(wildcard $(XIAO_UNPACKED)),)
XIAO_VSRCS := $(patsubst $(XIAO_CORE)/%,%,$(shell find $(XIAO_CORE)/cores $(XIAO_CORE)/variants/Seeed_XIAO_nRF52840_Sense \
                $(addprefix $(XIAO_CORE)/libraries/,$(XIAO_LIBS)) \( -name '*.c' -o -name '*.cpp' -o -name '*.S' \) \
                -not -path '*/examples/*' | sort))
XIAO_VOBJS := $(patsubst %,$(XIAO_VOBJ)/%.o,$(XIAO_VSRCS))

$(XIAO_VOBJ)/%.c.o: $(XIAO_CORE)/%.c
	@mkdir -p $(@D)
	$(call say,CC-V,$*.c)
	$(Q)$(XIAO_CC) $(XIAO_VFLAGS) $(XIAO_CSTD) -w -c $< -o $@
$(XIAO_VOBJ)/%.cpp.o: $(XIAO_CORE)/%.cpp
	@mkdir -p $(@D)
	$(call say,CXX-V,$*.cpp)
	$(Q)$(XIAO_CXX) $(XIAO_VFLAGS) $(XIAO_CXXSTD) -w -c $< -o $@
$(XIAO_VOBJ)/%.S.o: $(XIAO_CORE)/%.S
	@mkdir -p $(@D)
	$(call say,AS-V,$*.S)
	$(Q)$(XIAO_CC) $(XIAO_ARCH) -mabi=aapcs -Ofast -g -x assembler-with-cpp $(XIAO_DEFS) \
	  $(addprefix -I,$(XIAO_VINC_DIRS)) -c $< -o $@

$(XIAO_VLIB): $(XIAO_VOBJS)
	$(call say,AR,$@ ($(words $^) vendor objects))
	$(Q)t=$@.$$$$.tmp && rm -f $$t && $(XIAO_AR) rcs $$t $^ && mv $$t $@

xiao-vendor: $(XIAO_VLIB)
endif

$(XIAO_DIR)/obj/%.c.o: %.c $(XIAO_OUR_STAMP)
	@mkdir -p $(@D)
	$(call say,CC-X,$<)
	$(Q)$(XIAO_CC) $(XIAO_OUR_FLAGS) $(XIAO_CSTD) -c $< -o $@
$(XIAO_DIR)/obj/%.cpp.o: %.cpp $(XIAO_OUR_STAMP)
	@mkdir -p $(@D)
	$(call say,CXX-X,$<)
	$(Q)$(XIAO_CXX) $(XIAO_OUR_FLAGS) $(XIAO_CXXSTD) -c $< -o $@

$(XIAO_REGIONS_LD): boards/xiao/dysan_regions.ld.in ports/nrf52840/board_nrf52840.h ports/nrf52840/board_regions.h
	@mkdir -p $(@D)
	$(call say,CPP,$@)
	$(Q)$(XIAO_CC) -E -P -x c -DARDUINO_NRF52_ADAFRUIT -DDYSAN_LINKER_SCRIPT -Iports/nrf52840 $< -o $@

# Link, then refuse an image with undefined symbols (report-all above) or one the region checks reject.
define xiao_link
	$(call say,LD-X,$@)
	$(Q)$(XIAO_CXX) $(XIAO_LDFLAGS) -Wl,-Map=$(basename $@).map -o $@ $(1) $(XIAO_REGIONS_LD) $(XIAO_LDLIBS)
endef

$(XIAO_ELF): $(call xobj,$(XIAO_SRCS)) $(XIAO_VLIB) $(XIAO_REGIONS_LD)
	$(call xiao_link,$(call xobj,$(XIAO_SRCS)))

$(XIAO_DIR)/dysan.hex: $(XIAO_ELF)
	$(call say,HEX,$@)
	$(Q)$(M4_OBJCOPY) -O ihex $< $@.tmp && mv $@.tmp $@

xiao-image: $(XIAO_DIR)/dysan.hex
	@$(MAKE) --no-print-directory xiao-size

# Size table: flash regions from the port header (via the linker symbols __dysan_*), RAM from the core's script.
XIAO_SIZE_TOOL := boards/xiao/size_table.py
xiao-size:
	@$(M4_SIZE) $(XIAO_ELF)
	@python3 $(XIAO_SIZE_TOOL) $(XIAO_ELF) --json $(XIAO_DIR)/size.json \
	  --qemu $(M4_APP)

# A deliberately oversized section (boards/xiao/oversize_probe.c: PROBE_BYTES of .rodata, or of .data whose
# load image lands in flash while its RAM still fits) linked into the image must fail at the region ASSERT.
PROBE ?= rodata
PROBE_BYTES ?= 307200
$(XIAO_DIR)/probe/oversize_$(PROBE).o: boards/xiao/oversize_probe.c FORCE
	@mkdir -p $(@D)
	$(Q)$(XIAO_CC) $(XIAO_ARCH) -DPROBE_$(PROBE) -DPROBE_BYTES=$(PROBE_BYTES) -c $< -o $@

.PHONY: FORCE xiao-probe-link
xiao-probe: xiao-check-vendor check-m4-toolchain $(XIAO_UNPACKED)
	@$(MAKE) --no-print-directory xiao-probe-link
xiao-probe-link: $(call xobj,$(XIAO_SRCS)) $(XIAO_VLIB) $(XIAO_REGIONS_LD) $(XIAO_DIR)/probe/oversize_$(PROBE).o
	$(Q)$(XIAO_CXX) $(XIAO_LDFLAGS) -Wl,--undefined=dysan_oversize_probe -Wl,-Map=$(XIAO_DIR)/probe/oversize_$(PROBE).map -o $(XIAO_DIR)/probe/oversize_$(PROBE).elf \
	  $(call xobj,$(XIAO_SRCS)) $(XIAO_DIR)/probe/oversize_$(PROBE).o $(XIAO_REGIONS_LD) $(XIAO_LDLIBS)

xiao-print:
	@echo "srcs: $(XIAO_SRCS)"
	@echo "inc: $(XIAO_INC)"
	@echo "src_flags: $(XIAO_SRC_FLAGS)"
	@echo "defs: $(XIAO_DEFS)"

-include $(patsubst %.o,%.d,$(call xobj,$(XIAO_SRCS)))

# `clean` also drops our XIAO objects and image; the vendor cache (build/vendor/xiao-*) stays: it is keyed by
# content and rebuilt only when the tarball or the flags change (rm -rf build/vendor/xiao-* to force it).
.PHONY: xiao-clean
xiao-clean:
	rm -rf $(XIAO_DIR)
clean: xiao-clean
