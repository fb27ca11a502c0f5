# sdk/lib.mk - libswitchyard.a, the library C webhook receivers link
# (sdk/include/switchyard/webhook.h: sign and verify Standard Webhooks
# messages), built from sdk/src/*.c. Included by the top Makefile, which
# provides BUILD, CC, CFLAGS, USER_CPPFLAGS (the CPPFLAGS given from
# outside) and Q. Link users with -lcrypto.
#
# Defines only rules and variables, never the first explicit target of the
# build: whatever the include's position, `make` alone still builds `all`.

_sy_sdk_goal := $(.DEFAULT_GOAL)

SDK_SRC := $(wildcard sdk/src/*.c)
SDK_OBJ := $(SDK_SRC:%.c=$(BUILD)/%.o)
SDK_LIB := $(BUILD)/libswitchyard.a
SDK_LIBS := -lcrypto

$(BUILD)/sdk/src/%.o: sdk/src/%.c $(wildcard sdk/src/*.h) $(wildcard sdk/include/switchyard/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(USER_CPPFLAGS) -Isdk/include -D_GNU_SOURCE $(CFLAGS) -c $< -o $@

# Also when the top Makefile's own sdk/src rule is the one that applies.
$(SDK_OBJ): $(wildcard sdk/src/*.h)

$(SDK_LIB): $(SDK_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The HTTP sinks' unit tests (tests/unit/test_webhook_*.c) test the SDK
# through libswitchyard.a and the plugins' pure parts by including their
# sources (so they see the plugins' include folders), so they also need
# libcurl and OpenSSL. The generic unit-test rule links $(CORE_LIBS) last;
# these targets append to it.
SDK_UNIT := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_webhook_*.c))
$(SDK_UNIT): $(SDK_LIB) $(wildcard plugins/webhook/*.[ch] plugins/form/*.[ch] plugins/_http/*.[ch])
$(SDK_UNIT): CPPFLAGS += -Iplugins/_http -Iplugins/webhook -Iplugins/form -Isdk/src
$(SDK_UNIT): CORE_LIBS += $(SDK_LIB) -lcurl $(SDK_LIBS)

.DEFAULT_GOAL := $(_sy_sdk_goal)
