# tests/fuzz/fuzz.mk - libFuzzer targets (docs/HARDENING.md). Included by
# the top Makefile, which provides CPPFLAGS, CORE_CFLAGS, WARN and Q.
#
#   make fuzz                       build, then run every target FUZZ_SECONDS (60) each
#   make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS="envelope filter"
#   make fuzz-smoke                 every target 10 s (CI)
#   make fuzz-build                 build only
#
# Everything lives in build/fuzz/ (never $(BUILD): these objects are
# compiled by clang with coverage instrumentation and sanitizers, and must
# not mix with the gcc -O2 objects of the daemon). Each run starts from a
# copy of tests/fuzz/corpus/<target>/ in build/fuzz/work/<target>/, so new
# inputs libFuzzer finds do not pile up in the repository; crashes land in
# build/fuzz/work/<target>/artifacts/. A target that crashes makes the
# whole run fail, after the others have run.
#
# Defines only rules and variables, never the first explicit target of the
# build: whatever the include's position, `make` alone still builds `all`.

_sy_fuzz_goal := $(.DEFAULT_GOAL)

FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= envelope filter router config webhook transform api store http1 spool_log
# Extra libFuzzer flags, e.g. FUZZ_ARGS="-jobs=2 -workers=2".
FUZZ_ARGS    ?=

# -fno-sanitize-recover: UB must stop the run like a crash, or libFuzzer
# would only print it and keep going. -O1 keeps it fast with usable stacks.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -pthread
# The core is compiled without -Werror here: clang warns about things gcc
# doesn't, and a new clang must not stop the fuzzing of unchanged code. The
# targets themselves are held to -Werror.
FUZZ_CORE_WARN := $(filter-out -Werror,$(WARN))
FUZZ_LIBS   := -lzmq -lcjson -lsqlite3 -lpq -llua5.4 -lcrypto -lz -ldl -lm -lpthread

FUZZ_CORE_SRC := $(wildcard core/*.c) sdk/src/publisher.c
FUZZ_CORE_OBJ := $(FUZZ_CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_CORE_LIB := $(FUZZ_DIR)/libsycore-fuzz.a
FUZZ_SDK_SRC  := $(wildcard sdk/src/webhook_*.c)
FUZZ_SDK_OBJ  := $(FUZZ_SDK_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-smoke fuzz-build

# Instrumented for coverage (fuzzer-no-link) but without libFuzzer's main.
$(FUZZ_DIR)/obj/core/%.o: core/%.c $(wildcard core/*.h) $(wildcard sdk/include/switchyard/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(CORE_CFLAGS) $(FUZZ_CFLAGS) $(FUZZ_CORE_WARN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/sdk/src/%.o: sdk/src/%.c $(wildcard sdk/src/*.h) $(wildcard sdk/include/switchyard/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_CORE_WARN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj/core/api_openapi.o: docs/openapi.json

# The commit the daemon reports (core/version.c): the fuzzers never print it.
$(FUZZ_DIR)/obj/core/version.o: CPPFLAGS += -DSY_COMMIT='"fuzz"'

# An archive, so each target links only the objects it needs.
$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE_LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(CORE_CFLAGS) $(FUZZ_CFLAGS) -Wall -Wextra -Werror -fsanitize=fuzzer \
		-o $@ $< $(FUZZ_CORE_LIB) $(FUZZ_LIBS)

# The webhook verifier is SDK code: its own objects and OpenSSL.
$(FUZZ_DIR)/fuzz_webhook: tests/fuzz/fuzz_webhook.c $(FUZZ_SDK_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) -Isdk/include -D_GNU_SOURCE $(FUZZ_CFLAGS) -Wall -Wextra -Werror -fsanitize=fuzzer \
		-o $@ $< $(FUZZ_SDK_OBJ) -lcrypto

# The plain-http transport's answer parser and request head: plugin code
# with no library behind it but libc (the headers name libcurl's types).
FUZZ_HTTP1_SRC := plugins/_http/http_h1parse.c plugins/_http/http_h1req.c
$(FUZZ_DIR)/fuzz_http1: tests/fuzz/fuzz_http1.c $(FUZZ_HTTP1_SRC) $(wildcard plugins/_http/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) -Iplugins/_http -Isdk/include -Itests/fuzz -D_GNU_SOURCE $(FUZZ_CFLAGS) -Wall -Wextra -Werror \
		-fsanitize=fuzzer -o $@ $< $(FUZZ_HTTP1_SRC)

fuzz-build: $(FUZZ_BINS)

# One shell loop: every target runs even when an earlier one crashed.
fuzz: fuzz-build
	@fail=""; for t in $(FUZZ_TARGETS); do \
		w=$(FUZZ_DIR)/work/$$t; rm -rf $$w; mkdir -p $$w/corpus $$w/artifacts; \
		cp tests/fuzz/corpus/$$t/* $$w/corpus/ 2>/dev/null || true; \
		dict=""; [ -f tests/fuzz/dict/$$t.dict ] && dict="-dict=tests/fuzz/dict/$$t.dict"; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s from $$(ls $$w/corpus | wc -l) seeds (log: $$w/log)"; \
		if $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$$w/artifacts/ $$dict $(FUZZ_ARGS) \
			$$w/corpus >$$w/log 2>&1; then \
			grep -E '^#[0-9]+[[:space:]]+DONE' $$w/log | tail -n 1; \
			grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $$w/log; \
		else \
			echo "   FAILED: crash input(s) in $$w/artifacts/"; \
			grep -E 'ERROR: |runtime error|SUMMARY' $$w/log | head -n 5; \
			fail="$$fail $$t"; \
		fi; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: crashes in:$$fail"; exit 1; fi

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

.DEFAULT_GOAL := $(_sy_fuzz_goal)
