# The sqs sink: libcurl (SigV4 signing built in since 7.75) and cJSON for
# responses. Key templates are shared with the amqp sink from plugins/_queue/;
# URLs are written to logs and errors without their secrets by plugins/_http/.
PLUGIN_LIBS_sqs := -lcurl -lcjson
PLUGIN_SRC_sqs := plugins/_queue/keytmpl.c plugins/_http/http_redact.c
PLUGIN_DEPS_sqs := plugins/_queue/keytmpl.h plugins/_queue/qbatch.h plugins/_http/http_redact.h
PLUGIN_CFLAGS_sqs := -Iplugins/_http
# Its unit test includes the sources, http_redact.c among them.
$(BUILD)/tests/unit/test_sqs_batch: CPPFLAGS += -Iplugins/_http
$(BUILD)/tests/unit/test_sqs_batch: CORE_LIBS += -lcurl
