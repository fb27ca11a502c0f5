# The sqs sink: libcurl (SigV4 signing built in since 7.75) and cJSON for
# responses. Key templates are shared with the amqp sink from plugins/_queue/.
PLUGIN_LIBS_sqs := -lcurl -lcjson
PLUGIN_SRC_sqs := plugins/_queue/keytmpl.c
PLUGIN_DEPS_sqs := plugins/_queue/keytmpl.h
