# The zmq sink links libzmq (libzmq3-dev).
PLUGIN_LIBS_zmq := -lzmq
