# The amqp sink links rabbitmq-c (librabbitmq-dev). Key templates are shared
# with the sqs sink from plugins/_queue/.
PLUGIN_LIBS_amqp := -lrabbitmq
PLUGIN_SRC_amqp := plugins/_queue/keytmpl.c
PLUGIN_DEPS_amqp := plugins/_queue/keytmpl.h plugins/_queue/qbatch.h
