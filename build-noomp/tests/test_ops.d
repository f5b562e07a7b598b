build-noomp/tests/test_ops: tests/test_ops.c tests/test.h \
 include/uakd/backend.h include/uakd/status.h include/uakd/net.h \
 include/uakd/layers.h include/uakd/rng.h
tests/test.h:
include/uakd/backend.h:
include/uakd/status.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
