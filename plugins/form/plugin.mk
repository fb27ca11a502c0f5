# The legacy form sink, on the HTTP transport it shares with webhook.
PLUGIN_SRC_form    := $(wildcard plugins/_http/*.c)
PLUGIN_DEPS_form   := $(wildcard plugins/_http/*.h)
PLUGIN_CFLAGS_form := -Iplugins/_http
PLUGIN_LIBS_form   := -lcurl
