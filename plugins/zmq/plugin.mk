# The zmq sink links libzmq (libzmq3-dev); from plugins/_queue/ it takes only
# the header-only qbatch.h.
PLUGIN_LIBS_zmq := -lzmq
PLUGIN_DEPS_zmq := plugins/_queue/qbatch.h
