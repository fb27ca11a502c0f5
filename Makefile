# Switchyard - build, run, test, bench, install.
#
#   make            build the daemon (./switchyard) and the plugins
#   make run        install missing packages the daemon needs, build, run on conf.d/
#   make test       install missing packages the tests need too, build, run every test
#   make check      unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks (prints figures, asserts nothing); BENCH=bench/bench_x.py for one
#   make install    PREFIX=/usr/local DESTDIR= [SYSCONFDIR= LOCALSTATEDIR=]

VERSION    := 0.1.0
PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD      ?= build
CC         ?= cc
PYTHON     ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config

# Config and state live under the prefix (PREFIX/etc, PREFIX/var), except
# for PREFIX=/usr, a distribution's own, whose are /etc and /var (FHS).
# Either can be set on the command line; DESTDIR stages all of them.
ifeq ($(PREFIX),/usr)
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
else
SYSCONFDIR    ?= $(PREFIX)/etc
LOCALSTATEDIR ?= $(PREFIX)/var
endif
CONFDIR   := $(SYSCONFDIR)/switchyard
STATEDIR  := $(LOCALSTATEDIR)/lib/switchyard

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT       ?= -O2 -g
SAN       ?=
PLUGINDIR := $(PREFIX)/lib/switchyard/plugins
CPPFLAGS  += -D_GNU_SOURCE -DSY_VERSION='"$(VERSION)"' -DSY_PLUGIN_DIR='"$(PLUGINDIR)"' -Isdk/include -Icore
# V=1 shows full command lines.
Q         := $(if $(V),,@)
CFLAGS    += -std=c11 $(WARN) $(OPT) $(SAN) -fPIC -pthread
LDFLAGS   += $(SAN) -pthread

CORE_LIBS := $(shell $(PKG_CONFIG) --libs libzmq libcjson sqlite3 libpq libmicrohttpd libcrypto 2>/dev/null || echo -lzmq -lcjson -lsqlite3 -lpq -lmicrohttpd -lcrypto) -ldl -lm
CORE_CFLAGS := $(shell $(PKG_CONFIG) --cflags libzmq libcjson sqlite3 libpq libmicrohttpd libcrypto 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

# The core library, which unit tests link too, and the command-line tools
# (core/cli/: main, publish, status), linked only into the binary. The SDK's
# publisher API is in the core library: `publish --ack` and its unit test use it.
CORE_SRC  := $(wildcard core/*.c) sdk/src/publisher.c
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
CLI_SRC   := $(wildcard core/cli/*.c)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
CORE_LIB  := $(BUILD)/libsycore.a
BIN       := $(BUILD)/switchyard

# Every plugins/<name>/ with C sources is one plugin; folders starting with
# '_' hold code shared by several plugins and are not plugins themselves.
PLUGINS   := $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/*.c))))
PLUGINS   := $(sort $(filter-out _%,$(PLUGINS)))
PLUGIN_SO := $(PLUGINS:%=$(BUILD)/plugins/%.so)

# Test-only plugins (tests/plugins/<name>/*.c) and ABI probes (tests/abi/*.c).
TPLUGINS  := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/plugins/*/*.c)))))
TPLUGIN_SO:= $(TPLUGINS:%=$(BUILD)/tests/plugins/%.so)
ABI_SO    := $(patsubst tests/abi/%.c,$(BUILD)/tests/abi/%.so,$(wildcard tests/abi/*.c))

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)

.PHONY: all run test unit e2e check valgrind bench install uninstall clean docs FORCE \
	deps deps-run deps-test deps-bench
.DEFAULT_GOAL := all

# The receivers' library (SDK_LIB) and the fuzzing targets bring their own
# rules; included before `all` so its prerequisites see SDK_LIB.
-include sdk/lib.mk
-include tests/fuzz/fuzz.mk
.DELETE_ON_ERROR:

# ./switchyard always means the default build; other BUILD folders don't touch it.
all: $(BIN) $(if $(filter build,$(BUILD)),switchyard) $(PLUGIN_SO) $(SDK_LIB)

# scripts/deps.sh MODE installs what is missing: `run` what the daemon needs,
# `test` the tests' tools and peers too, `bench` the benchmarks' as well.
# Targets call it first, then make what they build: the packages are the
# build's prerequisites, also with -j.
deps: deps-test
deps-run deps-test deps-bench:
	@bash scripts/deps.sh $(@:deps-%=%)

switchyard: build/switchyard
	@ln -sfn build/switchyard switchyard

$(BUILD)/sdk/src/%.o: sdk/src/%.c $(wildcard sdk/include/switchyard/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CORE_CFLAGS) $(CFLAGS) -c $< -o $@

# The paths compiled in (SY_PLUGIN_DIR) depend on PREFIX, which is not a
# file: the stamp holds them and changes only when they do, so a build with
# another PREFIX recompiles the core and an unchanged one does nothing.
PATHS_STAMP := $(BUILD)/paths.stamp
$(PATHS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo 'SY_PLUGIN_DIR=$(PLUGINDIR)' | cmp -s - $@ || echo 'SY_PLUGIN_DIR=$(PLUGINDIR)' > $@

$(BUILD)/core/%.o: core/%.c $(wildcard core/*.h) sdk/include/switchyard/sink.h $(PATHS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CORE_CFLAGS) $(CFLAGS) -c $< -o $@

$(CLI_OBJ): $(wildcard core/cli/*.h)

# The OpenAPI document is built into the binary (core/api_openapi.c, .incbin).
$(BUILD)/core/api_openapi.o: docs/openapi.json

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(CORE_LIB)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS)

# Plugins: every plugins/<name>/*.c into one <name>.so. A plugin's own
# plugins/<name>/plugin.mk may set PLUGIN_LIBS_<name> (libraries),
# PLUGIN_SRC_<name> (extra sources, e.g. from a shared plugins/_x/ folder)
# and PLUGIN_CFLAGS_<name>. Plugins see only sdk/include and their folders.
-include $(wildcard plugins/*/plugin.mk)

.SECONDEXPANSION:
$(BUILD)/plugins/%.so: $$(wildcard plugins/%/*.c) $$(wildcard plugins/%/*.h) $$(PLUGIN_SRC_$$*) $$(PLUGIN_DEPS_$$*) sdk/include/switchyard/sink.h
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $@"
	$(Q)$(CC) -Isdk/include -Iplugins/$* -D_GNU_SOURCE -DSY_VERSION='"$(VERSION)"' $(PLUGIN_CFLAGS_$*) $(CFLAGS) -shared -fvisibility=hidden \
		-o $@ $(filter %.c,$^) $(LDFLAGS) $(PLUGIN_LIBS_$*)

$(BUILD)/tests/plugins/%.so: $$(wildcard tests/plugins/%/*.c) sdk/include/switchyard/sink.h
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $@"
	$(Q)$(CC) -Isdk/include -D_GNU_SOURCE $(CFLAGS) -shared -fvisibility=hidden -o $@ $(filter %.c,$^) $(LDFLAGS)

$(BUILD)/tests/abi/%.so: tests/abi/%.c sdk/include/switchyard/sink.h
	@mkdir -p $(dir $@)
	@echo "  ABI     $@"
	$(Q)$(CC) -Isdk/include $(CFLAGS) -shared -fvisibility=hidden -o $@ $< $(LDFLAGS)

# Some unit tests #include a plugin's sources to reach its static helpers.
$(BUILD)/tests/unit/%: tests/unit/%.c $(CORE_LIB) $(wildcard plugins/*/*.c plugins/*/*.h) $(PATHS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CORE_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(CORE_LIB) $(LDFLAGS) $(CMOCKA_LIBS) $(CORE_LIBS)

run: deps-run
	$(MAKE) all
	@mkdir -p var
	./switchyard run -c conf.d

unit: $(UNIT_BIN) $(ABI_SO) $(PLUGIN_SO)
	@set -e; for t in $(UNIT_BIN); do \
		echo "== $$t"; SY_BUILD=$(BUILD) $$t; done

E2E ?= tests/e2e
e2e: all $(TPLUGIN_SO)
	SY_BUILD=$(BUILD) $(PYTHON) -m pytest -q $(E2E)

test: deps-test
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

# Sanitizer builds live in their own folder so they never mix with -O2
# objects: unit tests, then the end-to-end suite against an ASan + UBSan
# daemon and plugins (leaks at exit fail the run: the tests require exit 0).
SANFLAGS := BUILD=build/san OPT="-O1 -g -fno-omit-frame-pointer" \
	SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CHECK_E2E ?= tests/e2e
check: deps-test
	$(MAKE) $(SANFLAGS) unit
	$(MAKE) $(SANFLAGS) e2e E2E="$(CHECK_E2E)"
	$(MAKE) valgrind

# The unit tests under valgrind (no sanitizer build: valgrind needs plain binaries).
valgrind: deps-test
	$(MAKE) BUILD=build/vg OPT="-O1 -g" $(UNIT_BIN:$(BUILD)/%=build/vg/%) \
		$(ABI_SO:$(BUILD)/%=build/vg/%) $(PLUGIN_SO:$(BUILD)/%=build/vg/%)
	@set -e; for t in $(UNIT_BIN:$(BUILD)/%=build/vg/%); do echo "== valgrind $$t"; \
		SY_BUILD=build/vg valgrind -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite $$t > /dev/null; done

# Each bench/bench_*.py prints its own figures; none asserts anything.
# Benchmarks, every bench/bench_*.py or the ones named: make bench BENCH=bench/bench_batch.py
# (bench_spool.py's retries use the test plugin flaky.so).
BENCH ?= $(sort $(wildcard bench/bench_*.py))
bench: deps-bench
	$(MAKE) all $(TPLUGIN_SO)
	@set -e; for b in $(BENCH); do \
		echo "== $$b"; $(PYTHON) $$b --build $(BUILD); done

docs: all
	bash scripts/gen-config-doc.sh

# Fills the templates (the systemd unit, the .pc file) with the install paths.
# StateDirectory= only makes folders under /var/lib, so it stays in the unit
# only when that is where the state goes.
SUBST := -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@CONFDIR@|$(CONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
	$(if $(filter /var/lib/switchyard,$(STATEDIR)),,-e '/^StateDirectory/d')

# Everything goes under $(DESTDIR): the prefix, $(CONFDIR) and $(STATEDIR).
install: $(BIN) $(PLUGIN_SO) $(SDK_LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PLUGINDIR) \
		$(DESTDIR)$(PREFIX)/include/switchyard $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/lib/systemd/system
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/switchyard
	install -m 0755 $(PLUGIN_SO) $(DESTDIR)$(PLUGINDIR)/
	install -m 0644 sdk/include/switchyard/*.h $(DESTDIR)$(PREFIX)/include/switchyard/
	install -m 0644 $(SDK_LIB) $(DESTDIR)$(PREFIX)/lib/libswitchyard.a
	sed $(SUBST) sdk/switchyard.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/switchyard.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/switchyard.pc
	sed $(SUBST) scripts/switchyard.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/switchyard.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/switchyard.service
	@# The example config goes only into a conf.d without any *.json: an
	@# operator's config is never overwritten, nor completed with examples.
	@# plugin_dir points at the installed plugins, var/ paths at $(STATEDIR).
	@# Config files may hold secrets: 0640, readable by the owner's group.
	@set -e; etc=$(DESTDIR)$(CONFDIR)/conf.d; \
	if ls $$etc/*.json >/dev/null 2>&1; then \
		echo "  keeping the config in $$etc"; \
	else \
		install -d -m 0755 $$etc; \
		for f in conf.d/*.json; do \
			echo "  CONFIG  $$etc/$${f#conf.d/}"; \
			sed -e 's|\("plugin_dir": *"\)[^"]*"|\1$(PLUGINDIR)"|' \
			    -e 's|"var/|"$(STATEDIR)/|g' $$f > $$etc/$${f#conf.d/}; \
			chmod 0640 $$etc/$${f#conf.d/}; \
		done; \
	fi

# The config in $(CONFDIR) and the state in $(STATEDIR) are the operator's:
# uninstall leaves them.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/switchyard $(DESTDIR)$(PREFIX)/lib/pkgconfig/switchyard.pc \
		$(DESTDIR)$(PREFIX)/lib/libswitchyard.a \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/switchyard.service
	rm -rf $(DESTDIR)$(PREFIX)/lib/switchyard $(DESTDIR)$(PREFIX)/include/switchyard

clean:
	rm -rf build switchyard
