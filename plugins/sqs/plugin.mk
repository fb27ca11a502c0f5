# The sqs sink: libcurl (SigV4 signing built in since 7.75) and cJSON for
# responses. It shares the key template code of the amqp sink.
PLUGIN_LIBS_sqs := -lcurl -lcjson
PLUGIN_SRC_sqs := plugins/amqp/keytmpl.c
PLUGIN_DEPS_sqs := plugins/amqp/keytmpl.h
