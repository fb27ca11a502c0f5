# The amqp sink links rabbitmq-c (librabbitmq-dev).
PLUGIN_LIBS_amqp := -lrabbitmq
