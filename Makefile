# Switchyard - build, run, test, bench, install.
#
#   make            build the daemon (./switchyard) and the plugins
#   make run        install missing packages the daemon needs, build, run on conf.d/
#   make test       install missing packages the tests need too, build, run every test
#   make check      unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks (prints figures, asserts nothing); BENCH=bench/bench_x.py for one
#   make install    PREFIX=/usr/local DESTDIR= [SYSCONFDIR= LOCALSTATEDIR=]
#   make deb        the Debian packages switchyard and switchyard-dev, in $(BUILD)/deb/
#   make test-deb   build and check them (lintian, dpkg into a scratch root); make e2e runs it too

# The version lives in VERSION only: the binary, the plugins, the .pc file
# and the Debian packages all read it from there.
VERSION    := $(strip $(file <VERSION))
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
# The SDK's library and .pc file go to LIBDIR, systemd's files to folders
# under the prefix; Debian's rules set LIBDIR to the multiarch folder and
# SYSTEMDUNITDIR to where its systemd looks (/lib/systemd/system on bookworm).
LIBDIR         ?= $(PREFIX)/lib
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
MANDIR         ?= $(PREFIX)/share/man

# The commit built, for `switchyard version` and switchyard_build_info:
# "-dirty" when the tree differs from it, "unknown" outside a git checkout of
# this very tree (an unpacked tarball, or the copy make deb builds in, which
# is handed the commit of the tree it was copied from).
ifeq ($(origin GIT_COMMIT),undefined)
GIT_COMMIT := $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
	git describe --always --dirty --abbrev=12 --match=NONE 2>/dev/null || echo unknown)
endif

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT       ?= -O2 -g
SAN       ?=
PLUGINDIR := $(PREFIX)/lib/switchyard/plugins
# The customer portal's static files (core/portal/, served at /portal/).
PORTALDIR := $(PREFIX)/share/switchyard/portal
PORTAL_FILES := $(wildcard core/portal/*.html core/portal/*.css core/portal/*.js core/portal/*.svg)
# Plugins see only sdk/include: they take the CPPFLAGS given from outside
# (dpkg-buildflags' -D_FORTIFY_SOURCE, say), not the core's additions.
USER_CPPFLAGS := $(CPPFLAGS)
CPPFLAGS  += -D_GNU_SOURCE -DSY_VERSION='"$(VERSION)"' -DSY_PLUGIN_DIR='"$(PLUGINDIR)"' \
	-DSY_PORTAL_DIR='"$(PORTALDIR)"' -Isdk/include -Icore
# V=1 shows full command lines.
Q         := $(if $(V),,@)
CFLAGS    += -std=c11 $(WARN) $(OPT) $(SAN) -fPIC -pthread
LDFLAGS   += $(SAN) -pthread

CORE_PKGS := libzmq libcjson sqlite3 libpq libmicrohttpd libcrypto lua5.4 libsystemd zlib
CORE_LIBS := $(shell $(PKG_CONFIG) --libs $(CORE_PKGS) 2>/dev/null || echo -lzmq -lcjson -lsqlite3 -lpq -lmicrohttpd -lcrypto -llua5.4 -lsystemd -lz) -ldl -lm
CORE_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS) 2>/dev/null || echo -I/usr/include/postgresql -I/usr/include/lua5.4)
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

.PHONY: all run test unit e2e check valgrind bench install uninstall clean docs man deb test-deb \
	FORCE deps deps-run deps-test deps-bench deps-deb
.DEFAULT_GOAL := all

# The receivers' library (SDK_LIB) and the fuzzing targets bring their own
# rules; included before `all` so its prerequisites see SDK_LIB.
-include sdk/lib.mk
-include tests/fuzz/fuzz.mk
.DELETE_ON_ERROR:

# ./switchyard always means the default build; other BUILD folders don't touch it.
all: $(BIN) $(if $(filter build,$(BUILD)),switchyard) $(PLUGIN_SO) $(SDK_LIB)

# scripts/deps.sh MODE installs what is missing: `run` what the daemon needs,
# `deb` what building its Debian packages takes too, `test` the tests' tools
# and peers too, `bench` the benchmarks' as well. Targets call it first,
# then make what they build: the packages are the build's prerequisites,
# also with -j.
deps: deps-test
deps-run deps-test deps-bench deps-deb:
	@bash scripts/deps.sh $(@:deps-%=%)

switchyard: build/switchyard
	@ln -sfn build/switchyard switchyard

$(BUILD)/sdk/src/%.o: sdk/src/%.c $(wildcard sdk/include/switchyard/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CORE_CFLAGS) $(CFLAGS) -c $< -o $@

# The paths compiled in (SY_PLUGIN_DIR, SY_PORTAL_DIR) depend on PREFIX, which is not a
# file: the stamp holds them and changes only when they do, so a build with
# another PREFIX recompiles the core and an unchanged one does nothing.
PATHS_STAMP := $(BUILD)/paths.stamp
$(PATHS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo 'SY_PLUGIN_DIR=$(PLUGINDIR) SY_PORTAL_DIR=$(PORTALDIR)' | cmp -s - $@ || \
		echo 'SY_PLUGIN_DIR=$(PLUGINDIR) SY_PORTAL_DIR=$(PORTALDIR)' > $@

# The same for the version (which the plugins use too) and the commit
# (which only core/version.c sees, so a new commit recompiles one file).
VERSION_STAMP := $(BUILD)/version.stamp
COMMIT_STAMP  := $(BUILD)/commit.stamp
$(VERSION_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(COMMIT_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(BUILD)/core/version.o: $(COMMIT_STAMP)
$(BUILD)/core/version.o: CPPFLAGS += -DSY_COMMIT='"$(GIT_COMMIT)"'

$(BUILD)/core/%.o: core/%.c $(wildcard core/*.h) sdk/include/switchyard/sink.h $(PATHS_STAMP) $(VERSION_STAMP)
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
$(BUILD)/plugins/%.so: $$(wildcard plugins/%/*.c) $$(wildcard plugins/%/*.h) $$(PLUGIN_SRC_$$*) $$(PLUGIN_DEPS_$$*) sdk/include/switchyard/sink.h $(VERSION_STAMP)
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $@"
	$(Q)$(CC) $(USER_CPPFLAGS) -Isdk/include -Iplugins/$* -D_GNU_SOURCE -DSY_VERSION='"$(VERSION)"' $(PLUGIN_CFLAGS_$*) $(CFLAGS) -shared -fvisibility=hidden \
		-o $@ $(filter %.c,$^) $(LDFLAGS) $(PLUGIN_LIBS_$*)

$(BUILD)/tests/plugins/%.so: $$(wildcard tests/plugins/%/*.c) sdk/include/switchyard/sink.h
	@mkdir -p $(dir $@)
	@echo "  PLUGIN  $@"
	$(Q)$(CC) -Isdk/include -D_GNU_SOURCE $(CFLAGS) -shared -fvisibility=hidden -o $@ $(filter %.c,$^) $(LDFLAGS)

$(BUILD)/tests/abi/%.so: tests/abi/%.c tests/abi/probe.h sdk/include/switchyard/sink.h
	@mkdir -p $(dir $@)
	@echo "  ABI     $@"
	$(Q)$(CC) -Isdk/include $(CFLAGS) -shared -fvisibility=hidden -o $@ $< $(LDFLAGS)

# Some unit tests #include a plugin's sources to reach its static helpers;
# UNIT_LIBS_<test> adds the libraries those need.
UNIT_LIBS_test_http_h1 := -lcurl
UNIT_LIBS_test_spool := -Wl,--wrap=fdatasync
$(BUILD)/tests/unit/%: tests/unit/%.c $(CORE_LIB) $(wildcard plugins/*/*.c plugins/*/*.h) $(PATHS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CORE_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(CORE_LIB) $(LDFLAGS) $(CMOCKA_LIBS) $(CORE_LIBS) $(UNIT_LIBS_$*)

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

# The Debian packages alone: built from a copy of the tree and checked
# (tests/e2e/test_deb.py). make e2e runs them too, once; make check skips
# them, its sanitizer build having nothing to do with what a package ships.
test-deb: deps-test
	$(MAKE) e2e E2E=tests/e2e/test_deb.py

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

# Man pages, from scdoc sources in docs/man/. switchyard.conf(5) is
# generated like docs/CONFIG.md: its key lists come from the binary's key
# tables and the built plugins' (scripts/gen-man.sh), so the two cannot
# disagree.
MAN_PAGES := $(BUILD)/man/switchyard.8 $(BUILD)/man/switchyard.conf.5 $(BUILD)/man/switchyard-sink.3
man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@echo "  SCDOC   $@"
	$(Q)scdoc < $< > $@

$(BUILD)/man/switchyard.conf.5.scd: docs/man/switchyard.conf.5.scd.in scripts/gen-man.sh $(BIN) $(PLUGIN_SO)
	@mkdir -p $(dir $@)
	$(Q)bash scripts/gen-man.sh $(BIN) $(BUILD)/plugins < $< > $@

$(BUILD)/man/switchyard.conf.5: $(BUILD)/man/switchyard.conf.5.scd
	@echo "  SCDOC   $@"
	$(Q)scdoc < $< > $@

# Fills the templates (the systemd unit, sysusers.d and tmpfiles.d files,
# the .pc file) with the install paths. StateDirectory= and
# ConfigurationDirectory= only make folders under /var/lib and /etc, so
# they stay in the unit only when that is where state and config go; with
# the state elsewhere, ReadWritePaths= opens its folder in the read-only
# system ProtectSystem=strict makes.
SUBST := -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	-e 's|@CONFDIR@|$(CONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
	$(if $(filter /var/lib/switchyard,$(STATEDIR)),-e '/^ReadWritePaths=/d',-e '/^StateDirectory/d') \
	$(if $(filter /etc/switchyard,$(CONFDIR)),,-e '/^ConfigurationDirectory/d')

# Everything goes under $(DESTDIR): the prefix, $(CONFDIR) and $(STATEDIR).
install: $(BIN) $(PLUGIN_SO) $(SDK_LIB) $(MAN_PAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(PORTALDIR) \
		$(DESTDIR)$(PREFIX)/include/switchyard $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/switchyard
	install -m 0755 $(PLUGIN_SO) $(DESTDIR)$(PLUGINDIR)/
	install -m 0644 $(PORTAL_FILES) $(DESTDIR)$(PORTALDIR)/
	install -m 0644 sdk/include/switchyard/*.h $(DESTDIR)$(PREFIX)/include/switchyard/
	install -m 0644 $(SDK_LIB) $(DESTDIR)$(LIBDIR)/libswitchyard.a
	sed $(SUBST) sdk/switchyard.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/switchyard.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/switchyard.pc
	sed $(SUBST) scripts/switchyard.service > $(DESTDIR)$(SYSTEMDUNITDIR)/switchyard.service
	sed $(SUBST) scripts/switchyard.sysusers > $(DESTDIR)$(SYSUSERSDIR)/switchyard.conf
	sed $(SUBST) scripts/switchyard.tmpfiles > $(DESTDIR)$(TMPFILESDIR)/switchyard.conf
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/switchyard.service \
		$(DESTDIR)$(SYSUSERSDIR)/switchyard.conf $(DESTDIR)$(TMPFILESDIR)/switchyard.conf
	install -m 0644 $(BUILD)/man/switchyard-sink.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 0644 $(BUILD)/man/switchyard.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(BUILD)/man/switchyard.8 $(DESTDIR)$(MANDIR)/man8/
	@# The example config goes only into a conf.d without any *.json: an
	@# operator's config is never overwritten, nor completed with examples.
	@# plugin_dir points at the installed plugins, portal_dir at the installed
	@# portal, var/ paths at $(STATEDIR).
	@# Config files may hold secrets: 0640, readable by the owner's group.
	@set -e; etc=$(DESTDIR)$(CONFDIR)/conf.d; \
	if ls $$etc/*.json >/dev/null 2>&1; then \
		echo "  keeping the config in $$etc"; \
	else \
		install -d -m 0755 $$etc; \
		for f in conf.d/*.json; do \
			echo "  CONFIG  $$etc/$${f#conf.d/}"; \
			sed -e 's|\("plugin_dir": *"\)[^"]*"|\1$(PLUGINDIR)"|' \
			    -e 's|\("portal_dir": *"\)[^"]*"|\1$(PORTALDIR)"|' \
			    -e 's|"var/|"$(STATEDIR)/|g' $$f > $$etc/$${f#conf.d/}; \
			chmod 0640 $$etc/$${f#conf.d/}; \
		done; \
	fi

# The config in $(CONFDIR) and the state in $(STATEDIR) are the operator's:
# uninstall leaves them.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/switchyard $(DESTDIR)$(LIBDIR)/pkgconfig/switchyard.pc \
		$(DESTDIR)$(LIBDIR)/libswitchyard.a \
		$(DESTDIR)$(SYSTEMDUNITDIR)/switchyard.service \
		$(DESTDIR)$(SYSUSERSDIR)/switchyard.conf $(DESTDIR)$(TMPFILESDIR)/switchyard.conf \
		$(DESTDIR)$(MANDIR)/man3/switchyard-sink.3 $(DESTDIR)$(MANDIR)/man5/switchyard.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/switchyard.8
	rm -rf $(DESTDIR)$(PREFIX)/lib/switchyard $(DESTDIR)$(PREFIX)/include/switchyard \
		$(DESTDIR)$(PREFIX)/share/switchyard

# The Debian packages (debian/), built with debhelper in a copy of the tree
# under $(BUILD)/deb/, where dpkg-buildpackage leaves them:
# switchyard_$(VERSION)_ARCH.deb and switchyard-dev_$(VERSION)_ARCH.deb.
# The copy holds what git tracks plus files not yet added (not what
# .gitignore ignores), or, outside git, the tree without its build folders.
# debian/changelog is written here, from VERSION and the commit.
DEB_DIR := $(BUILD)/deb
DEB_SRC := $(DEB_DIR)/switchyard-$(VERSION)
deb: deps-deb
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	@set -e; if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ]; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar -c --null --ignore-failed-read -T - -f -; \
	else \
		tar -c --exclude=./build --exclude=./$(BUILD) --exclude=./var --exclude=./switchyard \
			--exclude=node_modules -f - .; \
	fi | tar -x -C $(DEB_SRC) -f -
	bash scripts/deb-changelog.sh $(VERSION) $(GIT_COMMIT) > $(DEB_SRC)/debian/changelog
	@# The copy builds on its own: none of this make's variables may reach
	@# the make debian/rules runs, neither through MAKEFLAGS nor as the
	@# environment variables make turns command-line ones (BUILD=...) into.
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		$(foreach o,$(MAKEOVERRIDES),-u $(firstword $(subst =, ,$(subst :=,=,$(subst +=,=,$(o)))))) \
		GIT_COMMIT=$(GIT_COMMIT) DEB_BUILD_OPTIONS="parallel=2 $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -b -us -uc
	@ls $(DEB_DIR)/*.deb

clean:
	rm -rf build switchyard
