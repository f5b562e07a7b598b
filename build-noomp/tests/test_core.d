build-noomp/tests/test_core: tests/test_core.c tests/test.h \
 include/uakd/image.h include/uakd/status.h include/uakd/rng.h
tests/test.h:
include/uakd/image.h:
include/uakd/status.h:
include/uakd/rng.h:
