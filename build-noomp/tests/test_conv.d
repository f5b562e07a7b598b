build-noomp/tests/test_conv: tests/test_conv.c tests/test.h \
 include/uakd/backend.h include/uakd/status.h include/uakd/conv.h \
 include/uakd/rng.h tests/../src/conv_fast.h
tests/test.h:
include/uakd/backend.h:
include/uakd/status.h:
include/uakd/conv.h:
include/uakd/rng.h:
tests/../src/conv_fast.h:
