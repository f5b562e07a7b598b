build-noomp/tests/test_net: tests/test_net.c tests/test.h \
 include/uakd/net.h include/uakd/layers.h include/uakd/rng.h \
 include/uakd/status.h
tests/test.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/status.h:
