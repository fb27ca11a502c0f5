# The webhook sink: shared HTTP transport (plugins/_http) and the SDK's
# signer (sdk/src), compiled into webhook.so so it needs nothing else at
# run time but libcurl and OpenSSL.
PLUGIN_SRC_webhook    := $(wildcard plugins/_http/*.c) $(wildcard sdk/src/webhook_*.c)
PLUGIN_DEPS_webhook   := $(wildcard plugins/_http/*.h) $(wildcard sdk/src/*.h) sdk/include/switchyard/webhook.h
PLUGIN_CFLAGS_webhook := -Iplugins/_http -Isdk/src
PLUGIN_LIBS_webhook   := -lcurl -lcrypto
